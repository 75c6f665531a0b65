"""The engine on generated data: EM ordering, one-to-one links, clusters, vetoes, contacts."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import polars as pl
import pytest

from recon.match import default_settings, match_records
from recon.match.assign import best_per_right, one_to_one
from recon.match.blocking import features
from recon.match.clusters import complete_linkage
from recon.match.engine import SHARED_EMAIL_FLAG
from recon.match.levels import compare


def test_em_recovers_m_u_ordering(companies) -> None:
    hs, sf, _ = companies
    r = match_records(hs, sf, entity="companies")
    w = r.weights["links"]["comparisons"]
    name = dict(zip(w["company_name"]["labels"], w["company_name"]["weight"], strict=True))
    assert name["exact"] > 0 > name["else"]
    dom = dict(zip(w["domain"]["labels"], w["domain"]["weight"], strict=True))
    assert dom["exact"] > 0 > dom["else"]
    json.dumps(r.weights)  # serialisable


def test_m_fixed_is_used_as_given_not_re_estimated(companies) -> None:
    from recon.match import MatchSettings

    hs, sf, _ = companies
    s = default_settings("companies")
    n = len(s.comparison("company_name").levels)
    pinned = [0.0] + [0.001] * (n - 2) + [1 - 0.001 * (n - 2)]
    learnt = MatchSettings.from_dict({**s.to_dict(), "m_fixed": {"company_name": pinned}})
    got = match_records(hs, sf, entity="companies", settings=learnt).weights["links"]
    assert got["comparisons"]["company_name"]["m"] == [round(x, 6) for x in pinned]
    free = match_records(hs, sf, entity="companies", settings=s).weights["links"]
    assert free["comparisons"]["company_name"]["m"] != got["comparisons"]["company_name"]["m"]


def test_links_one_to_one_and_accurate(companies) -> None:
    hs, sf, truth = companies
    r = match_records(hs, sf, entity="companies")
    links = r.links
    assert links["record_id_l"].n_unique() == links.height
    assert links["record_id_r"].n_unique() == links.height
    assert set(links["tier"].unique()) <= {"auto", "review"}
    assert links["score"].is_between(0, 1).all()
    right = sum(
        truth[("hubspot", a)] == truth[("salesforce", b)]
        for a, b in links.select("record_id_l", "record_id_r").rows()
    )
    assert right / links.height > 0.95
    expl = json.loads(links["explanation"][0])
    assert {"comparison", "level", "weight"} <= set(expl[0])
    assert r.counts["links_candidates"]["total"] >= links.height


def test_duplicates_found_and_clusters_consistent(companies) -> None:
    hs, sf, truth = companies
    r = match_records(hs, sf, entity="companies")
    d = r.duplicates
    assert d.height > 0
    good = sum(
        truth[(s, a)] == truth[(s, b)]
        for s, a, b in d.select("source", "record_id_l", "record_id_r").rows()
    )
    assert good / d.height >= 0.85
    assert set(r.clusters["cluster_id"]) == set(d["cluster_id"])


def test_complete_linkage_does_not_chain() -> None:
    # A~B and B~C strongly, A and C unrelated: never one cluster
    groups = complete_linkage(3, [(0, 1, 0.95), (1, 2, 0.9), (0, 2, 0.0)], 0.3)
    assert sorted(map(sorted, groups)) == [[0, 1], [2]]


def test_chain_in_data_is_split(make_companies) -> None:
    rows = [
        {"record_id": "1", "name": "Orion Logistics", "phone": "+1 212 555 0101", "city": "Austin"},
        {
            "record_id": "2",
            "name": "Orion Logistics Inc",
            "phone": "+1 212 555 0101",
            "city": "Austin",
        },
        {"record_id": "3", "name": "Vexa Foods", "phone": "+1 212 555 0101", "city": "Austin"},
    ]
    filler = (
        make_companies(60, seed=5)[0].filter(pl.col("source") == "hubspot").drop("source", "object")
    )
    hs = pl.concat([pl.DataFrame(rows), filler.select(pl.DataFrame(rows).columns)], how="diagonal")
    r = match_records(
        hs.with_columns(source=pl.lit("hubspot"), object=pl.lit("companies")),
        None,
        entity="companies",
    )
    for _cid, members in r.clusters.group_by("cluster_id").agg("record_id").iter_rows():
        assert not ({"1", "3"} <= set(members) or {"2", "3"} <= set(members))


def test_shared_website_distinct_companies_not_auto(make_companies) -> None:
    hs, sf, _ = make_companies(80, seed=3, dup_share=0.0)
    extra_hs = pl.DataFrame(
        [
            {
                "source": "hubspot",
                "object": "companies",
                "record_id": "x1",
                "name": "Globex Germany GmbH",
                "website": "https://globex.com",
                "phone": None,
                "city": "Berlin",
                "country": "DE",
            }
        ]
    )
    extra_sf = pl.DataFrame(
        [
            {
                "source": "salesforce",
                "object": "Account",
                "record_id": "y1",
                "name": "Globex France SAS",
                "website": "globex.com",
                "phone": None,
                "city": "Paris",
                "country": "FR",
            }
        ]
    )
    r = match_records(pl.concat([hs, extra_hs]), pl.concat([sf, extra_sf]), entity="companies")
    hit = r.links.filter(pl.col("record_id_l") == "x1")
    assert hit.filter(pl.col("tier") == "auto").height == 0


def test_an_explanation_names_the_level_that_keeps_a_pair_out_of_auto(make_companies) -> None:
    hs, sf, _ = make_companies(40, seed=5, dup_share=0.0)
    row = {"name": "Initech Labs", "website": "initech.com", "phone": "+1 415 555 0100"}
    extra_hs = pl.DataFrame(
        [{"source": "hubspot", "object": "companies", "record_id": "x1", "city": "Austin",
          "country": "US", **row}]
    )  # fmt: skip
    extra_sf = pl.DataFrame(
        [{"source": "salesforce", "object": "Account", "record_id": "y1", "city": "Lyon",
          "country": "FR", **row}]
    )  # fmt: skip
    both = (pl.concat([hs, extra_hs], how="diagonal"), pl.concat([sf, extra_sf], how="diagonal"))
    r = match_records(*both, entity="companies")
    hit = r.links.filter(pl.col("record_id_l") == "x1")
    assert hit["tier"].to_list() == ["review"]
    vetoes = [e for e in json.loads(hit["explanation"][0]) if e.get("vetoes_auto")]
    assert [(e["comparison"], e["level"]) for e in vetoes] == [("country", "else")]


def test_greedy_assignment_helpers() -> None:
    p = pl.DataFrame({"_il": [0, 0, 1, 1], "_ir": [0, 1, 0, 1], "score": [0.9, 0.85, 0.8, 0.1]})
    assert sorted(one_to_one(p).select("_il", "_ir").rows()) == [(0, 0), (1, 1)]
    assert sorted(best_per_right(p).select("_il", "_ir").rows()) == [(0, 0), (0, 1)]


def _contacts() -> tuple[pl.DataFrame, pl.DataFrame]:
    hs = pl.DataFrame(
        [
            {
                "record_id": "h1",
                "first_name": "Ana",
                "last_name": "Silva",
                "email": "ana@orion.com",
                "company": "Orion",
            },
            {
                "record_id": "h2",
                "first_name": "Ben",
                "last_name": "Ode",
                "email": "ben@vexa.io",
                "company": "Vexa",
            },
            {
                "record_id": "h3",
                "first_name": "Cy",
                "last_name": "Park",
                "email": "cy@kalo.de",
                "company": "Kalo",
            },
        ]
    ).with_columns(source=pl.lit("hubspot"), object=pl.lit("contacts"))
    sf = pl.DataFrame(
        [
            {
                "object": "Contact",
                "record_id": "003A",
                "first_name": "Ana",
                "last_name": "Silva",
                "email": "ANA@orion.com",
                "company": "Orion",
            },
            {
                "object": "Lead",
                "record_id": "00QA",
                "first_name": "Ana",
                "last_name": "Silva",
                "email": "ana@orion.com",
                "company": "Orion Inc",
            },
            {
                "object": "Lead",
                "record_id": "00QB",
                "first_name": "A.",
                "last_name": "Silva",
                "email": "ana@orion.com",
                "company": "Orion",
            },
            {
                "object": "Contact",
                "record_id": "003B",
                "first_name": "Ben",
                "last_name": "Ode",
                "email": "ben@vexa.io",
                "company": "Vexa",
            },
            {
                "object": "Contact",
                "record_id": "003C",
                "first_name": "Dee",
                "last_name": "Moss",
                "email": "dee@zu.com",
                "company": "Zu",
            },
        ]
    ).with_columns(source=pl.lit("salesforce"))
    return hs, sf


def test_contacts_lead_and_contact_sharing_email() -> None:
    hs, sf = _contacts()
    r = match_records(hs, sf, entity="contacts")
    links = r.links
    assert links["record_id_r"].n_unique() == links.height  # each Salesforce id at most once
    ana = links.filter(pl.col("record_id_l") == "h1")
    assert set(ana["record_id_r"]) == {"003A", "00QA", "00QB"}
    assert ana.filter(pl.col("object_r") == "Contact").height == 1
    assert all(SHARED_EMAIL_FLAG in json.loads(f) for f in ana["flags"])
    ben = links.filter(pl.col("record_id_l") == "h2")
    assert ben["record_id_r"].to_list() == ["003B"]
    assert json.loads(ben["flags"][0]) == []
    assert links.filter(pl.col("record_id_r") == "003C").height == 0


@pytest.mark.parametrize("entity", ["companies", "contacts"])
def test_empty_inputs(entity: str) -> None:
    empty = pl.DataFrame({"record_id": []}, schema={"record_id": pl.String})
    r = match_records(empty, empty, entity=entity)  # type: ignore[arg-type]
    assert r.links.height == 0 and r.duplicates.height == 0
    assert r.settings == default_settings(entity)  # type: ignore[arg-type]


def test_a_pandas_frame_is_matched_as_a_polars_one() -> None:
    """Notebooks hold pandas frames; ids read from a spreadsheet are often numbers."""
    import pandas as pd

    hs = pd.DataFrame(
        {"record_id": [1, 2], "name": ["Acme Inc", "Globex"], "domain": ["acme.com", None]}
    )
    sf = pd.DataFrame({"record_id": ["001A"], "object": ["Account"], "name": ["ACME Incorporated"],
                       "website": ["https://www.acme.com"]})  # fmt: skip
    r = match_records(hs, sf, entity="companies")  # type: ignore[arg-type]
    assert r.links.select("record_id_l", "record_id_r").rows() == [("1", "001A")]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"name": ["Acme"]}, "the left frame has no record_id column"),
        ({"record_id": ["1", None]}, "the left frame has a blank record_id in row 1"),
        ({"record_id": ["1", "2", "1"]}, "the left frame holds record '1' 2 times"),
        ([("1", "Acme")], "the left frame is a list, not a data frame"),
    ],
)
def test_frames_that_are_not_records_are_refused(frame: Any, message: str) -> None:
    """A repeated record would be linked twice, and a list failed deep inside polars."""
    from recon.errors import MatchError

    left = pl.DataFrame(frame) if isinstance(frame, dict) else frame
    with pytest.raises(MatchError, match=message):
        match_records(left, None, entity="companies")


def test_em_ordering_on_level_matrix() -> None:
    from recon.match.scoring import estimate_m

    s = default_settings("companies")
    rng = np.random.default_rng(0)
    n = 4000
    g = np.zeros((n, len(s.comparisons)), dtype=np.int8)
    match = rng.random(n) < 0.3
    for c, comp in enumerate(s.comparisons):
        k = len(comp.levels)
        g[:, c] = np.where(match, 1, k - 1)
        noise = rng.random(n) < 0.1
        g[noise, c] = rng.integers(1, k, noise.sum())
    u = {
        comp.name: [0.0] + [0.001] * (len(comp.levels) - 2) + [1 - 0.001 * (len(comp.levels) - 2)]
        for comp in s.comparisons
    }
    w = estimate_m(g, u, s)
    for comp in s.comparisons:
        m = w.comparisons[comp.name]["m"]
        assert m[1] > m[-1] * 0.5
    assert 0.15 < 2**w.prior / (1 + 2**w.prior) < 0.5


def test_same_name_at_other_companies_is_not_a_duplicate() -> None:
    hs = pl.DataFrame(
        [
            {
                "record_id": "a",
                "first_name": "Hugo",
                "last_name": "Hughes",
                "email": "hh@stararrow.es",
            },
            {
                "record_id": "b",
                "first_name": "Hugo",
                "last_name": "Hughes",
                "email": "hugo@sterlingfire.com",
            },
            {"record_id": "c", "first_name": "Ana", "last_name": "Silva", "email": "ana@orion.com"},
            {
                "record_id": "d",
                "first_name": "Ana",
                "last_name": "Silva",
                "email": "ana.silva@orion.com",
            },
        ]
    ).with_columns(source=pl.lit("hubspot"), object=pl.lit("contacts"))
    r = match_records(hs, None, entity="contacts")
    pairs = {frozenset(p) for p in r.duplicates.select("record_id_l", "record_id_r").rows()}
    assert frozenset({"a", "b"}) not in pairs


def test_the_not_provided_placeholder_is_no_name_and_no_company() -> None:
    """Two Leads recon created for contacts with only an e-mail (LastName and Company
    "[not provided]") were an `auto` duplicate on the placeholder, and a nightly run merged
    two different people."""
    from recon.match.blocking import features

    rows = [
        {"record_id": f"00Q{k}", "first_name": None, "last_name": "[not provided]",
         "company": "[not provided]", "email": f"{who}@acme-example.org"}
        for k, who in enumerate(["alice", "bob", "carol", "dan"])
    ]  # fmt: skip
    leads = pl.DataFrame(rows).with_columns(source=pl.lit("salesforce"), object=pl.lit("Lead"))
    f = features(leads, "contacts")
    assert f["name_norm"].null_count() == 4 and f["company_norm"].null_count() == 4
    r = match_records(leads, None, entity="contacts")
    assert r.duplicates.filter(pl.col("tier") == "auto").height == 0


def test_surnames_that_look_like_placeholders_are_names() -> None:
    """ "Na" and "Null" are surnames: as one part of a name they are kept (only a whole name
    "NA" or "Null" stands for no name)."""
    from recon.match.blocking import features

    rows = [
        {"record_id": "a", "first_name": "Ji-woo", "last_name": "Na", "email": None},
        {"record_id": "b", "first_name": "Jan", "last_name": "Null", "email": None},
        {"record_id": "c", "first_name": None, "last_name": "NA", "email": None},
        {"record_id": "d", "first_name": "Null", "last_name": "NULL", "email": None},
        {"record_id": "e", "first_name": "Test", "last_name": "Test", "email": None},
    ]
    people = pl.DataFrame(rows).with_columns(
        source=pl.lit("hubspot"), object=pl.lit("contacts"), company=pl.lit(None, pl.String)
    )
    f = features(people, "contacts")
    # a name of placeholder words only is none
    assert f["name_norm"].to_list() == ["ji woo na", "jan null", None, None, None]


def test_contact_company_levels_use_company_names() -> None:
    hs = pl.DataFrame(
        [{"record_id": "h", "first_name": "Mary", "last_name": "Bell", "company": "Klein & Scott"}]
    ).with_columns(source=pl.lit("hubspot"), object=pl.lit("contacts"))
    sf = pl.DataFrame(
        [
            {
                "record_id": "003X",
                "object": "Contact",
                "first_name": "Mary",
                "last_name": "Bell",
                "company": "West Shield Realty",
            }
        ]
    ).with_columns(source=pl.lit("salesforce"))
    r = match_records(hs, sf, entity="contacts")
    for expl in r.links["explanation"]:
        levels = {e["comparison"]: e["level"] for e in json.loads(expl)}
        assert levels["company"] == "else"
    assert r.links.filter(pl.col("tier") == "auto").height == 0


def test_department_next_to_its_parent_is_not_linked(make_companies) -> None:
    hs, sf, _ = make_companies(80, seed=4, dup_share=0.0)
    row = {"phone": None, "city": "Austin", "country": "US"}
    hs = pl.concat(
        [
            hs,
            pl.DataFrame(
                [
                    {
                        "source": "hubspot",
                        "object": "companies",
                        "record_id": "p",
                        "name": "Zorvex Widgets",
                        "website": "zorvex.com",
                        **row,
                    }
                ]
            ),
        ]
    )
    depts = [
        {
            "source": "salesforce",
            "object": "Account",
            "record_id": f"d{i}",
            "name": f"Zorvex Widgets {w}",
            "website": f"zorvex.com/{w.lower()}",
            **row,
        }
        for i, w in enumerate(["Research", "Ventures"])
    ]
    r = match_records(hs, pl.concat([sf, pl.DataFrame(depts)]), entity="companies")
    assert r.links.filter(pl.col("record_id_l") == "p").height == 0


def _scorer(frame: pl.DataFrame, g_labels: dict[str, float]) -> tuple[object, object]:
    """A duplicate-stage scorer over ``frame`` with the name comparison's u set per level."""
    from recon.match.blocking import features
    from recon.match.engine import _Scorer
    from recon.match.scoring import Weights, tf_tables

    settings = default_settings("companies")
    f = features(frame, "companies")
    comps = {}
    for comp in settings.comparisons:
        labels = [lv.label for lv in comp.levels]
        u = [g_labels.get(lab, 0.1) if comp.name == "company_name" else 0.1 for lab in labels]
        comps[comp.name] = {"labels": labels, "m": [0.5] * len(labels), "u": u}
    tf, columns = tf_tables([f], settings)
    scorer = _Scorer(f, f, settings, {}, Weights(prior=0.0, comparisons=comps), tf, columns)
    return scorer, settings


def _level(settings, label: str) -> int:
    comp = settings.comparisons[0]
    return [lv.label for lv in comp.levels].index(label)


SYLLABLES = ["ozo", "umi", "ipa", "eko", "ura", "oba", "ine", "aru", "olu"]


@pytest.mark.parametrize(("crowd", "weaker"), [(0, False), (9, True)])
def test_shared_initials_weigh_less_when_many_names_have_them(crowd, weaker) -> None:
    """ "GVS" meets "Graviomant Vaiben Svcs" at the acronym level: evidence that weakens by
    how many records carry those initials, as exact agreement does by the value's frequency."""
    names = ["GVS", "Graviomant Vaiben Svcs", *(f"G{w} V{w} S{w}" for w in SYLLABLES[:crowd])]
    names += [f"Filler{k} Widgets" for k in range(40)]
    frame = pl.DataFrame({"record_id": [str(i) for i in range(len(names))], "name": names})
    scorer, settings = _scorer(frame, {"acronym": 1e-4})
    k = _level(settings, "acronym")
    g = np.zeros((1, len(settings.comparisons)), dtype=np.int8)
    g[0, 0] = k
    adj = scorer.tf_adjust(np.array([0]), g, np.array([1])).get("company_name", np.zeros(1))
    share = (2 + crowd) / len(names)  # records whose acronym key is "gvs"
    if weaker:
        assert adj[0] == pytest.approx(np.log2(1e-4 / share), rel=1e-6)
    else:  # a rare key (share ≥ u here too, but the crowd-free share is the smaller loss)
        assert adj[0] == pytest.approx(min(0.0, np.log2(1e-4 / share)), rel=1e-6)
    assert (adj[0] < np.log2(1e-4 / (2 / len(names)))) == weaker


def test_near_names_in_a_crowded_neighbourhood_weigh_less() -> None:
    """Inside one system a fuzzy name match is split among the near names either record has
    (a data set full of similar names); an exact match is left to term frequencies."""
    from recon.match.scoring import neighbour_density

    names = ["Siluseant", "Siluseamt", "Siluseanx", "Siluseans", "Zorvex Widgets"]
    frame = pl.DataFrame({"record_id": [str(i) for i in range(5)], "name": names})
    scorer, settings = _scorer(frame, {})
    jw, exact, other = (
        _level(settings, "jw_0.95"),
        _level(settings, "exact"),
        _level(settings, "else"),
    )
    il = np.array([0, 0, 0, 1, 2, 0], dtype=np.uint32)
    ir = np.array([1, 2, 3, 2, 3, 4], dtype=np.uint32)
    g = np.zeros((6, len(settings.comparisons)), dtype=np.int8)
    g[:, 0] = [jw, jw, jw, exact, jw, other]
    scorer.density = neighbour_density(g, il, ir, 5, settings)
    assert scorer.density["company_name"].tolist() == [3, 2, 3, 2, 0]
    adj = scorer.tf_adjust(il, g, ir)["company_name"]
    assert adj[0] == pytest.approx(-np.log2(3))  # record 0 has three near names
    assert adj[4] == pytest.approx(-np.log2(3))
    assert adj[3] <= 0 and adj[5] == 0  # exact: term frequency only; else: untouched


def test_explanations_built_in_slices_equal_one_pass(companies, monkeypatch) -> None:
    import recon.match.tiers as tiers

    hs, sf, _ = companies
    whole = match_records(hs, sf, entity="companies").links
    monkeypatch.setattr(tiers, "EXPLAIN_SLICE", 7)
    sliced = match_records(hs, sf, entity="companies").links
    assert whole.height > 7
    assert sliced["explanation"].to_list() == whole["explanation"].to_list()
    assert sliced["tier"].to_list() == whole["tier"].to_list()


def test_short_exact_names_have_a_level_and_weight_of_their_own(make_companies) -> None:
    """ "WPS" = "WPS": a three-letter name agrees by chance far more often than a long one."""
    hs, sf, _ = make_companies(120, seed=5, dup_share=0.0)
    r = match_records(hs, sf, entity="companies")
    w = r.weights["links"]["comparisons"]["company_name"]
    assert w["labels"][1:3] == ["exact_short", "exact"]
    levels = {
        e["level"]
        for x in r.links["explanation"]
        for e in json.loads(x)
        if e["comparison"] == "company_name"
    }
    assert "exact_short" not in levels  # generated names are longer
    from recon.match.blocking import features
    from recon.match.levels import compare

    f = features(
        pl.DataFrame(
            {
                "record_id": ["a", "b", "c", "d"],
                "name": ["WPS Ltd", "wps", "Acme Widgets", "ACME WIDGETS Inc"],
            }
        ),
        "companies",
    )
    g = compare(
        f,
        f,
        np.array([0, 2], dtype=np.uint32),
        np.array([1, 3], dtype=np.uint32),
        default_settings("companies"),
        {},
    )
    labels = w["labels"]
    assert [labels[x] for x in g[:, 0]] == ["exact_short", "exact"]


@pytest.mark.parametrize(
    ("other", "proposed"),
    [
        ({}, False),  # a near-identical name alone: a sibling as often as a copy
        ({"country": "US"}, False),  # sharing a country is too common to count
        ({"phone": "+1 415 555 0100"}, True),
        ({"website": "siluseant.com"}, True),
        ({"city": "Austin"}, True),
    ],
)
def test_near_names_inside_one_system_need_another_agreeing_field(other, proposed) -> None:
    from recon.match.tiers import no_duplicate_pairs

    settings = default_settings("companies")
    f = features(
        pl.DataFrame(
            [
                {"record_id": "a", "name": "Siluseant Ltd", **other},
                {"record_id": "b", "name": "Siluseamt Ltd", **other},
            ]
        ),
        "companies",
    )
    g = compare(f, f, np.array([0], np.uint32), np.array([1], np.uint32), settings, {})
    name = [lv.label for lv in settings.comparisons[0].levels][g[0, 0]]
    assert name in {"jw_0.95", "edit_1"}
    assert bool(no_duplicate_pairs(g, settings)[0]) is not proposed


def test_stages_block_in_their_turn_order_whatever_order_they_arrive() -> None:
    import threading
    import time

    from recon.match.engine import _Turns

    turns = _Turns(["links", "dups_a", "dups_b", "dups_c"])
    entered: list[str] = []

    def stage(key: str) -> None:
        with turns.turn(key):
            entered.append(key)
            time.sleep(0.01)

    # the last stage arrives first; one stage never blocks (it ends early) and gives up its turn
    threads = [threading.Thread(target=stage, args=(k,)) for k in ("dups_c", "dups_a", "links")]
    for t in threads:
        t.start()
        time.sleep(0.02)
    turns.done("dups_b")
    for t in threads:
        t.join(timeout=5)
    assert entered == ["links", "dups_a", "dups_c"]
    assert turns.pending == []


def test_threaded_and_sequential_stages_give_the_same_matches(companies, monkeypatch) -> None:
    import recon.match.engine as engine

    hs, sf, _ = companies
    threaded = match_records(hs, sf, entity="companies")
    monkeypatch.setattr(engine, "MAX_THREADS", 1)
    sequential = match_records(hs, sf, entity="companies")
    assert threaded.links.equals(sequential.links)
    assert threaded.duplicates.equals(sequential.duplicates)


def test_names_in_two_scripts_are_no_evidence_against_a_link(make_companies) -> None:
    hs, sf, truth = make_companies(150, seed=7, dup_share=0.0)
    # one company's HubSpot name in katakana that does not spell like its Latin name;
    # the domain and phone still agree
    rid = hs["record_id"][5]
    entity = truth[("hubspot", rid)]
    sf_rid = next(r for (s, r), e in truth.items() if s == "salesforce" and e == entity)
    site, phone = sf.filter(pl.col("record_id") == sf_rid).select("website", "phone").row(0)
    site, phone = site or "x.com", phone or "+1 212 555 0100"

    def put(frame: pl.DataFrame, record: str, **values: str) -> pl.DataFrame:
        hit = pl.col("record_id") == record
        return frame.with_columns(
            **{k: pl.when(hit).then(pl.lit(v)).otherwise(k) for k, v in values.items()}
        )

    hs = put(hs, rid, name="ケントラル ゼアキオム KK", website=site, phone=phone)
    sf = put(sf, sf_rid, website=site, phone=phone)
    r = match_records(hs, sf, entity="companies")
    (link,) = r.links.filter(pl.col("record_id_l") == rid).rows(named=True)
    assert link["record_id_r"] == sf_rid
    levels = {e["comparison"]: e["level"] for e in json.loads(link["explanation"])}
    assert levels["company_name"] == "script_differs"
    assert link["tier"] == "auto"  # not vetoed as a clearly different name


def test_names_in_two_scripts_never_propose_a_duplicate() -> None:
    rows = [
        {
            "record_id": "a",
            "name": "Central Jeakiom Kitchen",
            "website": "cjk.jp",
            "phone": "+81 3 5555 0100",
        },
        {
            "record_id": "b",
            "name": "ケントラル ゼアキオム キトクヘン",
            "website": "cjk.jp",
            "phone": "+81 3 5555 0100",
        },
        *[
            {"record_id": f"f{k}", "name": f"Filler {k} Foods", "website": None, "phone": None}
            for k in range(30)
        ],
    ]
    frame = pl.DataFrame(rows).with_columns(source=pl.lit("hubspot"), object=pl.lit("companies"))
    r = match_records(frame, None, entity="companies")
    assert r.duplicates.filter(pl.col("record_id_l").is_in(["a", "b"])).height == 0


def test_one_letter_leftovers_of_a_legal_form_are_not_extra_words(make_companies) -> None:
    hs, sf, _ = make_companies(150, seed=3, dup_share=0.0)

    def add(frame: pl.DataFrame, source: str, obj: str, names: list[str]) -> pl.DataFrame:
        sites = ["lywem.com", "quorvex.com"]
        phones = ["+31 30 843 4892", "+31 20 555 0101"]
        rows = [
            {"record_id": f"{source[0]}{k}", "name": name, "website": site, "phone": phone}
            for k, (name, site, phone) in enumerate(zip(names, sites, phones, strict=True))
        ]
        extra = pl.DataFrame(rows).with_columns(country=pl.lit("NL"))
        return pl.concat([frame, extra], how="diagonal_relaxed").with_columns(
            source=pl.lit(source), object=pl.lit(obj)
        )

    hs = add(hs, "hubspot", "companies", ["Lywem NV", "Quorvex"])
    sf = add(sf, "salesforce", "Account", ["Lywem V", "Quorvex Research"])
    r = match_records(hs, sf, entity="companies")
    got = {}
    for row in r.links.filter(pl.col("record_id_l").is_in(["h0", "h1"])).rows(named=True):
        levels = {e["comparison"]: e["level"] for e in json.loads(row["explanation"])}
        got[row["record_id_l"]] = (row["record_id_r"], levels["company_name"], row["tier"])
    # "v" is what is left of "NV": the same company, linked without a veto
    assert got["h0"][0] == "s0" and got["h0"][1] != "extra_words" and got["h0"][2] == "auto"
    # a department's word is an extra word: never an automatic link
    assert got["h1"][:2] == ("s1", "extra_words") and got["h1"][2] != "auto"


def test_region_codes_two_letter_words_and_other_regions_keep_arms_out_of_auto(
    make_companies,
) -> None:
    """ "Acme US" is a regional arm of "Acme", "Kappa Sigma North" and "South" are two arms,
    "REWE To Go" is no "REWE", "Brontide Foods" no "Brontide Logistics", "Walgreens #1234" no
    "Walgreens #1235": on one website, none is an automatic link, however long the names."""
    hs, sf, _ = make_companies(150, seed=3, dup_share=0.0)
    cases = [
        ("Zorblax4 Robotics", "Zorblax4 Robotics US", "zorblax4.de", "extra_country"),
        ("Kappa Sigma North", "Kappa Sigma South", "kappasigma.org", "other_region"),
        ("Vexilon Software (Europe)", "Vexilon Software (Asia)", "vexilon.com", "other_region"),
        ("REWE", "REWE To Go", "rewe.de", "extra_words"),
        # each name has its own word: franchisees, sister companies on one website
        ("Zanthor Pizza Springfield", "Zanthor Pizza Shelbyville", "zanthorpizza.com",
         "other_words"),
        ("Brontide Foods", "Brontide Logistics", "brontide.com", "other_words"),
        # numbered stores and branches of one chain: one website, two records
        ("Walgreens #1234", "Walgreens #1235", "walgreens.com", "other_number"),
        ("Harbor Freight Store 512", "Harbor Freight Store 513", "harborfreight.com",
         "other_number"),
        # names of more words than the kept (rarest) ones: a common extra word still counts
        ("First National Bank of Central Texas", "First National Bank of Central Texas Mortgage",
         "fnbct.com", "extra_words"),
        ("Kappa Sigma Fraternity Alumni Association Chapter North",
         "Kappa Sigma Fraternity Alumni Association Chapter South", "ksfaa.org", "other_region"),
        ("Brontide Quorvex Halvani Ostrel Pemberton Foods",
         "Brontide Quorvex Halvani Ostrel Pemberton Logistics", "bqhop.com", "other_words"),
        ("Vellmar Ostrel Quandt Hessel Brauer Industries",
         "Vellmar Ostrel Quandt Hessel Brauer Industries Germany", "vellmar.de", "extra_country"),
    ]  # fmt: skip

    def add(frame: pl.DataFrame, source: str, obj: str, side: int) -> pl.DataFrame:
        rows = [
            {"record_id": f"{source[0]}x{k}", "name": case[side], "website": case[2],
             "phone": f"+49 30 555 01{k:02d}"}
            for k, case in enumerate(cases)
        ]  # fmt: skip
        extra = pl.DataFrame(rows).with_columns(country=pl.lit("DE"))
        return pl.concat([frame, extra], how="diagonal_relaxed").with_columns(
            source=pl.lit(source), object=pl.lit(obj)
        )

    r = match_records(
        add(hs, "hubspot", "companies", 0), add(sf, "salesforce", "Account", 1), entity="companies"
    )
    for k, (_a, _b, _site, level) in enumerate(cases):
        rows = r.links.filter(pl.col("record_id_l") == f"hx{k}").rows(named=True)
        for row in rows:
            levels = {e["comparison"]: e["level"] for e in json.loads(row["explanation"])}
            assert row["tier"] != "auto", (cases[k], levels)
            if row["record_id_r"] == f"sx{k}":
                assert levels["company_name"] == level, (cases[k], levels)


def test_explanation_weights_add_up_to_the_total(companies) -> None:
    hs, sf, _ = companies
    r = match_records(hs, sf, entity="companies")
    for frame in (r.links, r.duplicates):
        assert frame.height
        for text in frame["explanation"].to_list():
            entries = json.loads(text)
            total = next(e["weight"] for e in entries if e["comparison"] == "total")
            parts = [e["weight"] for e in entries if e["comparison"] != "total"]
            assert any(e["comparison"] == "prior" for e in entries)
            assert abs(sum(parts) - total) <= 0.001 * len(parts) + 1e-9


def test_a_company_without_a_name_is_never_linked_on_a_shared_key_alone(make_companies) -> None:
    hs, sf, _ = make_companies(40, seed=7, dup_share=0.0)
    extra_hs = pl.DataFrame(
        [{"source": "hubspot", "object": "companies", "record_id": "x1", "name": None,
          "website": "zentrix.io", "phone": "+1 512 555 0199", "city": "Austin", "country": "US"}]
    )  # fmt: skip
    extra_sf = pl.DataFrame(
        [{"source": "salesforce", "object": "Account", "record_id": "y1",
          "name": "Zentrix Health", "website": "https://zentrix.io/", "phone": "+1 512 555 0199",
          "city": "Austin", "country": "US"}]
    )  # fmt: skip
    both = (pl.concat([hs, extra_hs], how="diagonal"), pl.concat([sf, extra_sf], how="diagonal"))
    hit = match_records(*both, entity="companies").links.filter(pl.col("record_id_l") == "x1")
    assert hit["tier"].to_list() == ["review"]  # the domain is evidence, not a verdict


@pytest.mark.parametrize("n", [3, 60, 61, 120])
def test_many_equally_strong_copies_form_one_cluster(n: int) -> None:
    from recon.match.clusters import build_clusters

    a, b = np.triu_indices(n, 1)
    edges = pl.DataFrame({"_il": a, "_ir": b, "score": np.full(len(a), 0.999)})

    def score_pairs(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.full(len(x), 0.999)

    assert build_clusters(n, edges, score_pairs, cluster_min=0.98) == [list(range(n))]


def test_the_order_of_the_records_changes_nothing(companies) -> None:
    hs, sf, _ = companies
    first = match_records(hs, sf, entity="companies")
    again = match_records(
        hs.sample(fraction=1.0, shuffle=True, seed=1),
        sf.sample(fraction=1.0, shuffle=True, seed=2),
        entity="companies",
    )
    for a, b in ((first.links, again.links), (first.duplicates, again.duplicates)):
        cols = ["record_id_l", "record_id_r", "score", "tier", "explanation"]
        assert a.select(cols).sort(cols[:2]).equals(b.select(cols).sort(cols[:2]))


def test_colleagues_sharing_a_surname_are_never_auto_duplicates() -> None:
    """Elias and Jeffrey Johnson at one company: the names meet only at the weakest level
    (a shared surname), and company, domain and city agree as they do for any colleagues.
    However high the score, such a pair is never `auto`: a person may look, no policy merges."""
    import numpy as np

    from recon.match.settings import default_settings
    from recon.match.tiers import AUTO, pair_tiers

    settings = default_settings("contacts")
    levels = []
    for comp in settings.comparisons:
        labels = [lv.label for lv in comp.levels]
        wanted = "token_set_0.6" if comp.name == "person_name" else "exact"
        levels.append(labels.index(wanted) if wanted in labels else len(labels) - 1)
    g = np.array([levels])
    tier = pair_tiers(g, np.array([0.999994]), settings, auto=0.99, review=0.9)
    assert tier[0] != AUTO
    g[0, [c.name for c in settings.comparisons].index("person_name")] = [
        lv.label for lv in settings.comparison("person_name").levels
    ].index("jw_0.94")
    assert pair_tiers(g, np.array([0.999994]), settings, auto=0.99, review=0.9)[0] == AUTO


def test_a_full_name_alone_proposes_no_duplicate_but_with_a_shared_phone_it_does() -> None:
    """Two "Donna Wilson" with different addresses and nothing else in common are namesakes
    (however the weights came out); with a shared phone they may be one person."""
    import numpy as np

    from recon.match.settings import default_settings
    from recon.match.tiers import no_duplicate_pairs

    settings = default_settings("contacts")
    names = [c.name for c in settings.comparisons]
    labels = {c.name: [lv.label for lv in c.levels] for c in settings.comparisons}

    def pattern(**levels: str) -> list[int]:
        return [labels[n].index(levels.get(n, "null")) for n in names]

    g = np.array(
        [
            pattern(person_name="exact", email="else"),
            pattern(person_name="exact", email="else", phone="exact"),
        ],
        dtype=np.int8,
    )
    assert no_duplicate_pairs(g, settings).tolist() == [True, False]


def test_two_hosts_under_one_registered_domain_are_two_arms(make_companies) -> None:
    """ "hn.zetagrid.com.cn" and "he.zetagrid.com.cn" share a registered domain but are two
    provincial companies: no automatic link and no duplicate; "www." and a bare domain stay
    one site."""
    hs, sf, _ = make_companies(150, seed=3, dup_share=0.0)

    def add(frame: pl.DataFrame, source: str, obj: str, rows: list[dict]) -> pl.DataFrame:
        extra = pl.DataFrame(rows).with_columns(country=pl.lit("CN"))
        return pl.concat([frame, extra], how="diagonal_relaxed").with_columns(
            source=pl.lit(source), object=pl.lit(obj)
        )

    hs = add(hs, "hubspot", "companies", [
        {"record_id": "hz", "name": "Zetagrid Hunan Electric Power Co Ltd",
         "website": "https://www.hn.zetagrid.com.cn", "city": "Changsha"},
        {"record_id": "hw", "name": "Wunlong Foods", "website": "https://www.wunlong.cn"},
    ])  # fmt: skip
    sf = add(sf, "salesforce", "Account", [
        {"record_id": "sz", "name": "Zetagrid Hebei Electric Power Co Ltd",
         "website": "https://www.he.zetagrid.com.cn", "city": "Shijiazhuang"},
        {"record_id": "sw", "name": "Wunlong Foods", "website": "wunlong.cn"},
    ])  # fmt: skip
    r = match_records(hs, sf, entity="companies")
    rows = {row["record_id_l"]: row for row in r.links.rows(named=True)}
    if "hz" in rows:
        levels = {e["comparison"]: e["level"] for e in json.loads(rows["hz"]["explanation"])}
        assert rows["hz"]["tier"] != "auto" and levels["domain"] == "other_subdomain"
    assert rows["hw"]["record_id_r"] == "sw" and rows["hw"]["tier"] == "auto"


def test_a_near_name_at_one_company_is_a_merge_for_a_person_not_automatic() -> None:
    """ "Carol Rossi" / "Ronald Rossi" at one company and phone score high, but two such records
    are colleagues or relatives as often as one person: a duplicate, and a link across the
    systems, waits in review."""
    import numpy as np

    from recon.match.settings import default_settings
    from recon.match.tiers import AUTO, REVIEW, pair_tiers

    settings = default_settings("contacts")
    names = [c.name for c in settings.comparisons]
    labels = {c.name: [lv.label for lv in c.levels] for c in settings.comparisons}
    row = [labels[n].index({"person_name": "jw_0.85", "company": "exact", "phone": "exact"}.get(n, "null"))
           for n in names]  # fmt: skip
    g = np.array([row], dtype=np.int8)
    prob = np.array([0.9999])
    assert pair_tiers(g, prob, settings, 0.99, 0.9, veto_rejects=True).tolist() == [REVIEW]
    assert pair_tiers(g, prob, settings, 0.99, 0.9).tolist() == [REVIEW]
    # one word against a whole name ("Mr. Dalton" / "Neil Dalton"): the same
    row[names.index("person_name")] = labels["person_name"].index("one_word")
    g = np.array([row], dtype=np.int8)
    assert pair_tiers(g, prob, settings, 0.99, 0.9, veto_rejects=True).tolist() == [REVIEW]
    assert pair_tiers(g, prob, settings, 0.99, 0.9).tolist() == [REVIEW]
    # inside one system two mailboxes are two people as often as one: never an automatic merge
    row = [labels[n].index({"person_name": "exact", "company": "exact", "email": "else"}.get(n, "null"))
           for n in names]  # fmt: skip
    g = np.array([row], dtype=np.int8)
    assert pair_tiers(g, prob, settings, 0.99, 0.9, veto_rejects=True).tolist() == [REVIEW]
    assert pair_tiers(g, prob, settings, 0.99, 0.9).tolist() == [AUTO]


def test_near_names_at_one_company_stay_in_review_through_the_whole_match() -> None:
    """End to end: "Carol Rossi" / "Ronald Rossi" (one company, phone and city) are a review
    duplicate and cluster, never auto, among real duplicates that are."""
    rng = random.Random(1)
    first = ["Ana", "Ben", "Cy", "Dee", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jo"]
    last = ["Silva", "Ode", "Park", "Moss", "Khan", "Lee", "Ng", "Ito", "Diaz", "Roe"]
    rows = []
    for i in range(300):
        f, la, co = rng.choice(first), rng.choice(last), f"Company{rng.randrange(150)}"
        rows.append({"record_id": f"r{i}", "first_name": f, "last_name": la, "company": co,
                     "email": f"{f.lower()}.{la.lower()}{i}@{co.lower()}.com",
                     "phone": f"+1 415 555 {rng.randrange(10000):04d}", "city": "Austin"})  # fmt: skip
    for rid, f in (("carol", "Carol"), ("ronald", "Ronald")):
        rows.append({"record_id": rid, "first_name": f, "last_name": "Rossi", "company": "Acme Co",
                     "email": f"{rid}@acmeco.com", "phone": "+1 415 555 0100", "city": "Boston"})  # fmt: skip
    for i in range(60):
        f, la = rng.choice(first), rng.choice(last)
        for j in range(2):
            rows.append({"record_id": f"d{i}_{j}", "first_name": f, "last_name": la, "company": f"Dup{i}",
                         "email": f"{f.lower()}@dup{i}.com", "phone": f"+1 212 555 {i:04d}",
                         "city": "Denver"})  # fmt: skip
    # two John Smiths at one company, each with a mailbox and a line of his own
    for rid, mail, tel in (("js1", "john.smith", "0101"), ("js2", "jsmith", "0199")):
        rows.append({"record_id": rid, "first_name": "John", "last_name": "Smith", "company": "Acme Co",
                     "email": f"{mail}@acmeco.com", "phone": f"+1 415 555 {tel}", "city": "Boston"})  # fmt: skip
    frame = pl.DataFrame(rows).with_columns(source=pl.lit("hubspot"), object=pl.lit("contacts"))
    r = match_records(frame, None, entity="contacts")
    near = r.duplicates.filter(pl.col("record_id_l").is_in(["carol", "ronald"]))
    assert near.height and set(near["tier"]) == {"review"}
    smiths = r.duplicates.filter(pl.col("record_id_l").is_in(["js1", "js2"]))
    assert "auto" not in set(smiths["tier"])
    assert "auto" in set(r.duplicates["tier"])  # the true duplicates still are


def _people(rng: random.Random, n: int, side: str) -> list[dict[str, Any]]:
    first = ["Ana", "Ben", "Cy", "Dee", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jo"]
    last = ["Silva", "Ode", "Park", "Moss", "Khan", "Lee", "Ng", "Ito", "Diaz", "Roe"]
    rows = []
    for i in range(n):
        f, la, co = rng.choice(first), rng.choice(last), f"Company{i}"
        rows.append({"record_id": f"{side}{i}", "first_name": f, "last_name": la, "company": co,
                     "email": f"{f.lower()}.{la.lower()}{i}@{co.lower()}.com",
                     "phone": f"+1 415 555 {i:04d}", "city": "Austin"})  # fmt: skip
    return rows


def test_one_word_against_a_whole_name_is_auto_only_on_one_email_address() -> None:
    """ "Neil" / "Neil Dalton" on one address is one person (a web form asks for a first name
    only): the one-word veto is lifted; without the address it waits for a person; and a
    single word that is none of the other name's is no such level at all."""
    rng = random.Random(3)
    hs, sf = _people(rng, 150, "h"), _people(random.Random(3), 150, "s")
    hs += [
        {"record_id": "neil", "first_name": "Neil", "last_name": None, "company": "Acme Co",
         "email": "neil.dalton@acme.com", "phone": None, "city": "Boston"},
        {"record_id": "dalton", "first_name": None, "last_name": "Dalton", "company": "Acme Co",
         "email": None, "phone": "+1 617 555 0100", "city": "Boston"},
    ]  # fmt: skip
    sf += [
        {"record_id": "neil-dalton", "first_name": "Neil", "last_name": "Dalton", "company": "Acme Co",
         "email": "neil.dalton@acme.com", "phone": "+1 617 555 0100", "city": "Boston"},
    ]  # fmt: skip
    left = pl.DataFrame(hs).with_columns(source=pl.lit("hubspot"), object=pl.lit("contacts"))
    right = pl.DataFrame(sf).with_columns(source=pl.lit("salesforce"), object=pl.lit("Contact"))
    r = match_records(left, right, entity="contacts")
    got = {
        row["record_id_l"]: (row["record_id_r"], row["tier"], json.loads(row["explanation"]))
        for row in r.links.filter(pl.col("record_id_r") == "neil-dalton").rows(named=True)
    }
    _rid, tier, explained = got["neil"]
    levels = {e["comparison"]: e for e in explained}
    assert levels["person_name"]["level"] == "one_word" and tier == "auto"
    assert "vetoes_auto" not in levels["person_name"]  # lifted by the address
    if "dalton" in got:  # the surname alone, no address: never automatic
        assert got["dalton"][1] != "auto"
    pair = [
        {"record_id": "x", "first_name": None, "last_name": "Dalton", "company": "Acme Co",
         "email": None, "phone": "+1 617 555 0100", "city": "Boston"},
        {"record_id": "y", "first_name": "Mary", "last_name": "Smith", "company": "Acme Co",
         "email": None, "phone": "+1 617 555 0100", "city": "Boston"},
    ]  # fmt: skip
    other = pl.DataFrame([*pair, *_people(rng, 100, "b")]).with_columns(
        source=pl.lit("hubspot"), object=pl.lit("contacts")
    )
    d = match_records(other, None, entity="contacts").duplicates
    for row in d.filter(pl.col("record_id_l").is_in(["x", "y"])).rows(named=True):
        levels = {e["comparison"]: e["level"] for e in json.loads(row["explanation"])}
        assert levels["person_name"] != "one_word"


def test_a_role_address_alone_links_no_one() -> None:
    """info@ or noreply@ is a mailbox a team reads: a nameless record on it is not
    automatically the one person on the other side who shares it."""
    rng = random.Random(5)
    hs, sf = _people(rng, 120, "h"), _people(random.Random(5), 120, "s")
    hs.append({"record_id": "anon", "first_name": None, "last_name": None, "company": None,
               "email": "noreply@corpmail.com", "phone": None, "city": None})  # fmt: skip
    sf.append({"record_id": "greg", "first_name": "Greg", "last_name": "Pike", "company": "Corpmail",
               "email": "noreply@corpmail.com", "phone": None, "city": "Austin"})  # fmt: skip
    left = pl.DataFrame(hs).with_columns(source=pl.lit("hubspot"), object=pl.lit("contacts"))
    right = pl.DataFrame(sf).with_columns(source=pl.lit("salesforce"), object=pl.lit("Contact"))
    links = match_records(left, right, entity="contacts").links
    assert links.filter((pl.col("record_id_l") == "anon") & (pl.col("tier") == "auto")).height == 0


@pytest.mark.parametrize("stale_name", ["DO NOT USE - Zorvex Widgets", "Zorvex Widgets (old)"])
def test_a_stale_copy_loses_the_link_to_its_live_twin(make_companies, stale_name) -> None:
    """A HubSpot company matches a Salesforce Account and the copy an admin marked stale
    equally well (the marks are stripped for comparing): the live Account takes the link,
    whatever order the rows come in; a stale copy with no live twin still links."""
    hs, sf, _ = make_companies(60, seed=5, dup_share=0.0)
    row = {"source": "salesforce", "object": "Account", "website": "zorvex.com",
           "phone": None, "city": "Austin", "country": "US"}  # fmt: skip
    hs_rows = pl.DataFrame(
        [
            {**row, "source": "hubspot", "object": "companies", "record_id": "h1",
             "name": "Zorvex Widgets"},
            {**row, "source": "hubspot", "object": "companies", "record_id": "h2",
             "name": "Quillon Optics", "website": "quillon.com"},
        ]
    )  # fmt: skip
    stale = [
        {**row, "record_id": "a-1-stale", "name": stale_name},
        {**row, "record_id": "a-quillon-old", "name": "DO NOT USE - Quillon Optics",
         "website": "quillon.com"},
    ]  # fmt: skip
    live = [{**row, "record_id": "a-2-live", "name": "Zorvex Widgets"}]
    for extra in (stale + live, live + stale):
        r = match_records(
            pl.concat([hs, hs_rows], how="diagonal"),
            pl.concat([sf, pl.DataFrame(extra)], how="diagonal"),
            entity="companies",
        )
        chosen = dict(r.links.select("record_id_l", "record_id_r").iter_rows())
        assert chosen["h1"] == "a-2-live"
        assert chosen["h2"] == "a-quillon-old"


def test_float_ids_from_pandas_are_the_crms_ids() -> None:
    """pandas reads an id column with a blank as floats: 1.0 became "1.0", which never
    equals the CRM's id "1"; a frame without an object column named its counts "None"."""
    import pandas as pd

    from recon.match import match_records

    left = pd.DataFrame({"source": "hubspot", "record_id": [1.0, 2.0], "name": ["Acme", "Acme"],
                         "domain": ["acme.com", "acme.com"]})  # fmt: skip
    right = pd.DataFrame({"source": "salesforce", "record_id": ["001A"], "name": ["Acme"],
                          "domain": ["acme.com"]})  # fmt: skip
    result = match_records(left, right, entity="companies")
    assert result.links["record_id_l"].to_list()  # linked: the ids were read as the CRM's
    assert set(result.links["record_id_l"].to_list()) <= {"1", "2"}
    assert set(result.duplicates["record_id_l"].to_list()) | set(
        result.duplicates["record_id_r"].to_list()
    ) <= {"1", "2"}
    assert not [k for k in result.counts if "None" in k]
