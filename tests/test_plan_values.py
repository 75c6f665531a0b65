"""Value comparison shortcuts agree with the full comparison they stand in for."""

from __future__ import annotations

from typing import Any

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.mapping import FieldMap
from recon.plan_values import (
    OwnerMap,
    _other_subscriber,
    _phone_form,
    norm,
    norm_fast,
    phone_key,
    to_salesforce_value,
    values_equal,
)

_PUNCT = st.sampled_from([" ", "-", ".", "/", "(", ")", ""])


@st.composite
def _spellings(draw: st.DrawFn) -> tuple[str, str]:
    """Two spellings of one digit string: same prefix form, other punctuation."""
    digits = draw(st.text("0123456789", min_size=1, max_size=16))
    prefix = draw(st.sampled_from(["", "+", "00", " +"]))

    def spell() -> str:
        return prefix + "".join(d + draw(_PUNCT) for d in digits)

    return spell(), spell()


@settings(max_examples=300, deadline=None)
@given(_spellings())
def test_one_phone_form_is_one_phone_key(pair: tuple[str, str]) -> None:
    a, b = pair
    assert _phone_form(a) == _phone_form(b) != ""
    assert phone_key(a) == phone_key(b)


@settings(max_examples=300, deadline=None)
@given(st.text("0123+ ()-./x#", max_size=12), st.text("0123+ ()-./x#", max_size=12))
def test_phone_form_never_calls_other_texts_one_number(a: str, b: str) -> None:
    if _phone_form(a) == _phone_form(b) != "":
        assert phone_key(a) == phone_key(b)


def test_extensions_and_letters_are_left_to_the_parser() -> None:
    assert _phone_form("555 0100 x12") == _phone_form("1-800-FLOWERS") == ""
    assert _phone_form("+47 22 33 44 55") != _phone_form("0047 22 33 44 55")


@settings(max_examples=500, deadline=None)
@given(st.text("0123456789+ ()-./", max_size=16), st.text("0123456789+ ()-./", max_size=16))
def test_other_subscriber_digits_are_other_numbers(a: str, b: str) -> None:
    fa, fb = _phone_form(a), _phone_form(b)
    if fa and fb and _other_subscriber(fa, fb):
        assert phone_key(a) != phone_key(b)


_REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
_FORMATS = [
    phonenumbers.PhoneNumberFormat.E164,
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.NATIONAL,
]


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(_REGIONS),
    st.integers(0, 10),  # phonenumbers.PhoneNumberType: fixed line, mobile, toll free...
    st.sampled_from(_FORMATS),
    st.sampled_from(_FORMATS),
)
def test_spellings_of_one_real_number_share_their_subscriber_digits(region, kind, f1, f2) -> None:
    """Example numbers of every region and type, in any two formats (and with 00 for +)."""
    number = phonenumbers.example_number_for_type(region, kind)
    if number is None:
        return
    a = phonenumbers.format_number(number, f1)
    b = phonenumbers.format_number(number, f2).replace("+", "00", 1)
    fa, fb = _phone_form(a), _phone_form(b)
    if fa and fb:
        assert not _other_subscriber(fa, fb), (a, b)


def test_an_aware_datetime_is_written_as_its_utc_instant() -> None:
    from datetime import datetime, timedelta, timezone

    from recon.plan_values import norm

    plus_two = timezone(timedelta(hours=2))
    assert norm("datetime", datetime(2024, 1, 2, 3, 4, 5, tzinfo=plus_two)) == (
        "2024-01-02T01:04:05.000Z"
    )
    assert norm("datetime", "2024-01-02T03:04:05+02:00") == "2024-01-02T01:04:05.000Z"
    assert norm("date", "2024-01-02T23:30:00+02:00") == "2024-01-02"  # the date as written


def test_a_fraction_is_not_written_to_a_whole_number_field() -> None:
    from recon.mapping import FieldMap
    from recon.plan_values import OwnerMap, to_salesforce_value

    def to_int(value: float) -> tuple[object, str | None]:
        fm = FieldMap("companies", "x", "X", "Account", kind="number", sf_type="int")
        return to_salesforce_value(fm, value, OwnerMap([]))

    assert to_int(2.5) == (None, "not_an_integer")
    assert to_int(3.0) == (3, None)


def test_a_hubspot_date_for_a_salesforce_datetime_is_written_as_its_midnight_and_then_equal() -> (
    None
):
    """Salesforce refuses a bare date in a datetime field; the value it then holds compares
    equal to the HubSpot date (no write planned again)."""
    fm = FieldMap(
        "contacts", "renewal", "Last_Touch__c", "Contact", kind="date", sf_type="datetime"
    )
    hn = norm_fast("date", "2024-04-01")
    assert to_salesforce_value(fm, hn, OwnerMap([])) == ("2024-04-01T00:00:00.000Z", None)
    held = norm_fast("date", "2024-04-01T00:00:00.000+0000")
    assert values_equal(fm, hn, held, OwnerMap([]))
    date_field = FieldMap(
        "contacts", "renewal", "Birthdate", "Contact", kind="date", sf_type="date"
    )
    assert to_salesforce_value(date_field, hn, OwnerMap([])) == ("2024-04-01", None)


@pytest.mark.parametrize(
    ("refused", "again"),
    [
        ("https://oakshieldstudios.fr/en/home", "oakshieldstudios.fr/en/home"),
        ("www.stoneshieldpharma.fr", "HTTPS://WWW.STONESHIELDPHARMA.FR/"),
        ("+33 16 925 2040", "0033 16 925 2040"),
        ("4739315621", "+1 473 931 5621"),
        ("(196) 707-8513", "196-707-8513"),
        ("NEW YORK", "New York"),
        (6292000.0, "6292000"),
        ("6292000.00", 6292000.0),
        ("ACME.COM", "acme.com"),
        ("Acme.Inc", "Acme Inc"),
        ("2024-01-05", "2024-01-05T00:00:00.000Z"),
    ],
)
def test_a_refused_value_reformatted_by_a_crm_is_the_same_key(refused: Any, again: Any) -> None:
    """A write an undo took back or a reviewer dropped was written with nobody's approval
    once the source CRM reformatted the value (a phone with 00 instead of +, a site without
    its scheme): the hold compares these as the same value."""
    from recon.plan_values import value_key

    assert value_key(refused) == value_key(again)


def test_different_values_keep_different_keys() -> None:
    from recon.plan_values import value_key

    assert value_key("+33 16 925 2040") != value_key("+33 16 925 2041")
    assert value_key("acme.fr") != value_key("acme.com")
    assert value_key("Acme") != value_key("Acme Ltd")


def test_value_key_never_raises_on_odd_dates() -> None:
    from recon.plan_values import value_key

    assert value_key("0001-01-01T00:00:00+01:00").startswith("v:")


@pytest.mark.parametrize("kind", ["enum", "multi", "owner", "reference", "date", "number"])
def test_the_memo_gives_norms_answer_whatever_was_asked_before(kind: str) -> None:
    # True, 1 and 1.0 are one dict key; an option, an owner or a date reads them differently
    for value in (True, 1, 1.0):
        norm_fast(kind, value)
    for value in (1.0, 1, True):
        assert norm_fast(kind, value) == norm(kind, value), (kind, value)
