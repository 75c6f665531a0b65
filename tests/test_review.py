"""recon.review: the queue, item detail, decisions in the labels shape, conflicts, bulk, undo, stats.

Every action asserts the ``decisions`` table afterwards. Data: small generated
rows written straight into the pinned tables (bench/bench_review.py:fill_store).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from recon import review, review_plan
from recon.config import ReconConfig
from recon.errors import ReviewerConflict, ReviewError
from recon.store import open_store

_spec = importlib.util.spec_from_file_location(
    "bench_review", Path(__file__).resolve().parents[1] / "bench" / "bench_review.py"
)
assert _spec and _spec.loader
bench_review = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_review)


@pytest.fixture
def db() -> sqlite_utils.Database:
    store = open_store(":memory:")
    bench_review.fill_store(store, links=40, clusters=6, conflicts=6)
    return store


def all_items(db: sqlite_utils.Database, **kw: Any) -> list[dict[str, Any]]:
    return review.queue(db, review.QueueFilter(**{"status": "all", **kw}), page_size=500).items


def current(db: sqlite_utils.Database, item_id: str) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in db.query(
            "select * from decisions where item_id = ? and superseded = 0 order by decision_id",
            [item_id],
        )
    ]


def first(db: sqlite_utils.Database, kind: str) -> dict[str, Any]:
    return review.queue(db, review.QueueFilter(kinds=(kind,)), page_size=1).items[0]


# --------------------------------------------------------------------------- queue


def test_empty_store_has_an_empty_queue(fresh_db: sqlite_utils.Database) -> None:
    page = review.queue(fresh_db)
    assert (page.items, page.total, page.pages) == ([], 0, 1)
    assert review.ensure_queue(fresh_db)["match_run_id"] is None


def test_queue_holds_every_kind_sorted_for_review(db: sqlite_utils.Database) -> None:
    items = all_items(db)
    assert {k: sum(i["kind"] == k for i in items) for k in ("link", "duplicate", "conflict")} == {
        "link": 40,
        "duplicate": 6,
        "conflict": 6,
    }
    keys = [(i["tier_rank"], i["closeness"], i["item_id"]) for i in items]
    assert keys == sorted(keys)
    assert items[0]["tier"] == "review"
    ranks = [i["tier_rank"] for i in items]
    assert ranks.index(1) > max(j for j, r in enumerate(ranks) if r == 0)
    th = review.thresholds(db)
    link = next(i for i in items if i["kind"] == "link")
    assert link["closeness"] == pytest.approx(
        abs(link["score"] - th[link["object"]]["link"]["auto"])
    )


@pytest.mark.parametrize("size", [1, 7, 50])
def test_pages_cover_the_queue_once(db: sqlite_utils.Database, size: int) -> None:
    filt = review.QueueFilter(status="all")
    total = review.queue(db, filt, page_size=size).total
    seen: list[str] = []
    for page in range(review.queue(db, filt, page_size=size).pages):
        seen += [i["item_id"] for i in review.queue(db, filt, page=page, page_size=size).items]
    assert len(seen) == len(set(seen)) == total == 52
    assert seen == [i["item_id"] for i in all_items(db)]


@pytest.mark.parametrize("size", [1, 7, 50])
def test_deferred_items_wait_behind_the_unanswered_ones(
    db: sqlite_utils.Database, size: int
) -> None:
    """Undecided: the items nobody answered first, the deferred ones after them, each part
    in the queue's order (tier, closeness, item id), across every page."""
    everything = all_items(db)
    deferred = {everything[i]["item_id"] for i in (0, 3, 20, 51)}  # the best one, the last one
    decided = next(
        i["item_id"] for i in everything if i["kind"] == "link" and i["item_id"] not in deferred
    )
    for item_id in sorted(deferred):
        review.decide(db, item_id, "defer", reviewer="ana", based_on_version=0)
    review.decide(db, decided, "approve", reviewer="ana", based_on_version=0)
    order = [i["item_id"] for i in everything if i["item_id"] != decided]
    expected = [i for i in order if i not in deferred] + [i for i in order if i in deferred]
    first_page = review.queue(db, page_size=size)
    seen: list[str] = []
    for page in range(first_page.pages):
        seen += [i["item_id"] for i in review.queue(db, page=page, page_size=size).items]
    assert seen == expected and first_page.total == len(expected) == 51
    assert seen[0] not in deferred
    labels = [i["label"] for i in review.queue(db, page_size=51).items]
    assert set(labels[-4:]) <= set(review.DEFERRED_LABELS) and labels[:-4] == [None] * 47
    # another status keeps the queue's order: deferred items among the others
    assert [i["item_id"] for i in all_items(db)] == [i["item_id"] for i in everything]


@pytest.mark.parametrize(
    ("kw", "check"),
    [
        ({"kinds": ("duplicate",)}, lambda i: i["kind"] == "duplicate"),
        ({"kinds": ("link", "conflict")}, lambda i: i["kind"] in ("link", "conflict")),
        ({"objects": ("contacts",)}, lambda i: i["object"] == "contacts"),
        ({"tiers": ("auto",)}, lambda i: i["tier"] == "auto"),
        (
            {"score_min": 0.6, "score_max": 0.8},
            lambda i: i["score"] is not None and 0.6 <= i["score"] <= 0.8,
        ),
        ({"text": "SMITH1"}, lambda i: "smith1" in i["search"]),
        ({"text": "smith ana"}, lambda i: "ana" in i["search"] and "smith" in i["search"]),
    ],
)
def test_filters(db: sqlite_utils.Database, kw: dict[str, Any], check: Any) -> None:
    got = all_items(db, **kw)
    everything = all_items(db)  # after: a text filter has filled the search text
    assert got, f"filter {kw} matched nothing in the generated data"
    assert [i["item_id"] for i in got] == [i["item_id"] for i in everything if check(i)]
    assert review.queue(db, review.QueueFilter(status="all", **kw)).total == len(got)


def test_link_labels_and_search_text_are_filled_on_the_first_search(
    db: sqlite_utils.Database,
) -> None:
    review.ensure_queue(db)
    missing = "select count(*) from review_queue where kind = 'link' and search is null"
    assert db.execute(missing).fetchone()[0] == 40  # indexing skips the record labels
    page = review.queue(db, review.QueueFilter(kinds=("link",)), page_size=3)
    assert all("  ↔  " in i["title"] for i in page.items)  # titles come with the page
    assert (
        review.item_detail(db, page.items[0]["item_id"])["item"]["title"] == page.items[0]["title"]
    )
    review.queue(db, review.QueueFilter(text="smith"))
    assert db.execute(missing).fetchone()[0] == 0
    before = db.execute("select built_at from review_state where name = 'search'").fetchone()
    review.ensure_search(db)  # once per queue
    assert (
        db.execute("select built_at from review_state where name = 'search'").fetchone() == before
    )


def test_status_and_reviewer_filters(db: sqlite_utils.Database) -> None:
    a, b, c = (i["item_id"] for i in all_items(db, kinds=("link",))[:3])
    review.decide(db, a, "approve", reviewer="ana", based_on_version=0)
    review.decide(db, b, "defer", reviewer="ben", based_on_version=0)
    review.decide(db, c, "reject", reviewer="Ben@Example.com", based_on_version=0)

    def ids(**kw: Any) -> set[str]:
        return {
            i["item_id"] for i in review.queue(db, review.QueueFilter(**kw), page_size=500).items
        }

    assert ids(status="decided") == {a, c}
    assert ids(status="deferred") == {b}
    assert a not in ids(status="undecided") and b in ids(status="undecided")
    assert ids(status="all", reviewer="ben") == {b, c}  # any case, any part of the name
    assert ids(status="all", reviewer=" BEN@example.com ") == {c}
    with pytest.raises(ReviewError):
        review.queue(db, review.QueueFilter(status="maybe"))


def test_queue_is_rebuilt_for_a_new_match_run_and_decisions_carry_over(
    db: sqlite_utils.Database,
) -> None:
    item = first(db, "link")
    review.decide(db, item["item_id"], "approve", reviewer="ana", based_on_version=0)
    db.execute(
        "insert into runs (run_id, stage, status, started_at) values ('match-2', 'match', 'ok', '2027-01-01T00:00:00Z')"
    )
    db.execute(
        "insert into pairs select 'match-2', pair_id, kind, object, source_l, object_l, record_id_l, source_r, "
        "object_r, record_id_r, score, match_weight, tier, explanation, cluster_id, flags from pairs where pair_id = ?",
        [item["item_id"]],
    )
    state = review.ensure_queue(db)
    assert state["match_run_id"] == "match-2"
    kinds = {i["kind"] for i in all_items(db)}
    assert "duplicate" not in kinds and "link" in kinds  # the new run has no clusters
    [again] = all_items(db, kinds=("link",))
    assert (again["item_id"], again["run_id"], again["label"]) == (
        item["item_id"],
        "match-2",
        "match",
    )


# --------------------------------------------------------------------------- detail


@pytest.mark.parametrize(
    ("field", "values", "same"),
    [
        ("phone", ["+46967790396", "0046 967790396"], True),
        ("phone", ["+46967790396", "+46967790397"], False),
        ("country", ["Germany", "Deutschland"], True),
        ("country", ["Germany", "Austria"], False),
        ("website", ["https://www.acme.com/", "acme.com"], True),
        ("city", ["Oslo", " oslo"], True),
        ("city", ["Oslo", None], False),
        ("city", [None, ""], True),
    ],
)
def test_side_by_side_values_compare_as_the_plan_does(field: str, values: list, same: bool) -> None:
    """ "Germany" against "Deutschland" and one phone in two forms were flagged "≠" while the
    explanation and the plan held them equal."""
    from recon.review_detail import _same

    assert _same(values, field) is same


def test_link_detail(db: sqlite_utils.Database) -> None:
    item = next(i for i in all_items(db, kinds=("link",), objects=("companies",)))
    cfg = ReconConfig(hubspot={"portal_id": "42"})
    d = review.item_detail(db, item["item_id"], cfg)
    hs, sf = d["records"]
    assert (hs["source"], sf["source"]) == ("hubspot", "salesforce")
    assert hs["link"] == f"https://app.hubspot.com/contacts/42/record/0-2/{hs['record_id']}"
    assert sf["link"] is None  # no instance_url configured
    assert isinstance(hs["data"], dict) and hs["data"]["name"] == hs["name"]
    website = next(f for f in d["fields"] if f["field"] == "website")
    # one site written two ways: alike, as to the plan (no "≠" the plan contradicts)
    assert (
        website["values"][0].startswith("https://") and website["values"][0] != website["values"][1]
    )
    assert not website["differs"]
    assert not next(f for f in d["fields"] if f["field"] == "domain")["differs"]
    exp = d["explanation"]
    assert exp["score"] == item["score"] and [lv["comparison"] for lv in exp["levels"]] == [
        "name",
        "domain",
    ]
    assert exp["total"] == pytest.approx(sum(lv["weight"] for lv in exp["levels"]), abs=1e-6)
    assert all(lv["meaning"] for lv in exp["levels"])  # levels in words for the reviewer
    assert any(r["relation"] == "contact of this company" for r in d["related"])
    assert d["versions"] == {} and d["history"] == []


def test_record_links() -> None:
    cfg = ReconConfig(
        hubspot={"portal_id": "7", "app_url": "https://app-eu1.hubspot.com"},
        salesforce={
            "instance_url": "https://acme.my.salesforce.com",
            "client_id": "env:A",
            "client_secret": "env:B",
        },
    )
    assert (
        review.record_link(cfg, "hubspot", "contacts", "5")
        == "https://app-eu1.hubspot.com/contacts/7/record/0-1/5"
    )
    assert (
        review.record_link(cfg, "salesforce", "Lead", "00Q1")
        == "https://acme.my.salesforce.com/lightning/r/Lead/00Q1/view"
    )
    assert review.record_link(None, "hubspot", "contacts", "5") is None


def test_contact_detail_lists_leads_and_contacts_sharing_the_email(
    db: sqlite_utils.Database,
) -> None:
    item = next(i for i in all_items(db, kinds=("link",)) if i["record_id_l"] == "500003")
    d = review.item_detail(db, item["item_id"])
    shared = {
        (r["object"], r["record_id"]) for r in d["related"] if r["relation"] == "shares the email"
    }
    assert ("Lead", "00Q900000000000003") in shared and ("Contact", "003000000000000003") in shared


def test_cluster_and_conflict_detail(db: sqlite_utils.Database) -> None:
    cluster = first(db, "duplicate")
    d = review.item_detail(db, cluster["item_id"])
    assert len(d["records"]) == cluster["members"] >= 2
    assert d["pairs"] and d["merge_item_id"]
    assert next(f for f in d["fields"] if f["field"] == "city")["differs"]
    conflict = first(db, "conflict")
    d = review.item_detail(db, conflict["item_id"])
    assert [o["source"] for o in d["options"]] == ["hubspot", "salesforce"]
    assert not any(o.get("proposed") for o in d["options"])
    assert (
        d["plan"]["field"] == conflict["field"] and d["explanation"]["score"] == conflict["score"]
    )
    # a conflict whose plan proposes the newer side marks that option
    db.execute(
        "update plan_items set after = ? where item_id = ?",
        [json.dumps({"side": "salesforce", "value": "x"}), conflict["item_id"]],
    )
    marked = review.item_detail(db, conflict["item_id"])["options"]
    assert [o.get("proposed", False) for o in marked] == [False, True]
    with pytest.raises(ReviewError, match="no review item"):
        review.item_detail(db, "nope")


# --------------------------------------------------------------------------- decisions


@pytest.mark.parametrize(
    ("kind", "action", "label"),
    [
        ("link", "approve", "match"),
        ("link", "reject", "non_match"),
        ("link", "defer", "unsure"),
        ("duplicate", "approve", "match"),
        ("duplicate", "reject", "non_match"),
        ("conflict", "reject", "reject"),
        ("conflict", "defer", "defer"),
    ],
)
def test_decide_writes_the_labels_shape(
    db: sqlite_utils.Database, kind: str, action: str, label: str
) -> None:
    item = first(db, kind)
    row = review.decide(db, item["item_id"], action, reviewer="ana", based_on_version=0, note="n")
    [stored] = current(db, item["item_id"])
    assert stored == row
    assert (
        stored["kind"]
        == {"link": "link", "duplicate": "duplicate", "conflict": "conflict_value"}[kind]
    )
    assert (stored["label"], stored["decided_by"], stored["reviewer"]) == (label, "human", "ana")
    assert (stored["version"], stored["based_on_version"], stored["superseded"]) == (1, 0, 0)
    assert (stored["object"], stored["source_l"], stored["record_id_l"]) == (
        item["object"],
        item["source_l"],
        item["record_id_l"],
    )
    assert stored["record_id_r"] == item["record_id_r"] and stored["run_id"] == item["run_id"]
    assert stored["decided_at"].endswith("Z")
    if item["object"] == "contacts" and item["source_r"] == "salesforce":
        assert stored["salesforce_object"] == item["object_r"]
    if kind == "conflict":
        assert json.loads(stored["choice"]) == {"field": item["field"]}


def test_redecision_raises_the_version_and_supersedes(db: sqlite_utils.Database) -> None:
    item = first(db, "link")
    review.decide(db, item["item_id"], "defer", reviewer="ana", based_on_version=0)
    review.decide(db, item["item_id"], "approve", reviewer="ana", based_on_version=1)
    rows = [
        dict(r)
        for r in db.query(
            "select * from decisions where item_id = ? order by version", [item["item_id"]]
        )
    ]
    assert [(r["label"], r["version"], r["based_on_version"], r["superseded"]) for r in rows] == [
        ("unsure", 1, 0, 1),
        ("match", 2, 1, 0),
    ]
    assert review.item_detail(db, item["item_id"])["versions"] == {"link": 2}


def test_two_reviewers_deciding_the_same_version_is_a_conflict(db: sqlite_utils.Database) -> None:
    item = first(db, "link")
    review.decide(db, item["item_id"], "approve", reviewer="ana", based_on_version=0)
    with pytest.raises(ReviewerConflict, match="ana decided this item") as exc:
        review.decide(db, item["item_id"], "reject", reviewer="ben", based_on_version=0)
    assert exc.value.current["reviewer"] == "ana"  # type: ignore[attr-defined]
    assert [(r["reviewer"], r["label"]) for r in current(db, item["item_id"])] == [("ana", "match")]
    assert db.execute("select count(*) from decisions").fetchone()[0] == 1


def test_decisions_need_a_reviewer_and_a_known_action(db: sqlite_utils.Database) -> None:
    item = first(db, "link")
    with pytest.raises(ReviewError, match="sign in"):
        review.decide(db, item["item_id"], "approve", reviewer=None, based_on_version=0)
    with pytest.raises(ReviewError, match="unknown action"):
        review.decide(db, item["item_id"], "merge", reviewer="ana", based_on_version=0)
    with pytest.raises(ReviewError, match="proposes no value"):
        review.decide(
            db, first(db, "conflict")["item_id"], "approve", reviewer="ana", based_on_version=0
        )
    assert db.execute("select count(*) from decisions").fetchone()[0] == 0


@pytest.mark.parametrize("side", ["hubspot", "salesforce"])
def test_choose_the_surviving_value_of_a_conflict(db: sqlite_utils.Database, side: str) -> None:
    item = first(db, "conflict")
    option = next(
        o for o in review.item_detail(db, item["item_id"])["options"] if o["source"] == side
    )
    review.choose_value(
        db,
        item["item_id"],
        item["field"],
        option["value"],
        source=side,
        reviewer="ana",
        based_on_version=0,
    )
    [row] = current(db, item["item_id"])
    assert (row["kind"], row["label"]) == ("conflict_value", "approve")
    assert json.loads(row["choice"]) == {
        "field": item["field"],
        "value": option["value"],
        "source": side,
        "side": side,
    }
    assert review.item_detail(db, item["item_id"])["versions"] == {
        f"conflict_value:{item['field']}": 1
    }
    with pytest.raises(ReviewerConflict):
        review.choose_value(
            db, item["item_id"], item["field"], "x", source=side, reviewer="ben", based_on_version=0
        )


def test_surviving_values_of_a_cluster_go_on_its_merge_item(db: sqlite_utils.Database) -> None:
    cluster = first(db, "duplicate")
    merge = review.item_detail(db, cluster["item_id"])["merge_item_id"]
    review.choose_value(
        db,
        cluster["item_id"],
        "city",
        "Oslo",
        source="hubspot:1",
        reviewer="ana",
        based_on_version=0,
    )
    review.choose_value(
        db,
        cluster["item_id"],
        "name",
        "Acme",
        source="hubspot:2",
        reviewer="ana",
        based_on_version=0,
    )
    rows = current(db, merge)
    assert [json.loads(r["choice"])["fields"] for r in rows] == [
        {"city": "Oslo"},
        {"city": "Oslo", "name": "Acme"},
    ]
    d = review.item_detail(db, cluster["item_id"])
    assert d["chosen"] == {"city": "Oslo", "name": "Acme"} and len(d["history"]) == 2
    with pytest.raises(ReviewError, match="conflict items"):
        review.choose_value(
            db,
            first(db, "link")["item_id"],
            "city",
            "x",
            source="hubspot",
            reviewer="ana",
            based_on_version=0,
        )


def test_choose_master(db: sqlite_utils.Database) -> None:
    cluster = first(db, "duplicate")
    member = review.item_detail(db, cluster["item_id"])["records"][-1]
    review.choose_master(
        db, cluster["item_id"], "hubspot", member["record_id"], reviewer="ana", based_on_version=0
    )
    [row] = current(db, cluster["item_id"])
    assert (row["kind"], row["label"]) == ("master", "approve")
    assert json.loads(row["choice"]) == {
        "master": member["record_id"],
        "source": "hubspot",
        "object": "companies",
    }
    with pytest.raises(ReviewError, match="not a member"):
        review.choose_master(
            db, cluster["item_id"], "hubspot", "999", reviewer="ana", based_on_version=1
        )


def test_choosing_the_master_a_cluster_has_records_nothing(db: sqlite_utils.Database) -> None:
    """Picking the record that already is the master (the plan's, then the reviewer's own
    choice) writes no repeat decision: there is nothing new to record, or for undo to take."""
    cluster = first(db, "duplicate")["item_id"]
    detail = review.item_detail(db, cluster)
    planned = detail["master"]
    assert planned is not None and planned["by"] == "plan"
    source = detail["records"][0]["source"]
    assert (
        review.choose_master(
            db, cluster, source, planned["record_id"], reviewer="ana", based_on_version=0
        )
        is None
    )
    assert current(db, cluster) == []
    other = next(
        r["record_id"] for r in detail["records"] if r["record_id"] != planned["record_id"]
    )
    row = review.choose_master(db, cluster, source, other, reviewer="ana", based_on_version=0)
    assert row is not None and row["version"] == 1
    again = review.choose_master(db, cluster, source, other, reviewer="ben", based_on_version=1)
    assert again is None
    assert [(r["kind"], r["version"], r["reviewer"]) for r in current(db, cluster)] == [
        ("master", 1, "ana")
    ]


def test_split_a_cluster(db: sqlite_utils.Database) -> None:
    cluster = next(i for i in all_items(db, kinds=("duplicate",)) if i["members"] == 3)
    ids = [r["record_id"] for r in review.item_detail(db, cluster["item_id"])["records"]]
    review.split_cluster(db, cluster["item_id"], [[ids[0]]], reviewer="ana", based_on_version=0)
    [row] = current(db, cluster["item_id"])
    assert (row["kind"], row["label"]) == ("split", "non_match")
    groups = [[m["record_id"] for m in g] for g in json.loads(row["choice"])["groups"]]
    assert sorted(groups) == sorted([[ids[0]], [ids[1]], [ids[2]]])
    assert cluster["item_id"] in {i["item_id"] for i in all_items(db, status="decided")}
    for bad in ([[ids[0]], [ids[0]]], [["nope"]], [ids]):
        with pytest.raises(ReviewError):
            review.split_cluster(db, cluster["item_id"], bad, reviewer="ana", based_on_version=1)


def test_a_conflict_of_a_rejected_link_waits_for_nobody(db: sqlite_utils.Database) -> None:
    """Rejecting a link answers its conflicts until the next plan leaves them out: they leave
    the undecided queue (its count, `recon status`), count as decided, and take no decision;
    undoing the rejection brings them back."""
    conflict = first(db, "conflict")
    cid, link = conflict["item_id"], conflict["link_item_id"]
    undecided = review.queue(db, review.QueueFilter(kinds=("conflict",))).total
    review.decide(db, link, "reject", reviewer="ben", based_on_version=0)
    assert review.queue(db, review.QueueFilter(kinds=("conflict",))).total == undecided - 1
    assert cid not in {i["item_id"] for i in all_items(db, kinds=("conflict",), status="undecided")}
    [shown] = [i for i in all_items(db, kinds=("conflict",), status="decided")]
    assert (shown["item_id"], shown["label"], shown["link_rejected"]) == (cid, None, 1)
    tiers = {(t["kind"], t["object"]): t["decided"] for t in review.tier_counts(db)}
    assert tiers[("conflict", conflict["object"])] == 1
    detail = review.item_detail(db, cid)
    assert detail["settled"] and "its link was rejected (by ben)" in detail["settled"]
    for attempt in (
        lambda: review.decide(db, cid, "reject", reviewer="ana", based_on_version=0),
        lambda: review.decide(db, cid, "defer", reviewer="ana", based_on_version=0),
        lambda: review.choose_value(
            db, cid, conflict["field"], "x", source="hubspot", reviewer="ana", based_on_version=0
        ),
    ):
        with pytest.raises(ReviewError, match="its link was rejected"):
            attempt()
    assert current(db, cid) == []
    review.undo_last(db, "ben")  # the link is undecided again: so is its conflict
    assert review.queue(db, review.QueueFilter(kinds=("conflict",))).total == undecided
    assert review.item_detail(db, cid)["settled"] is None
    review.decide(db, cid, "defer", reviewer="ana", based_on_version=0)


# --------------------------------------------------------------------------- bulk and undo


@pytest.mark.parametrize("tier", ["auto", "review"])
def test_bulk_approve_a_tier(db: sqlite_utils.Database, tier: str) -> None:
    expected = [i for i in all_items(db, tiers=(tier,)) if i["kind"] != "conflict"]
    review.decide(db, expected[0]["item_id"], "reject", reviewer="ben", based_on_version=0)
    review.decide(db, expected[1]["item_id"], "defer", reviewer="ben", based_on_version=0)
    n = review.count_bulk(db, tier=tier)
    # the rejected one stays rejected; the deferred one waits for a person
    assert n == len(expected) - 2
    assert review.bulk_approve(db, tier=tier, reviewer="ana", expected=n) == n
    rows = [
        dict(r)
        for r in db.query("select * from decisions where reviewer = 'ana' and superseded = 0")
    ]
    assert (
        len(rows) == n
        and {r["label"] for r in rows} == {"match"}
        and len({r["note"] for r in rows}) == 1
    )
    assert {r["item_id"] for r in rows} == {i["item_id"] for i in expected[2:]}
    deferred = [
        dict(r)
        for r in db.query(
            "select * from decisions where item_id = ? order by version", [expected[1]["item_id"]]
        )
    ]
    assert [(r["version"], r["label"], r["superseded"]) for r in deferred] == [(1, "unsure", 0)]
    assert review.count_bulk(db, tier=tier) == 0


def test_bulk_approve_the_current_filter_checks_the_count(db: sqlite_utils.Database) -> None:
    filt = review.QueueFilter(objects=("companies",), kinds=("link", "conflict"))
    n = review.count_bulk(db, filt)
    assert n == len(all_items(db, objects=("companies",), kinds=("link",)))
    with pytest.raises(ReviewerConflict, match="count again"):
        review.bulk_approve(db, filt, reviewer="ana", expected=n + 1)
    assert db.execute("select count(*) from decisions").fetchone()[0] == 0
    assert review.bulk_approve(db, filt, reviewer="ana", expected=n) == n
    kinds = {r[0] for r in db.execute("select distinct kind from decisions")}
    assert kinds == {"link"}  # conflicts are never bulk approved
    assert review.count_bulk(db, review.QueueFilter(kinds=("conflict",))) == 0


def test_bulk_approve_checks_the_items_shown_not_only_their_count(
    db: sqlite_utils.Database,
) -> None:
    items = [i for i in all_items(db, tiers=("auto",)) if i["kind"] != "conflict"]
    first, second = items[0]["item_id"], items[1]["item_id"]
    review.decide(db, first, "reject", reviewer="ben", based_on_version=0)
    shown = review.bulk_preview(db, tier="auto")
    assert shown.count == review.count_bulk(db, tier="auto") == len(items) - 1
    # meanwhile one item shown is decided and the one left out comes back: same count
    review.decide(db, second, "reject", reviewer="cy", based_on_version=0)
    review.undo_last(db, "ben")
    assert review.count_bulk(db, tier="auto") == shown.count
    with pytest.raises(ReviewerConflict, match="not the same ones"):
        review.bulk_approve(db, tier="auto", reviewer="ana", expected=shown)
    assert db.execute("select count(*) from decisions where reviewer = 'ana'").fetchone()[0] == 0
    again = review.bulk_preview(db, tier="auto")
    assert review.bulk_approve(db, tier="auto", reviewer="ana", expected=again) == again.count


def test_text_search_folds_accents_and_case_and_takes_wildcards_literally(
    db: sqlite_utils.Database,
) -> None:
    links = all_items(db, kinds=("link",))
    item = next(i for i in links if i["object"] == "contacts")
    for side in ("l", "r"):
        db.execute(
            "update snapshots set name = 'Émile Ørsted' where source = ? and object = ? "
            "and record_id = ?",
            [item[f"source_{side}"], item[f"object_{side}"], item[f"record_id_{side}"]],
        )

    def found(text: str) -> int:
        return review.queue(db, review.QueueFilter(status="all", kinds=("link",), text=text)).total

    assert found("Émile") == found("émile") == found("EMILE") == found("ørsted") == 1
    assert found("orsted") == found("emile orsted") == 1
    assert found("_") == found("%") == 0


def test_bulk_with_a_text_filter_on_a_queue_never_searched(db: sqlite_utils.Database) -> None:
    filt = review.QueueFilter(kinds=("link",), text="smith")
    n = review.count_bulk(db, filt)  # before any page was read with this filter
    assert n == review.queue(db, filt).total > 0
    assert review.bulk_approve(db, filt, reviewer="ana", expected=n) == n


def test_approving_and_splitting_a_cluster_share_one_version_chain(
    db: sqlite_utils.Database,
) -> None:
    from recon.plan import approved_items

    run = review.ensure_queue(db)["plan_run_id"]
    cluster = first(db, "duplicate")
    cid = cluster["item_id"]
    detail = review.item_detail(db, cid)
    members = [r["record_id"] for r in detail["records"]]
    merge = detail["merge_item_id"]
    # two reviewers opened the cluster at version 0: the second answer is a conflict
    review.split_cluster(db, cid, [members[:1]], reviewer="ana", based_on_version=0)
    with pytest.raises(ReviewerConflict):
        review.decide(db, cid, "approve", reviewer="ben", based_on_version=0)
    # approve, defer, approve, then a split: the split is what the plan reads, too
    versions = review.item_detail(db, cid)["versions"]
    assert versions["split"] == versions["duplicate"] == 1
    review.decide(db, cid, "approve", reviewer="ana", based_on_version=1)
    review.decide(db, cid, "defer", reviewer="ana", based_on_version=2)
    review.decide(db, cid, "approve", reviewer="ana", based_on_version=3)
    assert any(i["item_id"] == merge for i in approved_items(db, run))
    review.split_cluster(db, cid, [members[:1]], reviewer="ben", based_on_version=4)
    assert not any(i["item_id"] == merge for i in approved_items(db, run))
    # undone, the approval is current again
    review.undo_last(db, "ben")
    assert any(i["item_id"] == merge for i in approved_items(db, run))


def test_a_store_with_one_current_decision_of_each_kind_can_decide_again(
    db: sqlite_utils.Database,
) -> None:
    """Stores from before the shared chain may hold a current approval and a current split."""
    cid = first(db, "duplicate")["item_id"]
    review.decide(db, cid, "approve", reviewer="ana", based_on_version=0)
    review.decide(db, cid, "defer", reviewer="ana", based_on_version=1)
    review.decide(db, cid, "approve", reviewer="ana", based_on_version=2)
    db.execute(  # a split of the old kind-only chain: version 1, newer, not superseding
        "insert into decisions (kind, item_id, label, decided_by, reviewer, decided_at, version, "
        "superseded, choice) values ('split', ?, 'non_match', 'human', 'ben', '2999-01-01', 1, 0, "
        "'{\"groups\": []}')",
        [cid],
    )
    version = review.item_detail(db, cid)["versions"]["duplicate"]
    assert version == 1  # the newest decision's
    review.decide(db, cid, "approve", reviewer="ana", based_on_version=version)


def test_applied_already_counts_decisions_an_apply_acted_on() -> None:
    """Undoing a bulk approval of creates that were applied, or a stale write sent anyway,
    said nothing of the CRM keeping what was written: a stale write's journal row is under
    the plan item it stands for, a chosen conflict value under an id of its own, and a bulk
    undo takes back many decisions. A rejection, or an approval made after the write, allowed
    nothing that was written."""
    from recon.models import stable_id

    db = open_store(":memory:")
    db["plan_items"].insert_all(
        [{"run_id": "plan-1", "item_id": "u1", "link_item_id": "pair-1", "action": "update"},
         {"run_id": "plan-1", "item_id": "c1", "link_item_id": None, "action": "create"},
         {"run_id": "plan-1", "item_id": "k1", "link_item_id": "pair-3", "action": "conflict"}]
    )  # fmt: skip
    written = "2024-06-01T12:00:00.000Z"
    db["journal"].insert_all(
        [{"run_id": "apply-1", "item_id": i, "plan_run_id": "plan-1", "state": "confirmed",
          "updated_at": written}
         for i in ("u1", "c1", stable_id("k1", "salesforce"))]
    )  # fmt: skip
    before, after = "2024-06-01T09:00:00.000Z", "2024-06-02T09:00:00.000Z"

    def d(item_id: str, label: str = "match", at: str = before, choice: Any = None) -> dict:
        return {"item_id": item_id, "label": label, "decided_at": at,
                "choice": json.dumps(choice) if choice is not None else None}  # fmt: skip

    rows = [
        d("pair-1"),  # a link whose update was written
        d("c1", "approve"),  # a create approved in bulk, written
        d("stale:x", "approve", choice={"stale_of": "u1"}),  # a stale write sent anyway
        d("k1", "approve", choice={"side": "hubspot"}),  # a chosen conflict value, written
        d("pair-3"),  # the link of that conflict
    ]
    assert review.applied_already(db, rows) == 5
    assert review.applied_already(db, [d("pair-2")]) == 0  # nothing written
    assert review.applied_already(db, [d("pair-1", "non_match")]) == 0  # allowed no write
    assert review.applied_already(db, [d("pair-1", at=after)]) == 0  # written before it


def test_undo_restores_the_previous_decision(db: sqlite_utils.Database) -> None:
    item = first(db, "link")
    review.decide(db, item["item_id"], "defer", reviewer="ana", based_on_version=0)
    review.decide(db, item["item_id"], "approve", reviewer="ana", based_on_version=1)
    [undone] = review.undo_last(db, "ana")
    assert undone["label"] == "match"
    rows = [
        dict(r)
        for r in db.query(
            "select * from decisions where item_id = ? order by version", [item["item_id"]]
        )
    ]
    assert [(r["label"], r["superseded"]) for r in rows] == [("unsure", 0), ("match", 1)]
    assert rows[1]["note"] == "[undone]"
    # deciding again builds on the restored version and raises the version past the undone one
    row = review.decide(db, item["item_id"], "reject", reviewer="ana", based_on_version=1)
    assert row["version"] == 3
    review.undo_last(db, "ana")
    review.undo_last(db, "ana")
    assert current(db, item["item_id"]) == []
    assert review.undo_last(db, "ana") == []


def test_undo_a_bulk_approve_undoes_the_whole_batch(db: sqlite_utils.Database) -> None:
    single = first(db, "conflict")
    review.decide(db, single["item_id"], "defer", reviewer="ana", based_on_version=0)
    n = review.count_bulk(db, tier="auto")
    review.bulk_approve(db, tier="auto", reviewer="ana", expected=n)
    assert len(review.undo_last(db, "ana")) == n
    assert db.execute("select count(*) from decisions where superseded = 0").fetchone()[0] == 1
    review.undo_last(db, "ana")
    assert db.execute("select count(*) from decisions where superseded = 0").fetchone()[0] == 0


def test_undo_only_touches_the_reviewers_own_decisions(db: sqlite_utils.Database) -> None:
    a, b = (i["item_id"] for i in all_items(db, kinds=("link",))[:2])
    review.decide(db, a, "approve", reviewer="ana", based_on_version=0)
    review.decide(db, b, "approve", reviewer="ben", based_on_version=0)
    assert review.undo_last(db, "ana")[0]["item_id"] == a
    assert [r["reviewer"] for r in current(db, b)] == ["ben"]


def test_an_undone_decision_names_the_queue_item_to_reopen(db: sqlite_utils.Database) -> None:
    """A value chosen for a cluster's merge is decided on the merge's plan item, which the
    queue does not hold: the item to reopen is its cluster."""
    cluster, link = first(db, "duplicate")["item_id"], first(db, "link")["item_id"]
    merge = review.item_detail(db, cluster)["merge_item_id"]
    review.decide(db, link, "approve", reviewer="ana", based_on_version=0)
    review.choose_value(
        db, cluster, "city", "Oslo", source="hubspot:1", reviewer="ana", based_on_version=0
    )
    [value] = review.undo_last(db, "ana")
    assert (value["item_id"], review.decision_item(db, value)) == (merge, cluster)
    [approval] = review.undo_last(db, "ana")
    assert review.decision_item(db, approval) == link


def test_decisions_are_named_by_their_records_even_after_their_item_left_the_queue(
    db: sqlite_utils.Database,
) -> None:
    """What an undone decision was about, in the words the queue uses (the records' names),
    also for an older decision whose item the latest match run no longer proposes."""
    older, newer = all_items(db, kinds=("link",))[:2]
    review.decide(db, older["item_id"], "approve", reviewer="ana", based_on_version=0)
    review.decide(db, newer["item_id"], "reject", reviewer="ana", based_on_version=0)
    db.execute(
        "insert into runs (run_id, stage, status, started_at) values ('match-2', 'match', 'ok', '2027-01-01T00:00:00Z')"
    )
    db.execute(
        "insert into pairs select 'match-2', pair_id, kind, object, source_l, object_l, record_id_l, source_r, "
        "object_r, record_id_r, score, match_weight, tier, explanation, cluster_id, flags from pairs where pair_id = ?",
        [newer["item_id"]],
    )
    review.ensure_queue(db)
    assert review.item_title(db, older["item_id"]) is None  # left the queue
    [undone] = review.undo_last(db, "ana")
    assert review.decision_title(db, undone) == newer["title"]
    [undone] = review.undo_last(db, "ana")  # reaches back to the older decision
    assert undone["item_id"] == older["item_id"]
    assert review.decision_title(db, undone) == older["title"]
    assert older["item_id"] not in review.decision_title(db, undone)


def test_a_value_chosen_for_a_merge_is_named_by_its_field_and_cluster(
    db: sqlite_utils.Database,
) -> None:
    cluster = first(db, "duplicate")
    row = review.choose_value(
        db, cluster["item_id"], "city", "Oslo", source="hubspot:x", reviewer="ana",
        based_on_version=0,
    )  # fmt: skip
    assert row["item_id"] != cluster["item_id"]  # decided on the merge's plan item
    assert review.decision_title(db, row) == f"city of {cluster['title']}"


@pytest.mark.parametrize(
    ("score", "shown"),
    [(1, "1.000"), (1.0, "1.000"), (0.9, "0.900"), (0.87041, "0.870"), (0, "0.000"), (None, "—")],
)
def test_one_score_format(score: float | None, shown: str) -> None:
    assert review.format_score(score) == shown
    if score is not None:  # the same format the app's table columns take
        assert review.SCORE_FORMAT % score == shown


@pytest.mark.parametrize(
    ("signed_in", "env", "configured", "expected"),
    [
        ("sue", "env-rev", "cfg-rev", "sue"),
        (None, "env-rev", "cfg-rev", "env-rev"),
        ("  ", None, "cfg-rev", "cfg-rev"),
        (None, None, None, None),
    ],
)
def test_resolve_reviewer(
    monkeypatch: pytest.MonkeyPatch,
    signed_in: str | None,
    env: str | None,
    configured: str | None,
    expected: str | None,
) -> None:
    if env:
        monkeypatch.setenv("RECON_REVIEWER", env)
    assert (
        review.resolve_reviewer(ReconConfig(review={"reviewer": configured}), signed_in) == expected
    )


# --------------------------------------------------------------------------- statistics


def test_stats(db: sqlite_utils.Database) -> None:
    hist = review.score_histogram(db, bins=10)
    assert sum(h["items"] for h in hist) == 46 and all(0 <= h["bin"] < 10 for h in hist)
    scored = [i["score"] for i in all_items(db) if i["kind"] != "conflict"]
    by_edges = review.score_histogram(db, edges=[0.5, 0.9, 1.0])
    assert {h["bin"] for h in by_edges} <= {0, 1}
    assert sum(h["items"] for h in by_edges if h["bin"] == 1) == sum(s >= 0.9 for s in scored)
    assert sum(h["items"] for h in by_edges) == sum(s >= 0.5 for s in scored)
    low, high = review.score_range(db, "link", "companies")
    assert low <= high and low == min(
        i["score"] for i in all_items(db, kinds=("link",), objects=("companies",))
    )
    tiers = review.tier_counts(db)
    assert sum(t["items"] for t in tiers) == 52 and sum(t["decided"] for t in tiers) == 0
    links = [i for i in all_items(db, kinds=("link",), tiers=("review",))]
    review.decide(db, links[0]["item_id"], "approve", reviewer="ana", based_on_version=0)
    review.decide(db, links[1]["item_id"], "approve", reviewer="ana", based_on_version=0)
    review.decide(db, links[2]["item_id"], "reject", reviewer="ana", based_on_version=0)
    review.decide(db, links[3]["item_id"], "defer", reviewer="ana", based_on_version=0)
    [prec] = review.tier_precision(db)
    assert (prec["kind"], prec["tier"], prec["labelled"]) == ("link", "review", 3)
    assert prec["precision"] == pytest.approx(2 / 3)
    # a split cluster counts as a non-match of its tier (its approval, as a match)
    clusters = all_items(db, kinds=("duplicate",))
    review.decide(db, clusters[0]["item_id"], "approve", reviewer="ana", based_on_version=0)
    ids = [r["record_id"] for r in review.item_detail(db, clusters[1]["item_id"])["records"]]
    review.split_cluster(db, clusters[1]["item_id"], [ids[:1]], reviewer="ana", based_on_version=0)
    dup = [p for p in review.tier_precision(db) if p["kind"] == "duplicate"]
    assert sum(p["labelled"] for p in dup) == 2 and sum(p["matches"] for p in dup) == 1
    over = review.decisions_over_time(db, bucket="hour")
    assert sum(o["decisions"] for o in over) == 6 and len(over[0]["period"]) == 13
    assert sum(t["decided"] for t in review.tier_counts(db)) == 5
    th = review.thresholds(db)
    assert th["companies"]["link"] == {"auto": 0.9, "review": 0.5}
    assert th["contacts"]["duplicate"] == {"auto": 0.95, "review": 0.6}


def test_tier_precision_keeps_rejections_after_the_next_match(db: sqlite_utils.Database) -> None:
    """A rejected link leaves the next match run (its records go to other partners): its
    label still counts in the tier it had, or every re-match would inflate the precision."""
    from recon.evaluate import score_labels
    from recon.store import finish_run, start_run, transaction

    links = all_items(db, kinds=("link",), tiers=("auto",))
    for item in links[:3]:
        review.decide(db, item["item_id"], "approve", reviewer="ana", based_on_version=0)
    review.decide(db, links[3]["item_id"], "reject", reviewer="ana", based_on_version=0)
    before = [p for p in review.tier_precision(db) if p["kind"] == "link"]
    assert [(p["tier"], p["matches"], p["non_matches"]) for p in before] == [("auto", 3, 1)]
    assert score_labels(db)["links"]["auto"]["non_match"] == 1
    old = links[0]["run_id"]
    cols = [c.name for c in db["pairs"].columns if c.name != "run_id"]
    with transaction(db):  # the next run: the same pairs but the rejected one
        new = start_run(db, "match")
        db.execute(
            f"insert into pairs (run_id, {', '.join(cols)}) select ?, {', '.join(cols)} "
            "from pairs where run_id = ? and pair_id != ?",
            [new, old, links[3]["item_id"]],
        )
        ccols = [c.name for c in db["clusters"].columns if c.name != "run_id"]
        db.execute(
            f"insert into clusters (run_id, {', '.join(ccols)}) select ?, {', '.join(ccols)} "
            "from clusters where run_id = ?",
            [new, old],
        )
    finish_run(db, new)
    assert links[3]["item_id"] not in {i["item_id"] for i in all_items(db, kinds=("link",))}
    after = [p for p in review.tier_precision(db) if p["kind"] == "link"]
    assert after == before
    scored = score_labels(db)
    assert scored["run_id"] == new
    auto = scored["links"]["auto"]
    assert (auto["match"], auto["non_match"], auto["departed"]) == (3, 1, 1)
    assert auto["precision"] == 0.75


# --------------------------------------------------------------------------- the plan reads these decisions


def test_decisions_drive_the_plans_approved_items(db: sqlite_utils.Database) -> None:
    plan = pytest.importorskip("recon.plan")
    run = review.ensure_queue(db)["plan_run_id"]
    conflict = first(db, "conflict")
    options = review.item_detail(db, conflict["item_id"])["options"]
    review.choose_value(
        db,
        conflict["item_id"],
        conflict["field"],
        options[1]["value"],
        source="salesforce",
        reviewer="ana",
        based_on_version=0,
    )
    assert plan.approved_items(db, run) == []  # its link is not approved yet
    review.decide(db, conflict["link_item_id"], "approve", reviewer="ana", based_on_version=0)
    [update] = plan.approved_items(db, run)
    assert (update["action"], update["system"], update["after"]) == (
        "update",
        "hubspot",
        options[1]["value"],
    )
    clusters = all_items(db, kinds=("duplicate",))
    merged, split = clusters[0], clusters[1]
    members = [r["record_id"] for r in review.item_detail(db, merged["item_id"])["records"]]
    review.decide(db, merged["item_id"], "approve", reviewer="ana", based_on_version=0)
    review.choose_master(
        db, merged["item_id"], "hubspot", members[1], reviewer="ana", based_on_version=0
    )
    review.choose_value(
        db,
        merged["item_id"],
        "city",
        "Oslo",
        source="hubspot:x",
        reviewer="ana",
        based_on_version=0,
    )
    review.decide(db, split["item_id"], "approve", reviewer="ana", based_on_version=0)
    split_ids = [r["record_id"] for r in review.item_detail(db, split["item_id"])["records"]]
    # approving and splitting answer one question: the split builds on the approval's version
    review.split_cluster(db, split["item_id"], [split_ids[:1]], reviewer="ana", based_on_version=1)
    merges = [i for i in plan.approved_items(db, run) if i["action"] == "merge"]
    assert split["item_id"] not in [m["link_item_id"] for m in merges]  # a split is not merged
    [merge] = [m for m in merges if m["link_item_id"] == merged["item_id"]]
    assert merge["payload"]["master"] == members[1]
    assert merge["payload"]["fields"] == {"city": "Oslo"}


def test_a_merge_reads_each_fields_own_choice(db: sqlite_utils.Database) -> None:
    """Values chosen field by field: choosing a field again, or undoing one reviewer's choice,
    changes that field only (the plan and the page agree)."""
    from recon.plan import approved_items, field_choices

    run = review.ensure_queue(db)["plan_run_id"]
    cluster = first(db, "duplicate")
    detail = review.item_detail(db, cluster["item_id"])
    merge = detail["merge_item_id"]
    payload = json.loads(
        db.execute("select payload from plan_items where item_id = ?", [merge]).fetchone()[0]
    )
    # two fields the members differ in (the generated clusters differ in one: add another)
    first_field = next(iter(payload["values"]))
    second_field = "phone" if first_field != "phone" else "fax"
    payload["values"][second_field] = {m: f"+1 555 01{k}" for k, m in enumerate(payload["order"])}
    db.execute("update plan_items set payload = ? where item_id = ?", [json.dumps(payload), merge])
    review.decide(db, cluster["item_id"], "approve", reviewer="ana", based_on_version=0)

    def choose(field: str, value: str, who: str, version: int) -> None:
        review.choose_value(
            db, cluster["item_id"], field, value, source="hubspot:1", reviewer=who,
            based_on_version=version,
        )  # fmt: skip

    choose(first_field, "first 1", "ana", 0)
    choose(first_field, "first 2", "ana", 1)
    choose(second_field, "second", "ben", 0)
    assert field_choices(db)[merge] == {first_field: "first 2", second_field: "second"}
    [planned] = [i for i in approved_items(db, run) if i["item_id"] == merge]
    assert planned["payload"]["fields"] == {first_field: "first 2", second_field: "second"}
    review.undo_last(db, "ben")  # the second field goes back to the rules; the first stays
    assert field_choices(db)[merge] == {first_field: "first 2"}
    assert review.item_detail(db, cluster["item_id"])["chosen"] == {first_field: "first 2"}
    review.undo_last(db, "ana")  # the first field goes back to its first choice
    assert field_choices(db)[merge] == {first_field: "first 1"}


@pytest.mark.parametrize("label", ["approve", "reject"])
def test_approve_plan_items_that_need_their_own_decision(
    db: sqlite_utils.Database, label: str
) -> None:
    n = review.count_plan_approvals(db)
    assert n == 4  # the creates; conflicts and merges wait on other decisions
    assert review.count_plan_approvals(db, action="update") == 0
    with pytest.raises(ReviewerConflict):
        review.approve_plan_items(db, reviewer="ana", expected=n + 1)
    assert review.approve_plan_items(db, reviewer="ana", expected=n, label=label) == n
    rows = [
        dict(r) for r in db.query("select * from decisions where kind = 'plan' and superseded = 0")
    ]
    assert len(rows) == n and {
        (r["label"], r["reviewer"], r["version"], r["object"]) for r in rows
    } == {(label, "ana", 1, "companies")}
    assert {r["item_id"] for r in rows} == {f"create{k:07d}" for k in range(4)}
    assert review.count_plan_approvals(db) == 0
    assert len(review.undo_last(db, "ana")) == n
    assert review.count_plan_approvals(db) == n


def test_approved_creates_reach_the_plan(db: sqlite_utils.Database) -> None:
    plan = pytest.importorskip("recon.plan")
    run = review.ensure_queue(db)["plan_run_id"]
    review.approve_plan_items(db, reviewer="ana", expected=review.count_plan_approvals(db))
    assert sorted(i["item_id"] for i in plan.approved_items(db, run)) == [
        f"create{k:07d}" for k in range(4)
    ]


def test_plan_item_counts_come_from_the_run_until_an_apply_reads_the_plan() -> None:
    from plan_testdata import World, cfg, linked_leads

    from recon.plan import build_plan, plan_counts
    from recon.store import start_run

    w = World()
    linked_leads(w, ["0", "1"], {"jobtitle": "CEO", "firstname": "Jo"})
    w.done()
    res = build_plan(w.db, cfg())
    assert res.run_id is not None
    live = [
        dict(r)
        for r in w.db.query(
            "select action, system, object, status, count(*) as items from plan_items "
            "where run_id = ? group by 1, 2, 3, 4 order by 1, 2, 3, 4",
            [res.run_id],
        )
    ]
    # the stored counts, not the rows: a change to the rows is not seen...
    w.db.execute("update plan_items set status = 'needs_review' where run_id = ?", [res.run_id])
    assert review.plan_item_counts(w.db, res.run_id) == live
    assert (
        sum(c["items"] for c in live)
        == len(res.items)
        == sum(c["items"] for c in plan_counts(res.items))
    )
    # ...until an apply run has read the plan (it may send items back to review)
    start_run(w.db, "apply", config={"plan_run_id": res.run_id})
    counted = review.plan_item_counts(w.db, res.run_id)
    assert {c["status"] for c in counted} == {"needs_review"}
    assert sum(c["items"] for c in counted) == len(res.items)


def test_plan_page_reads_a_plan_in_run_order_by_rowid() -> None:
    from plan_testdata import World, cfg, linked_leads

    from recon.plan import build_plan

    w = World()
    linked_leads(w, [str(k) for k in range(12)], {"jobtitle": "CEO", "firstname": "Jo"})
    w.done()
    first = build_plan(w.db, cfg())
    second = build_plan(w.db, cfg())  # a second run: its rows follow the first one's
    assert first.run_id and second.run_id

    def sorted_rows(run: str, action: str | None = None) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in w.db.query(
                f"select {review_plan.PAGE_COLUMNS} from plan_items where run_id = ? "
                "and (? is null or action = ?) order by seq, item_id",
                [run, action, action],
            )
        ]

    for run in (first.run_id, second.run_id):
        span = json.loads(w.db["runs"].get(run)["summary"])["rowids"]
        assert span[1] - span[0] + 1 == len(sorted_rows(run)) > 10
        for action in (None, "update"):
            want = sorted_rows(run, action)
            got = [
                r
                for page in range(1, 5)
                for r in review.plan_page(w.db, run, action=action, page=page, size=4)
            ]
            assert got == want[:16]
        assert review.plan_page(w.db, run, page=99, size=4) == []
    # the rowid range is read without sorting the run
    seen: list[tuple[str, Any]] = []
    with w.db.tracer(lambda sql, params: seen.append((sql, params))):
        review.plan_page(w.db, first.run_id, page=2, size=3)
    sql, params = next((q, p) for q, p in seen if "from plan_items" in q)
    plan = " ".join(r[3] for r in w.db.execute("explain query plan " + sql, params))
    assert "TEMP B-TREE" not in plan, plan
    # a run without a rowid span (an undo plan, an older version's plan) is sorted
    w.db.execute(
        "update runs set summary = json_remove(summary, '$.rowids') where run_id = ?",
        [second.run_id],
    )
    assert review.plan_page(w.db, second.run_id, page=2, size=5) == sorted_rows(second.run_id)[5:10]
    with pytest.raises(ReviewError):
        review.plan_page(w.db, second.run_id, page=0)


@pytest.mark.parametrize("status", ["decided", "deferred"])
def test_bulk_approve_of_a_filter_showing_no_undecided_item_approves_nothing(
    db: sqlite_utils.Database, status: str
) -> None:
    assert review.count_bulk(db, review.QueueFilter(status=status)) == 0
    assert review.count_bulk(db, review.QueueFilter(status="undecided")) > 0


def test_the_plan_s_approval_box_never_approves_conflicts_and_holds_have_their_own_choice() -> None:
    """The box "every item that needs its own approval" stamped an approval on every undecided
    conflict (they require themselves): they left the queue and nothing was written. The
    writes held after an undo or a drop can be approved on their own."""
    from plan_testdata import World, by, cfg, plan

    w = World()
    w.snap("hubspot", "companies", "1", {"name": "Acme", "city": "Oslo"}, name="Acme")
    w.snap("salesforce", "Account", "001A", {"Name": "Acme SA", "BillingCity": "Bergen"},
           name="Acme SA")  # fmt: skip
    w.link("companies", "1", "Account", "001A")
    result = plan(w, cfg(rules={"companies.name": "review"}))
    [conflict] = by(result.items, action="conflict")
    assert conflict["item_id"] in conflict["requires"]
    assert review.count_plan_approvals(w.db, action=None) == 0
    held = by(result.items, action="update", field="city")[0]
    w.db.execute(  # as hold_undone leaves it
        "update plan_items set status = 'needs_review', requires = json_array(link_item_id, "
        "item_id), reason = json_set(reason, '$.why', 'dropped_before') where item_id = ?",
        [held["item_id"]],
    )
    assert review.count_plan_approvals(w.db, action=review.HELD) == 1
    assert review.count_plan_approvals(w.db, action=None) == 1
    assert review.approve_plan_items(w.db, action=review.HELD, reviewer="ana", expected=1) == 1
    decided = w.db.execute("select item_id from decisions where kind = 'plan'").fetchall()
    assert decided == [(held["item_id"],)]


def test_a_level_that_vetoes_auto_says_so_in_words() -> None:
    """ "missing on one side: no evidence either way" read as harmless for a company without a
    name, which is never linked automatically."""
    from recon.review_detail import _with_meanings

    got = _with_meanings(
        [{"comparison": "company_name", "level": "null", "weight": 0.0, "vetoes_auto": True},
         {"comparison": "domain", "level": "exact", "weight": 9.1}]
    )  # fmt: skip
    assert got[0]["meaning"].endswith("keeps the pair out of auto: a person decides")
    assert "auto" not in got[1]["meaning"]
