"""recon.insights: the figures notebooks and `recon status` read."""

from __future__ import annotations

import pytest

from recon.errors import UsageError
from recon.insights import label_counts, runs_frame, threshold_curve
from recon.store import open_store, transaction


def _labelled(scores: list[tuple[float, str]]):  # type: ignore[no-untyped-def]
    db = open_store(":memory:")
    with transaction(db):
        for n, (score, label) in enumerate(scores):
            db["pairs"].insert({"pair_id": f"p{n}", "run_id": "match-1", "kind": "link",
                                "object": "companies", "score": score}, alter=True)  # fmt: skip
            db["decisions"].insert({"kind": "link", "object": "companies", "item_id": f"p{n}",
                                    "label": label, "decided_by": "human", "superseded": 0,
                                    "version": 1, "reviewer": "ana"})  # fmt: skip
    return db


def test_the_curves_first_threshold_proposes_every_labelled_pair() -> None:
    """The lowest score 0.935391 rounded up to a first threshold of 0.9354: the "take
    everything" row left that pair out."""
    db = _labelled([(0.935391, "non_match"), (0.97, "match"), (0.999, "match")])
    curve = threshold_curve(db)
    first = curve.row(0, named=True)
    assert first["threshold"] <= 0.935391 and first["proposed"] == 3
    assert curve["threshold"].is_sorted() and curve["threshold"][-1] == 1.0


@pytest.mark.parametrize(
    "call",
    [
        lambda db: label_counts(db, "bogus"),
        lambda db: threshold_curve(db, kind="conflict_value"),
        lambda db: threshold_curve(db, thresholds=[1.5, -1]),
        lambda db: runs_frame(db, "applies"),
    ],
)
def test_a_misspelt_kind_or_a_threshold_outside_0_to_1_is_an_error(call) -> None:  # type: ignore[no-untyped-def]
    """They gave an empty frame, read in a notebook as "no decisions yet" (or "no runs")."""
    with pytest.raises(UsageError):
        call(_labelled([(0.95, "match")]))


def test_label_counts_and_runs() -> None:
    db = _labelled([(0.95, "match"), (0.96, "match"), (0.97, "non_match")])
    assert label_counts(db).rows() == [("match", 2), ("non_match", 1)]
    assert runs_frame(db).height == 0


def test_misspelt_names_are_refused_not_read_as_nothing() -> None:
    """A notebook's misspelt source, object, column or an empty grid gave an empty frame
    (or the default grid), read as "no records" or "no decisions"."""
    import polars as pl

    from recon.insights import fill_rates, records_frame
    from recon.plan import approved_items

    db = open_store(":memory:")
    assert records_frame(db, "salesforce", "Lead").height == 0  # known names: empty is empty
    with pytest.raises(UsageError, match="unknown source 'hubspt'"):
        records_frame(db, "hubspt")
    with pytest.raises(UsageError, match="unknown object 'account'") as bad:
        records_frame(db, "salesforce", "account")
    assert "Account" in str(bad.value)
    frame = pl.DataFrame({"source": ["hubspot"], "object": ["companies"], "name": ["A"]})
    assert fill_rates(frame, ("name",))["rate"].to_list() == [1.0]
    with pytest.raises(UsageError, match="no column 'nmae'"):
        fill_rates(frame, ("nmae",))
    with pytest.raises(UsageError, match="thresholds is empty"):
        threshold_curve(db, thresholds=[])
    with pytest.raises(UsageError, match="no plan run 'plan-nosuch'"):
        approved_items(db, "plan-nosuch")
