"""The writers on the real clients against the emulator: batching, idempotent creates, errors, merges."""

from __future__ import annotations

from pathlib import Path

import pytest
from crm_env import SF_SESSION, CrmEnv, _own_sandbox, crm_fixture, uid  # noqa: F401  (fixtures)

from recon.apply import build_writer
from recon.errors import BudgetExhausted, ErrorClass
from recon.writers import CallBudget, Op, classify_hubspot, classify_salesforce, scrub
from recon.writers.dryrun import DryRunWriter
from recon.writers.salesforce import KEY_FIELD


def writer(crm: CrmEnv, tmp_path: Path, system: str, limit: int | None = None, **apply: int):  # type: ignore[no-untyped-def]
    cfg = crm.config(tmp_path, apply=apply) if apply else crm.config(tmp_path)
    return build_writer(cfg, system, CallBudget(system, limit))


@pytest.mark.parametrize(
    ("system", "obj", "n", "size", "calls"),
    [
        ("hubspot", "companies", 250, 100, 3),
        ("salesforce", "Account", 450, 200, 3),
        ("hubspot", "companies", 7, 3, 3),
    ],
)
def test_batches_are_sized_to_the_api_maximum(
    crm: CrmEnv, tmp_path: Path, system: str, obj: str, n: int, size: int, calls: int
) -> None:
    tag = uid()
    if system == "hubspot":
        ids = (
            crm.hs_create(obj, [{"name": f"B {tag} {i}"} for i in range(n)])
            if n <= 100
            else [
                rid
                for start in range(0, n, 100)
                for rid in crm.hs_create(
                    obj, [{"name": f"B {tag} {i}"} for i in range(start, min(n, start + 100))]
                )
            ]
        )
        field = "name"
    else:
        ids = [
            rid
            for start in range(0, n, 200)
            for rid in crm.sf_create(
                obj, [{"Name": f"B {tag} {i}"} for i in range(start, min(n, start + 200))]
            )
        ]
        field = "Name"
    kwargs = {f"{system}_batch_size": size}
    w = writer(crm, tmp_path, system, **kwargs)
    ops = [Op(str(i), "update", obj, rid, {field: f"B2 {tag} {i}"}) for i, rid in enumerate(ids)]
    outcomes = []
    for start in range(0, len(ops), w.max_batch("update")):
        outcomes += w.write(ops[start : start + w.max_batch("update")])
    assert all(o.ok for o in outcomes) and len(outcomes) == n
    assert w.budget.calls == calls


@pytest.mark.parametrize(
    "system,obj,fields",
    [("hubspot", "contacts", {"firstname": "Kim"}), ("salesforce", "Contact", {"LastName": "Kim"})],
)
def test_creates_are_idempotent_by_key(
    crm: CrmEnv, tmp_path: Path, system: str, obj: str, fields: dict[str, str]
) -> None:
    w = writer(crm, tmp_path, system)
    w.prepare([obj])
    assert w.key_ready[obj]
    email_field = "email" if system == "hubspot" else "Email"
    tag = uid()
    op = Op(
        "c",
        "create",
        obj,
        properties={**fields, email_field: f"kim-{tag}@example.com"},
        key=f"rk-{tag}",
    )
    mark = crm.last_change()
    first, second = w.write([op])[0], w.write([op])[0]
    assert first.ok and second.ok and first.record_id == second.record_id
    assert w.find_created(obj, [op]) == {"c": first.record_id}
    assert [c["action"] for c in crm.changes(mark)].count("created") == 1


def test_salesforce_create_without_the_key_field_falls_back_to_natural_keys(
    crm: CrmEnv, tmp_path: Path
) -> None:
    w = writer(crm, tmp_path, "salesforce")
    w.key_ready["Lead"] = False  # as in an org whose admin has not added Recon_Key__c
    tag = uid()
    op = Op(
        "l",
        "create",
        "Lead",
        properties={"LastName": "Lo", "Company": "X", "Email": f"lo-{tag}@example.com"},
        key=f"rk-{tag}",
        natural=("Email", f"lo-{tag}@example.com"),
    )
    out = w.write([op])[0]
    assert out.ok
    assert w.find_created("Lead", [op]) == {"l": out.record_id}
    assert KEY_FIELD not in crm.sf_get("Lead", out.record_id, ["Email"])


def test_hubspot_creates_without_a_key_property_are_told_apart(crm: CrmEnv, tmp_path: Path) -> None:
    """No unique key property: a create with an email is matched by it, one without is sent
    alone, so each gets its own record id and nothing is reported failed (or made twice)."""
    w = writer(crm, tmp_path, "hubspot")
    w.key_ready["contacts"] = False
    tag = uid()
    ops = [
        Op("a", "create", "contacts", properties={"firstname": "A", "email": f"a-{tag}@example.com"},
           natural=("email", f"a-{tag}@example.com")),
        Op("b", "create", "contacts", properties={"firstname": f"B {tag}"}),
        Op("c", "create", "contacts", properties={"firstname": f"C {tag}"}),
    ]  # fmt: skip
    mark = crm.last_change()
    out = w.write(ops)
    assert [o.ok for o in out] == [True, True, True], out
    assert len({o.record_id for o in out}) == 3
    for op, o in zip(ops, out, strict=True):
        assert (
            crm.hs_get("contacts", str(o.record_id), ["firstname"])["firstname"]
            == op.properties["firstname"]
        )
    assert [c["action"] for c in crm.changes(mark)].count("created") == 3


def test_hubspot_email_opt_outs_go_through_communication_preferences(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """``hs_email_optout`` is read-only to HubSpot's CRM API: sent in a batch update it failed
    the whole batch (every other contact's write with it). Opt-outs now go through the
    communication preferences API; the rest of each write through the batch."""
    tag = uid()
    emails = [f"opt{i}-{tag}@example.org" for i in range(3)]
    ids = crm.hs_create(
        "contacts", [*({"email": e, "lastname": "O"} for e in emails), {"email": f"b-{tag}@x.org"}]
    )
    bare = ids.pop()
    crm.edit("hubspot", "contacts", bare, {"email": None})  # a contact without an address
    crm.edit("hubspot", "contacts", ids[2], {"hs_email_optout": "true"})
    w = writer(crm, tmp_path, "hubspot")
    w.prepare(["contacts"])
    out = w.write(
        [
            Op(
                "both", "update", "contacts", ids[0], {"jobtitle": "CEO", "hs_email_optout": "true"}
            ),
            Op("flag", "update", "contacts", ids[1], {"hs_email_optout": "true"}),
            Op("resub", "update", "contacts", ids[2], {"hs_email_optout": "false"}),
            Op("nomail", "update", "contacts", bare, {"hs_email_optout": "true"}),
        ]
    )
    assert [o.ok for o in out] == [True, True, False, False]
    assert "does not resubscribe" in str(out[2].error)
    assert out[3].error_class is ErrorClass.VALIDATION and "no e-mail address" in str(out[3].error)
    for rid in ids:
        assert crm.hs_get("contacts", rid, ["hs_email_optout"])["hs_email_optout"] == "true"
    assert crm.hs_get("contacts", ids[0], ["jobtitle"])["jobtitle"] == "CEO"
    # a create: the contact is made, then its address opted out; a "false" is left out
    made = w.write(
        [
            Op("c1", "create", "contacts", None, {"email": f"new-{tag}@example.org",
                                                  "hs_email_optout": "true"}, key=f"k1-{tag}"),
            Op("c2", "create", "contacts", None, {"email": f"new2-{tag}@example.org",
                                                  "hs_email_optout": "false"}, key=f"k2-{tag}"),
        ]
    )  # fmt: skip
    assert all(o.ok for o in made), made
    flags = [crm.hs_get("contacts", str(o.record_id), ["hs_email_optout"]) for o in made]
    assert [f.get("hs_email_optout") for f in flags] == ["true", None]
    # a merge keeping a member's opt-out: merged, then the survivor's address opted out
    keep, gone = crm.hs_create(
        "contacts", [{"email": f"m{i}-{tag}@example.org", "lastname": "M"} for i in range(2)]
    )
    (merged,) = w.write(
        [Op("m", "merge", "contacts", keep, {"hs_email_optout": "true"}, merge_ids=(gone,))]
    )
    assert merged.ok, merged
    assert crm.hs_get("contacts", keep, ["hs_email_optout"])["hs_email_optout"] == "true"


def test_hubspot_207_errors_name_the_failing_record(crm: CrmEnv, tmp_path: Path) -> None:
    w = writer(crm, tmp_path, "hubspot")
    tag = uid()
    ids = crm.hs_create("companies", [{"name": f"E {tag} {i}"} for i in range(3)])
    crm.fault(kind="duplicate", side="hubspot", object="companies", match={"name": f"dup {tag}"})
    out = w.write(
        [
            Op("a", "update", "companies", ids[0], {"name": f"ok {tag}"}),
            Op("b", "update", "companies", ids[1], {"name": f"dup {tag}"}),
            Op("c", "update", "companies", "987654321", {"name": "x"}),
        ]
    )
    assert [o.ok for o in out] == [True, False, False]
    assert (
        out[1].error_class is ErrorClass.DUPLICATE_RULE
        and out[2].error_class is ErrorClass.NOT_FOUND
    )


def test_salesforce_soap_merge(crm: CrmEnv, tmp_path: Path) -> None:
    w = writer(crm, tmp_path, "salesforce")
    tag = uid()
    ids = crm.sf_create("Account", [{"Name": f"Mg {tag} {i}"} for i in range(3)])
    out = w.write([Op("m", "merge", "Account", ids[0], merge_ids=ids[1:])])[0]
    assert out.ok and out.record_id == ids[0]
    assert w.merged_away("Account", ids) == set(ids[1:])
    bad = w.write([Op("m2", "merge", "Account", ids[0], merge_ids=["001000000000000AAA"])])[0]
    assert not bad.ok and bad.error_class is not None


def test_salesforce_merge_of_more_victims_than_one_call_takes(crm: CrmEnv, tmp_path: Path) -> None:
    """SOAP merges at most two victims a call: every victim is merged, one a call; a victim
    merged before (a resumed run) is skipped; a failure names the victims already merged."""
    w = writer(crm, tmp_path, "salesforce")
    ids = crm.sf_create("Account", [{"Name": f"M4 {uid()} {i}"} for i in range(5)])
    first = w.write([Op("m", "merge", "Account", ids[0], merge_ids=ids[1:2])])[0]
    assert first.ok
    props = {"Phone": "+1 555 0125", "Website": None, "Industry": "Energy"}
    out = w.write([Op("m", "merge", "Account", ids[0], props, merge_ids=ids[1:])])[0]
    assert out.ok and out.record_id == ids[0], out
    assert w.merged_away("Account", ids) == set(ids[1:])
    got = crm.sf_get("Account", ids[0], ["Phone", "Industry"])
    assert (got["Phone"], got["Industry"]) == ("+1 555 0125", "Energy")
    more = crm.sf_create("Account", [{"Name": f"M5 {uid()} {i}"} for i in range(2)])
    contact = crm.sf_create("Contact", [{"LastName": f"C {uid()}"}])[0]
    bad = w.write([Op("m", "merge", "Account", more[0], merge_ids=[more[1], contact])])[0]
    assert not bad.ok and f"after merging {more[1]}" in str(bad.error), bad


def test_hubspot_merge_and_association(crm: CrmEnv, tmp_path: Path) -> None:
    w = writer(crm, tmp_path, "hubspot")
    tag = uid()
    ids = crm.hs_create("companies", [{"name": f"HM {tag} {i}"} for i in range(2)])
    contact = crm.hs_create("contacts", [{"email": f"hm-{tag}@example.com"}])[0]
    assoc = w.write(
        [Op("a", "associate", "contacts", contact, to_object="companies", to_id=ids[1])]
    )
    assert assoc[0].ok
    survivorship = {"phone": "+1 555 0123"}
    merged = w.write([Op("m", "merge", "companies", ids[0], survivorship, merge_ids=[ids[1]])])[0]
    assert merged.ok and w.merged_away("companies", [ids[1]]) == {ids[1]}
    assert crm.hs_get("companies", str(merged.record_id), ["phone"])["phone"] == "+1 555 0123"
    # sent again with one more victim (a resumed run): the merged one is skipped
    more = crm.hs_create("companies", [{"name": f"HM {tag} 2"}])
    again = w.write([Op("m", "merge", "companies", ids[0], merge_ids=[ids[1], more[0]])])[0]
    assert again.ok and w.merged_away("companies", [ids[1], more[0]]) == {ids[1], more[0]}, again
    unknown = w.write([Op("m", "merge", "companies", ids[0], merge_ids=[more[0], "99999999"])])[0]
    assert not unknown.ok and f"after merging {more[0]}" in str(unknown.error), unknown


def test_a_primary_association_moves_the_contact_s_primary_company(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """A contact moved to another company: the new one becomes primary (associatedcompanyid
    follows), the former keeps an unlabelled association."""
    w = writer(crm, tmp_path, "hubspot")
    tag = uid()
    old, new = crm.hs_create("companies", [{"name": f"PA {tag} {i}"} for i in range(2)])
    contact = crm.hs_create("contacts", [{"email": f"pa-{tag}@example.com"}])[0]
    first = w.write([Op("a", "associate", "contacts", contact, to_object="companies", to_id=old)])
    assert first[0].ok
    assert crm.hs_get("contacts", contact, ["associatedcompanyid"])["associatedcompanyid"] == old
    moved = w.write(
        [Op("b", "associate", "contacts", contact, to_object="companies", to_id=new, primary=True)]
    )
    assert moved[0].ok, moved
    assert crm.hs_get("contacts", contact, ["associatedcompanyid"])["associatedcompanyid"] == new


def test_a_hubspot_association_to_a_record_gone_meanwhile_fails(
    crm: CrmEnv, tmp_path: Path
) -> None:
    w = writer(crm, tmp_path, "hubspot")
    tag = uid()
    ids = crm.hs_create("companies", [{"name": f"HA {tag} {i}"} for i in range(2)])
    contact = crm.hs_create("contacts", [{"email": f"ha-{tag}@example.com"}])[0]
    crm.hs().crm.companies.basic_api.archive(ids[1])  # deleted after the plan was made
    out = w.write(
        [
            Op("a", "associate", "contacts", contact, to_object="companies", to_id=ids[0]),
            Op("b", "associate", "contacts", contact, to_object="companies", to_id=ids[1]),
        ]
    )
    assert out[0].ok
    assert not out[1].ok and out[1].error_class == ErrorClass.NOT_FOUND, out[1]


def test_salesforce_merge_writes_survivorship_fields(crm: CrmEnv, tmp_path: Path) -> None:
    w = writer(crm, tmp_path, "salesforce")
    ids = crm.sf_create("Account", [{"Name": f"SV {uid()} {i}"} for i in range(2)])
    out = w.write(
        [Op("m", "merge", "Account", ids[0], {"Phone": "+1 555 0124"}, merge_ids=[ids[1]])]
    )[0]
    assert out.ok and crm.sf_get("Account", ids[0], ["Phone"])["Phone"] == "+1 555 0124"


def test_salesforce_merge_blanks_a_field(crm: CrmEnv, tmp_path: Path) -> None:
    """A blank surviving value is sent as ``fieldsToNull`` where the WSDL's sequence has it
    (after ``type``, before ``Id``): the sandbox refuses it anywhere else, as Salesforce does."""
    w = writer(crm, tmp_path, "salesforce")
    ids = crm.sf_create("Account", [{"Name": f"SN {uid()} {i}", "Phone": "1"} for i in range(2)])
    out = w.write(
        [Op("m", "merge", "Account", ids[0], {"Phone": None, "Site": "x"}, merge_ids=[ids[1]])]
    )[0]
    assert out.ok, out
    got = crm.sf_get("Account", ids[0], ["Phone", "Site"])
    assert (got["Phone"], got["Site"]) == (None, "x")


def test_a_salesforce_merge_stops_on_the_daily_request_limit(crm: CrmEnv, tmp_path: Path) -> None:
    """The org's daily allocation answered to a SOAP merge stops the apply (exit 6,
    resumable), as on the REST calls: retrying cannot help."""
    w = writer(crm, tmp_path, "salesforce")
    ids = crm.sf_create("Account", [{"Name": f"DL {uid()} {i}"} for i in range(2)])
    crm.fault(kind="request_limit", side="salesforce", endpoint="*Soap*", times=1)
    try:
        with pytest.raises(BudgetExhausted, match="request limit"):
            w.write([Op("m", "merge", "Account", ids[0], merge_ids=[ids[1]])])
    finally:
        crm.clear_faults()


def test_the_writer_stops_at_max_org_usage(crm: CrmEnv, tmp_path: Path) -> None:
    """`[salesforce] max_org_usage`: the first response tells the org's usage, the next request
    is not sent once it reached the share (exit 6, resumable)."""
    cfg = crm.config(tmp_path, salesforce={"max_org_usage": 1e-9})
    w = build_writer(cfg, "salesforce", CallBudget("salesforce"))
    ids = crm.sf_create("Account", [{"Name": f"OU {uid()}"}])
    w.current("Account", ids, ["Name"])
    with pytest.raises(BudgetExhausted, match="max_org_usage"):
        w.write([Op("u", "update", "Account", ids[0], {"Phone": "1"})])
    assert (
        crm.sf().query(f"select Phone from Account where Id = '{ids[0]}'")["records"][0]["Phone"]
        is None
    )
    # a merge (SOAP, sent on the same session) stops the same way: not a network failure
    other = crm.sf_create("Account", [{"Name": f"OU2 {uid()}"}])
    with pytest.raises(BudgetExhausted, match="max_org_usage"):
        w.write([Op("m", "merge", "Account", ids[0], merge_ids=other)])


def test_a_salesforce_merge_waits_out_a_request_limit(crm: CrmEnv, tmp_path: Path) -> None:
    w = writer(crm, tmp_path, "salesforce")
    ids = crm.sf_create("Account", [{"Name": f"RL {uid()} {i}"} for i in range(2)])
    crm.fault(kind="rate_limit", side="salesforce", endpoint="*Soap*", times=2)
    try:
        out = w.write([Op("m", "merge", "Account", ids[0], merge_ids=[ids[1]])])[0]
    finally:
        crm.clear_faults()
    assert out.ok, out  # retried with backoff, not given up as "rate limited"


def test_budget_is_checked_before_each_call(crm: CrmEnv, tmp_path: Path) -> None:
    w = writer(crm, tmp_path, "hubspot", limit=1)
    ids = crm.hs_create("companies", [{"name": f"Bu {uid()}"}])
    w.current("companies", ids, ["name"])
    with pytest.raises(BudgetExhausted):
        w.current("companies", ids, ["name"])
    assert w.budget.calls == 1


def test_dry_run_writer_spends_nothing() -> None:
    w = DryRunWriter("salesforce", batch_size=200)
    assert w.write([Op("x", "create", "Lead", properties={"LastName": "A"})])[0].ok
    assert w.budget.calls == 0 and w.current("Lead", ["1"], []) == {}


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "validation"),
        ("DUPLICATES_DETECTED", "duplicate_rule"),
        ("REQUIRED_FIELD_MISSING", "missing_field"),
        ("INVALID_FIELD", "missing_field"),
        ("INSUFFICIENT_ACCESS_OR_READONLY", "permission"),
        ("INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY", "permission"),
        ("ENTITY_IS_DELETED", "not_found"),
        ("UNABLE_TO_LOCK_ROW", "server_error"),
        ("REQUEST_LIMIT_EXCEEDED", "rate_limited"),
        ("INVALID_SESSION_ID", "auth_failed"),
        ("SOMETHING_NEW", "unknown"),
    ],
)
def test_salesforce_error_classes(code: str, expected: str) -> None:
    assert classify_salesforce(code).value == expected


@pytest.mark.parametrize(
    ("category", "message", "status", "expected"),
    [
        ("VALIDATION_ERROR", "Property values were not valid", 400, "validation"),
        ("VALIDATION_ERROR", 'Property "foo" does not exist', 400, "missing_field"),
        ("OBJECT_NOT_FOUND", "", 404, "not_found"),
        ("CONFLICT", "", 409, "duplicate_rule"),
        ("MISSING_SCOPES", "", 403, "permission"),
        (None, "", 401, "auth_failed"),
        (None, "", 502, "server_error"),
        ("RATE_LIMITS", "", 429, "rate_limited"),
        ("INTERNAL_ERROR", "", None, "server_error"),  # one record of a 207: retried
    ],
)
def test_hubspot_error_classes(
    category: str | None, message: str, status: int | None, expected: str
) -> None:
    cls = classify_hubspot(category, message, status)
    assert cls.value == expected
    assert cls.retryable == (expected in {"server_error", "rate_limited"})


def test_scrub_removes_secrets() -> None:
    assert "tok-12345" not in scrub("Authorization: Bearer tok-12345", ["tok-12345", None])


def test_salesforce_single_record_update_is_conditional(crm: CrmEnv, tmp_path: Path) -> None:
    w = writer(crm, tmp_path, "salesforce")
    acc = crm.sf_create("Account", [{"Name": f"Cond {uid()}"}])[0]
    snapshot = crm.modified("salesforce", "Account", acc)
    ok = w.write([Op("a", "update", "Account", acc, {"Phone": "1"}, unmodified_since=snapshot)])[0]
    assert ok.ok
    # the write above moved the record on: the same snapshot is now stale (412)
    refused = w.write(
        [Op("b", "update", "Account", acc, {"Phone": "2"}, unmodified_since=snapshot)]
    )[0]
    assert not refused.ok and refused.error_class is ErrorClass.STALE
    assert crm.sf_get("Account", acc, ["Phone"])["Phone"] == "1"


@pytest.mark.parametrize("kind", ["update", "merge"])
def test_salesforce_expired_session_is_renewed_once(crm: CrmEnv, tmp_path: Path, kind: str) -> None:
    cfg = crm.config(
        tmp_path,
        salesforce={
            "auth": "client_credentials",
            "login_url": crm.url,
            "client_id": "cid-test",
            "client_secret": "csecret-test",
            "session_id": None,
        },
    )
    w = build_writer(cfg, "salesforce", CallBudget("salesforce"))
    ids = crm.sf_create("Account", [{"Name": f"Exp {uid()} {i}"} for i in range(2)])
    first_session = w.client.session_id
    crm.fault(kind="expired_session", side="salesforce", times=1)
    op = (
        Op("a", "update", "Account", ids[0], {"Phone": "7"})
        if kind == "update"
        else Op("m", "merge", "Account", ids[0], merge_ids=[ids[1]])
    )
    out = w.write([op])[0]
    assert out.ok, out
    assert w.client.session_id != first_session
    assert sum(f["fired"] for f in crm.admin("GET", "faults")["faults"]) == 1


def test_a_refused_read_is_a_classified_error(crm: CrmEnv, tmp_path: Path) -> None:
    from recon.errors import SourceError

    w = writer(crm, tmp_path, "salesforce")
    acc = crm.sf_create("Account", [{"Name": f"Rd {uid()}"}])[0]
    with pytest.raises(SourceError) as exc:
        w.current("Account", [acc], ["No_Such_Field__c"])
    assert exc.value.error_class is ErrorClass.MISSING_FIELD
    assert SF_SESSION not in str(exc.value)


@pytest.mark.parametrize("system", ["hubspot", "salesforce"])
def test_an_unreachable_crm_is_a_short_network_error(tmp_path: Path, system: str) -> None:
    """Not urllib3's pool, adapter and retry detail: what happened, in a few words."""
    from recon.config import load_config
    from recon.errors import SourceError

    cfg = load_config(
        None,
        overrides={
            "store": {"path": str(tmp_path / "r.db")},
            "hubspot": {"base_url": "http://127.0.0.1:9", "access_token": "pat-x"},
            "salesforce": {"instance_url": "http://127.0.0.1:9", "auth": "session",
                           "session_id": "00Dx!sess"},
            "apply": {"max_retries": 0},
        },
    )  # fmt: skip
    w = build_writer(cfg, system, CallBudget(system, None))
    obj = "companies" if system == "hubspot" else "Account"
    rid = "1" if system == "hubspot" else "001000000000001AAA"
    with pytest.raises(SourceError) as err:
        w.write([Op(ref="a", kind="update", object=obj, record_id=rid, properties={"name": "x"})])
    assert err.value.error_class is ErrorClass.NETWORK
    assert err.value.args[0].endswith("could not be reached: connection refused"), str(err.value)


def test_the_orgs_request_limit_stops_a_salesforce_write_as_a_spent_budget(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """Retrying cannot help once the org's rolling allocation is spent: the apply stops,
    resumable (exit 6), as on HubSpot's daily limit."""
    w = writer(crm, tmp_path, "salesforce")
    ids = crm.sf_create("Account", [{"Name": f"RQ {uid()}"}])
    crm.fault(kind="request_limit", side="salesforce", endpoint="*query*")
    try:
        with pytest.raises(BudgetExhausted, match="request limit"):
            w.current("Account", ids, ["Name"])
    finally:
        crm.clear_faults()
