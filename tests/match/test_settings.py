"""MatchSettings: JSON round trip, validation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from recon.errors import MatchError
from recon.match import Level, MatchSettings, default_settings


@pytest.mark.parametrize("entity", ["companies", "contacts"])
def test_round_trip(entity: str) -> None:
    s = default_settings(entity)  # type: ignore[arg-type]
    again = MatchSettings.from_json(s.to_json())
    assert again == s
    assert json.loads(again.to_json()) == json.loads(s.to_json())


def test_edited_json_applies() -> None:
    data = default_settings("companies").to_dict()
    data["thresholds"]["auto"] = 0.999
    assert MatchSettings.from_dict(data).thresholds.auto == 0.999


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        json.dumps({"entity": "companies"}),
    ],
)
def test_invalid_settings(bad: str) -> None:
    with pytest.raises(MatchError):
        MatchSettings.from_json(bad)


def test_unknown_level_op() -> None:
    with pytest.raises(MatchError, match="unknown op"):
        Level("x", "soundex")


def _generic_settings() -> MatchSettings:
    from recon.match import BlockingRule
    from recon.match import comparisons as C

    return MatchSettings(
        entity="contacts",
        comparisons=(
            C.text("surname", tokens=True),
            C.date("dob"),
            C.code("postcode", prefix=2),
            C.generic("state", "state", [("exact", "exact", None), ("lev", "levenshtein", 0.8)]),
        ),
        blocking_rules=(
            BlockingRule("dob", "exact", "dob"),
            BlockingRule("sur_post", "exact", "", columns=("surname", "postcode"), prefix=3),
        ),
    )


@pytest.mark.parametrize(
    "settings",
    [_generic_settings(), default_settings("person")],
    ids=["generic", "person"],
)
def test_round_trip_generic(settings: MatchSettings) -> None:
    again = MatchSettings.from_json(settings.to_json())
    assert again == settings
    assert again.blocking_rules[-1].columns == settings.blocking_rules[-1].columns
    assert json.loads(again.to_json()) == json.loads(settings.to_json())


@pytest.mark.parametrize(
    ("op", "threshold", "a", "b", "hit"),
    [
        ("date_transposed", None, "1980-03-12", "1980-12-03", True),
        ("date_transposed", None, "19800312", "19800312", False),
        ("date_transposed", None, "12/03/1980", "19801203", True),
        ("date_within", 10, "1980-03-12", "1980-03-20", True),
        ("date_within", 5, "1980-03-12", "1980-03-20", False),
        ("same_year", None, "19800312", "1980-11-01", True),
        ("same_year", None, "not a date", "1980-11-01", False),
        ("prefix", 3, "2615", "2617", True),
        ("prefix", 3, "2615", "2715", False),
        ("prefix", 3, "26", "26", False),
        ("levenshtein", 0.8, "jonathan", "jonathon", True),
        ("damerau", 0.8, "smith", "msith", True),
        ("damerau", 0.8, "smith", "jones", False),
        ("damerau", 0.8, "", "", False),
    ],
)
def test_generic_ops(op: str, threshold: float | None, a: str, b: str, hit: bool) -> None:
    import polars as pl

    from recon.match.comparisons import generic_test

    got = generic_test(op, threshold, pl.Series([a]), pl.Series([b]))
    assert got.tolist() == [hit]


def test_composite_key_needs_every_part() -> None:
    import polars as pl

    from recon.match import BlockingRule

    rule = BlockingRule("k", "exact", "", columns=("a", "b"), prefix=2)
    frame = pl.DataFrame({"a": ["xyz", None, "xy"], "b": ["123", "123", ""]})
    assert frame.select(rule.key_expr()).to_series().to_list() == ["xy|12", None, None]


@pytest.mark.parametrize("entity", ["companies", "contacts", "person"])
def test_every_ready_made_level_has_words_for_reviewers(entity) -> None:
    from recon.match.comparisons import LEVEL_MEANINGS

    labels = {lv.label for c in default_settings(entity).comparisons for lv in c.levels}
    missing = {lab for lab in labels if lab not in LEVEL_MEANINGS and not lab.startswith("prefix_")}
    assert not missing


def _edited(edit: object) -> dict:
    data = default_settings("companies").to_dict()
    edit(data)  # type: ignore[operator]
    return data


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda d: d["thresholds"].update(auto="0.99"), "thresholds.auto must be a number"),
        (lambda d: d["thresholds"].update(auto=1.7), "thresholds.auto must lie between 0 and 1"),
        (lambda d: d["thresholds"].update(review=0.999), "review must not exceed"),
        (lambda d: d["comparisons"][0].update(veto_auto=["els"]), "no level 'els'"),
        (lambda d: d.update(em_blocks=[{"rule": "nope", "fixes": []}]), "no blocking rule 'nope'"),
        # values EM and the sampler would crash on (math domain error, numpy seed, a
        # negative array size) or silently skip
        (lambda d: d.update(prior=5), "prior must be a number between 0 and 1"),
        (lambda d: d.update(prior=0), "prior must be a number between 0 and 1"),
        (lambda d: d.update(seed="abc"), "seed must be a whole number"),
        (
            lambda d: d.update(u_sample_pairs=-1),
            "u_sample_pairs must be a whole number of at least 1",
        ),
        (
            lambda d: d.update(em_iterations=-3),
            "em_iterations must be a whole number of at least 0",
        ),
        (
            lambda d: d["comparisons"][0]["levels"][1].update(threshold="hi"),
            r"threshold must be a number",
        ),
        (
            lambda d: d["comparisons"][0].update(levels=["null", "exact"]),
            r"levels\[0\] must be an object",
        ),
        (lambda d: d["thresholds"].update(auto=float("nan")), "thresholds.auto must be a number"),
        (
            lambda d: d["comparisons"][0]["levels"][1].update(threshold=float("nan")),
            "threshold must be a number",
        ),
        (
            lambda d: d.update(m_fixed={d["comparisons"][0]["name"]: ["x"]}),
            r"m_fixed\[.*\] must be \d+ probabilities",
        ),
        (
            lambda d: d.update(m_fixed={d["comparisons"][0]["name"]: [0.5]}),
            r"m_fixed\[.*\] must be \d+ probabilities",
        ),
        (lambda d: d.update(comparisons=None), "comparisons must be a list, not None"),
        (lambda d: d.update(m_fixed=[]), r"m_fixed must be an object, not \[\]"),
        (
            lambda d: d["blocking_rules"][0].update(keep=-1),
            r"keep must be a whole number of at least 1",
        ),
        # a lone name is not split into letters, a null column is no column
        (
            lambda d: d["blocking_rules"][1].update(columns="domain"),
            r"blocking_rules\[1\]\.columns must be a list of names, not 'domain'",
        ),
        (
            lambda d: d["comparisons"][0].update(veto_auto="exact"),
            r"comparisons\[0\]\.veto_auto must be a list of names",
        ),
        (
            lambda d: d["comparisons"][0].update(column=None),
            r"comparisons\[0\]\.column must be a name \(non-empty text\), not None",
        ),
        (
            lambda d: d["blocking_rules"][1].update(column=None),
            r"blocking_rules\[1\]\.column must be a name",
        ),
        (
            lambda d: d["blocking_rules"][1].update(columns=["domain", 3]),
            r"blocking_rules\[1\]\.columns must hold names \(text\), not 3",
        ),
    ],
)
def test_invalid_settings_name_every_problem(edit: object, named: str) -> None:
    with pytest.raises(MatchError, match=named):
        MatchSettings.from_dict(_edited(edit))
    with pytest.raises(MatchError, match=r"s\.json: .*" + named):
        MatchSettings.from_json(json.dumps(_edited(edit)), source="s.json")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda d: d.pop("comparisons"), "the settings has no 'comparisons'"),
        (lambda d: d["comparisons"][0].pop("column"), "comparisons[0] has no 'column'"),
        (lambda d: d["comparisons"].__setitem__(0, "x"), "comparisons[0] must be a JSON object"),
        (lambda d: d.__setitem__("blocking", []), "the settings: unknown key 'blocking'"),
        (lambda d: d["comparisons"][0]["levels"][0].__setitem__("labelx", 1),
         "comparisons[0].levels[0]: unknown key 'labelx'"),
    ],
)  # fmt: skip
def test_a_bad_settings_file_names_the_key_at_fault(change: Any, says: str) -> None:
    data = json.loads(default_settings("companies").to_json())
    change(data)
    with pytest.raises(MatchError) as err:
        MatchSettings.from_json(json.dumps(data), source="s.json")
    assert says in err.value.message and err.value.message.startswith("s.json:")
