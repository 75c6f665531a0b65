"""run_match on the store, --train from human decisions, and the `recon match` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recon.cli import app
from recon.errors import MatchError
from recon.match import MatchSettings, default_settings, run_match, train_from_decisions
from recon.match.run import settings_for
from recon.store import open_store, transaction


def _load(db, companies) -> None:  # type: ignore[no-untyped-def]
    hs, sf, _ = companies
    rows = []
    for r in hs.to_dicts() + sf.to_dicts():
        rows.append({**r, "archived": 0, "data": "{}"})
    with transaction(db):
        db["snapshots"].insert_all(rows, alter=False)


def test_run_match_writes_tables(fresh_db, companies, caplog) -> None:
    _load(fresh_db, companies)
    with caplog.at_level("INFO", logger="recon.match.run"):  # what `recon -v match` shows
        run_id = run_match(fresh_db, objects=("companies",))
    assert f"match run {run_id}" in caplog.text
    run = fresh_db["runs"].get(run_id)
    assert run["stage"] == "match" and run["status"] == "ok"
    mr = fresh_db["match_runs"].get((run_id, "companies"))
    assert MatchSettings.from_json(mr["settings"]).entity == "companies"
    assert json.loads(mr["weights"])["links"]["comparisons"]
    assert json.loads(mr["counts"])["links_candidates"]["total"] > 0
    kinds = {
        r["kind"]: r["n"]
        for r in fresh_db.query(
            "select kind, count(*) n from pairs where run_id=? group by kind", [run_id]
        )
    }
    assert kinds["link"] > 100 and kinds.get("duplicate", 0) > 0
    pair = next(
        fresh_db.query("select * from pairs where run_id=? and kind='link' limit 1", [run_id])
    )
    assert pair["tier"] in {"auto", "review"} and json.loads(pair["explanation"])
    assert (
        fresh_db.execute("select count(*) from clusters where run_id=?", [run_id]).fetchone()[0] > 0
    )


def test_train_uses_only_human_decisions(fresh_db, companies) -> None:
    _load(fresh_db, companies)
    hs, sf, _ = companies
    with transaction(fresh_db):
        fresh_db["decisions"].insert(
            {
                "kind": "link",
                "object": "companies",
                "record_id_l": hs["record_id"][0],
                "record_id_r": sf["record_id"][0],
                "label": "match",
                "decided_by": "policy",
            }
        )
    with pytest.raises(MatchError, match="no human"):
        train_from_decisions(fresh_db, "companies", settings_for("companies"))
    with transaction(fresh_db):
        fresh_db["decisions"].insert(
            {
                "kind": "link",
                "object": "companies",
                "record_id_l": hs["record_id"][0],
                "record_id_r": sf["record_id"][0],
                "label": "match",
                "decided_by": "human",
            }
        )
    new, report = train_from_decisions(fresh_db, "companies", settings_for("companies"))
    assert report["labels"] == 1 and new.m_fixed
    run_id = run_match(fresh_db, {"companies": new}, objects=("companies",))
    stored = MatchSettings.from_json(fresh_db["match_runs"].get((run_id, "companies"))["settings"])
    assert stored.m_fixed == new.m_fixed


def test_cli_match(tmp_path: Path, companies) -> None:
    (tmp_path / "recon.toml").write_text('[store]\npath = "data/recon.db"\n', encoding="utf-8")
    db = open_store(tmp_path / "data" / "recon.db")
    _load(db, companies)
    result = CliRunner().invoke(app, ["match", "--object", "companies"])
    assert result.exit_code == 0, result.output
    assert "link" in result.output and "auto" in result.output
    assert (
        db.execute("select count(*) from runs where stage='match' and status='ok'").fetchone()[0]
        == 1
    )
    bad = CliRunner().invoke(app, ["match", "--object", "deals"])
    assert bad.exit_code != 0


def test_settings_file_from_config(tmp_path: Path) -> None:
    from recon.config import load_config
    from recon.match import default_settings

    data = default_settings("companies").to_dict()
    data["thresholds"]["auto"] = 0.999
    (tmp_path / "s.json").write_text(json.dumps({"companies": data}), encoding="utf-8")
    (tmp_path / "recon.toml").write_text(
        '[match]\nsettings_file = "s.json"\nthresholds = { review = 0.8 }\n', encoding="utf-8"
    )
    cfg = load_config(tmp_path / "recon.toml")
    s = settings_for("companies", cfg)
    assert s.thresholds.auto == 0.999 and s.thresholds.review == 0.8
    contacts = settings_for("contacts", cfg)  # the file has no contacts: defaults + overrides
    assert contacts.thresholds.auto == 0.99 and contacts.thresholds.review == 0.8


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("not json", "not valid JSON"),
        ('{"entity": "Companies"}', "entity 'Companies'"),
        ('{"companis": {}}', "unknown key"),
        ('{"companies": ["oops"]}', "not a JSON object"),
        ('{"companies": {"entity": "companies", "thresholds": {"auto": 2}}}', "invalid"),
    ],
)
def test_a_bad_settings_file_is_a_config_error_naming_it(
    tmp_path: Path, content: str, named: str
) -> None:
    from recon.config import load_config
    from recon.errors import ConfigError

    (tmp_path / "s.json").write_text(content, encoding="utf-8")
    (tmp_path / "recon.toml").write_text('[match]\nsettings_file = "s.json"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        settings_for("companies", load_config(tmp_path / "recon.toml"))
    assert "s.json" in str(err.value) and named in str(err.value)


def test_a_comparison_of_a_column_the_records_lack_is_warned_about(
    tmp_path: Path, companies
) -> None:
    """A misspelt column in a settings file compares as missing on every pair (every link out
    of ``auto``): the match run stores a warning and `recon match` prints it. A blocking rule
    on a misspelt column proposed no pairs without a word."""
    from recon.match import default_settings

    data = default_settings("companies").to_dict()
    data["comparisons"][0]["column"] = "no_such_column"
    rule = next(r for r in data["blocking_rules"] if r["kind"] == "exact")
    rule["column"] = "webiste"
    (tmp_path / "s.json").write_text(json.dumps({"companies": data}), encoding="utf-8")
    (tmp_path / "recon.toml").write_text(
        '[store]\npath = "data/recon.db"\n[match]\nsettings_file = "s.json"\n', encoding="utf-8"
    )
    db = open_store(tmp_path / "data" / "recon.db")
    _load(db, companies)
    result = CliRunner().invoke(app, ["match", "--object", "companies"])
    assert result.exit_code == 0, result.output
    name = data["comparisons"][0]["name"]
    said = " ".join(result.output.split())
    assert f"warning: companies: comparison '{name}' reads column 'no_such_column'" in said
    summary = json.loads(db.execute("select summary from runs where stage='match'").fetchone()[0])
    assert "no_such_column" in summary["companies"]["warnings"][0]
    assert (
        f"warning: companies: blocking rule {rule['name']!r} reads column 'webiste', which the "
        "records do not have: it proposes no pairs" in said
    )


def test_thresholds_in_the_config_that_clash_with_the_defaults_are_a_config_error() -> None:
    """`[match] thresholds = { auto = 0.5 }` under the default review 0.9: exit 3 naming
    match.thresholds (it was a match-settings error, exit 1, when the match ran)."""
    from recon.config import load_config
    from recon.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        load_config(None, overrides={"match": {"thresholds": {"auto": 0.5}}})
    assert err.value.problems[0][0] == "match.thresholds"
    assert (
        "'review' (0.9) must not exceed 'auto' (0.5) ('review' is the default: set both)"
        in (err.value.problems[0][1])
    )


def test_thresholds_that_clash_with_a_settings_file_name_both_files(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The file's review threshold is known only when the match reads it: the error then
    names the config file and the settings file."""
    from recon.config import load_config
    from recon.errors import ConfigError

    data = default_settings("companies").to_dict()
    data["thresholds"]["review"] = 0.97
    (tmp_path / "settings.json").write_text(json.dumps(data))
    (tmp_path / "recon.toml").write_text(
        '[match]\nsettings_file = "settings.json"\nthresholds = { auto = 0.95 }\n'
    )
    monkeypatch.chdir(tmp_path)
    cfg = load_config(tmp_path / "recon.toml")
    with pytest.raises(ConfigError) as err:
        settings_for("companies", cfg)
    assert str(tmp_path / "recon.toml") in err.value.message
    assert "settings.json" in err.value.message
    assert err.value.problems[0][0] == "match.thresholds"


def _shared_contacts_store(db, companies, nw_emails: int) -> None:  # type: ignore[no-untyped-def]
    """The generated companies with their people (most in both systems), and a pair with
    names one the other plus a word and no website or phone ("Northwind" / "Northwind Traders": a
    department, or the company)
    whose ``nw_emails`` people are the same."""
    _load(db, companies)
    hs, sf, truth = companies
    rows, assoc = [], []

    def person(source: str, rid: str, email: str, company: str) -> None:
        obj = "contacts" if source == "hubspot" else "Contact"
        rows.append({"source": source, "object": obj, "record_id": rid, "email": email,
                     "account_id": company if source == "salesforce" else None,
                     "archived": 0, "data": "{}"})  # fmt: skip
        if source == "hubspot":
            assoc.append({"source": "hubspot", "from_object": "contacts", "from_id": rid,
                          "to_object": "companies", "to_id": company})  # fmt: skip

    entity_of = {rid: e for (_src, rid), e in truth.items()}
    sf_of = {entity_of[r]: r for r in sf["record_id"].to_list()}
    for n, rid in enumerate(hs["record_id"].to_list()[:60]):
        e = entity_of[rid]
        for k in range(2):
            email = f"p{k}.{e}@corp{e}.example"
            person("hubspot", f"h{n}{k}", email, rid)
            if e in sf_of and (k == 0 or n % 3):
                person("salesforce", f"003{n:05d}{k}", email, sf_of[e])
    extra = [
        {"source": "hubspot", "object": "companies", "record_id": "nw",
         "name": "Northwind", "city": "Leeds", "country": "GB"},
        {"source": "salesforce", "object": "Account", "record_id": "001NWT",
         "name": "Northwind Traders", "city": "Leeds", "country": "GB"},
    ]  # fmt: skip
    for i in range(nw_emails):
        person("hubspot", f"nw{i}", f"staff{i}@northwind.example", "nw")
        person("salesforce", f"003NW{i}", f"staff{i}@northwind.example", "001NWT")
    with transaction(db):
        db["snapshots"].insert_all([{**r, "archived": 0, "data": "{}"} for r in extra] + rows)
        db["associations"].insert_all(assoc)


@pytest.mark.parametrize("shared", [0, 1, 3])
def test_companies_that_share_their_contacts_have_that_evidence(
    tmp_path: Path, make_companies, shared: int
) -> None:
    """As HubSpot's connector pairs an Account with "an existing HubSpot company with the same
    associated contacts", the e-mail addresses of a company's contacts are evidence (the
    ``shared_contacts`` comparison) and a blocking key: two near names without a website are
    not linked on their own, and are with their people in common."""
    db = open_store(tmp_path / "recon.db")
    # 400 companies: random pairs (u) are then nearly all non-matches, as in a real CRM
    _shared_contacts_store(db, make_companies(400, seed=1), shared)
    run_id = run_match(db, objects=("companies",))
    pair = db.execute(
        "select record_id_r, explanation from pairs where run_id = ? and kind = 'link' "
        "and record_id_l = 'nw'",
        [run_id],
    ).fetchone()
    counts = json.loads(db["match_runs"].get((run_id, "companies"))["counts"])
    assert counts["links_candidates"]["shared_contacts"] >= 40 + (shared > 0)
    if not shared:
        assert pair is None
        return
    assert pair[0] == "001NWT"
    why = {c["comparison"]: c["level"] for c in json.loads(pair[1])}
    assert why["shared_contacts"] == ("shared_2" if shared >= 2 else "shared_1")


def _one_crm_pair(tmp_path: Path, companies, names: tuple[str, str], shared: int) -> dict:  # type: ignore[no-untyped-def]
    """Match the generated companies (with their people) plus two HubSpot companies named
    ``names``, without website or phone, whose ``shared`` people are associated with both;
    the duplicate pair's explanation by comparison, or {} when it is not proposed."""
    db = open_store(tmp_path / f"recon-{shared}.db")
    _shared_contacts_store(db, companies, 0)
    rows = [
        {"source": "hubspot", "object": "companies", "record_id": rid, "name": name,
         "city": "Leeds", "country": "GB", "archived": 0, "data": "{}"}
        for rid, name in zip(("eb1", "eb2"), names, strict=True)
    ]  # fmt: skip
    assoc = []
    for i in range(shared):
        rows.append({"source": "hubspot", "object": "contacts", "record_id": f"q{i}",
                     "email": f"ops{i}@eastbrook.example", "archived": 0, "data": "{}"})  # fmt: skip
        assoc += [{"source": "hubspot", "from_object": "contacts", "from_id": f"q{i}",
                   "to_object": "companies", "to_id": company} for company in ("eb1", "eb2")]  # fmt: skip
    with transaction(db):
        db["snapshots"].insert_all(rows)
        if assoc:
            db["associations"].insert_all(assoc)
    run_id = run_match(db, objects=("companies",))
    row = db.execute(
        "select explanation from pairs where run_id = ? and kind = 'duplicate' "
        "and record_id_l in ('eb1', 'eb2') and record_id_r in ('eb1', 'eb2')",
        [run_id],
    ).fetchone()
    return {c["comparison"]: c for c in json.loads(row[0])} if row else {}


def test_shared_contacts_are_evidence_for_duplicates_inside_one_crm(
    tmp_path: Path, make_companies
) -> None:
    """The duplicate stage reads the same evidence: a company and its misspelt copy without a
    website weigh more with their people in common (each address on two companies)."""
    companies = make_companies(400, seed=1)
    names = ("Eastbrook Traders Ltd", "Eastbrok Traders")
    alone = _one_crm_pair(tmp_path, companies, names, 0)
    shared = _one_crm_pair(tmp_path, companies, names, 3)
    assert alone["shared_contacts"]["level"] == "null"
    assert shared["shared_contacts"]["level"] == "shared_2"
    gained = shared["total"]["weight"] - alone["total"]["weight"]
    assert gained == pytest.approx(shared["shared_contacts"]["weight"], abs=0.01) and gained > 3


def test_shared_contacts_do_not_make_a_subsidiary_a_duplicate(
    tmp_path: Path, make_companies
) -> None:
    """Inside one CRM, a name plus a word is a department or regional arm, and people are
    often associated with a parent and its subsidiary both: shared contacts lift no such veto
    ("Eastbrook" / "Eastbrook Trading" are no duplicates, with three people in common)."""
    got = _one_crm_pair(
        tmp_path, make_companies(400, seed=1), ("Eastbrook", "Eastbrook Trading"), 3
    )
    assert got == {}


def test_a_companys_contact_emails_are_its_own_peoples_addresses(fresh_db) -> None:
    """HubSpot: contacts associated either way or naming the company as primary; Salesforce:
    Contacts by AccountId. Archived contacts, role addresses (info@) and an address on more
    than two companies (an agency's contact on every client) say nothing and are left out."""
    from recon.match.run import contact_emails

    def person(source: str, rid: str, email: str, account: str | None = None, archived: int = 0):
        obj = "contacts" if source == "hubspot" else "Contact"
        return {"source": source, "object": obj, "record_id": rid, "email": email,
                "account_id": account, "archived": archived, "data": "{}"}  # fmt: skip

    with transaction(fresh_db):
        fresh_db["snapshots"].insert_all([
            person("hubspot", "c1", "Ann@Acme.example"),
            person("hubspot", "c2", "bo@acme.example", account="A"),
            person("hubspot", "c3", "info@acme.example", account="A"),
            person("hubspot", "c4", "old@acme.example", account="A", archived=1),
            person("hubspot", "c5", "agent@agency.example"),
            person("salesforce", "003X", "ann@acme.example", account="001A"),
            person("salesforce", "003Y", "cy@acme.example", account="001A"),
            person("salesforce", "003Z", "lead@x.example"),
        ])  # fmt: skip
        fresh_db["associations"].insert_all(
            [{"source": "hubspot", "from_object": "contacts", "from_id": "c1",
              "to_object": "companies", "to_id": "A"},
             {"source": "hubspot", "from_object": "companies", "from_id": "B",
              "to_object": "contacts", "to_id": "c1"}]
            + [{"source": "hubspot", "from_object": "contacts", "from_id": "c5",
                "to_object": "companies", "to_id": client} for client in "ABC"]
        )  # fmt: skip
    hs = dict(contact_emails(fresh_db, "hubspot").rows())
    assert hs == {"A": "ann@acme.example bo@acme.example", "B": "ann@acme.example"}
    assert dict(contact_emails(fresh_db, "salesforce").rows()) == {
        "001A": "ann@acme.example cy@acme.example"
    }


def _zorblat_store(tmp_path: Path, make_companies) -> object:  # type: ignore[no-untyped-def]
    """The generated companies, an Account "Zorblat Dynamics Inc", its HubSpot company
    without a website (in the same city), and a HubSpot "Zorblat Dynamics Financial Services" (a department:
    `extra_words` vetoes `auto`) on the Account's website."""
    db = open_store(tmp_path / "recon.db")
    _load(db, make_companies(400, seed=1))
    extra = [
        {"source": "salesforce", "object": "Account", "record_id": "001ZZ",
         "name": "Zorblat Dynamics Inc", "website": "https://www.zorblat.com",
         "city": "Austin", "country": "US"},
        {"source": "hubspot", "object": "companies", "record_id": "zd", "name": "Zorblat Dynamics",
         "city": "Austin", "country": "US"},
        {"source": "hubspot", "object": "companies", "record_id": "zfs",
         "name": "Zorblat Dynamics Financial Services", "website": "zorblat.com", "country": "US"},
    ]  # fmt: skip
    with transaction(db):
        db["snapshots"].insert_all([{**r, "archived": 0, "data": "{}"} for r in extra])
    return db


def _partner(db, run_id: str, account: str) -> tuple[str, str] | None:  # type: ignore[no-untyped-def]
    row = db.execute(
        "select record_id_l, tier from pairs where run_id = ? and kind = 'link' "
        "and record_id_r = ?",
        [run_id, account],
    ).fetchone()
    return tuple(row) if row else None


def test_a_vetoed_pair_never_takes_the_record_of_a_pair_without_a_veto(
    tmp_path: Path, make_companies
) -> None:
    """The department's pair scored higher (the website agrees) and took the Account: the
    true pair, `auto` on its own, was not proposed at all."""
    db = _zorblat_store(tmp_path, make_companies)
    assert _partner(db, run_match(db, objects=("companies",)), "001ZZ") == ("zd", "auto")


def test_a_rejected_link_gives_its_records_to_their_next_partners(
    tmp_path: Path, make_companies
) -> None:
    """Rejecting a link and matching again proposed the same rejected pair: matching never
    read the decisions, and the pair that had lost the record never came back."""
    db = _zorblat_store(tmp_path, make_companies)
    with transaction(db):
        db["decisions"].insert(
            {"kind": "link", "object": "companies", "source_l": "hubspot", "record_id_l": "zd",
             "source_r": "salesforce", "record_id_r": "001ZZ", "label": "non_match",
             "version": 1, "superseded": 0, "decided_by": "human", "reviewer": "ana@corp.com",
             "decided_at": "2026-01-01T00:00:00Z"}
        )  # fmt: skip
    run_id = run_match(db, objects=("companies",))
    assert _partner(db, run_id, "001ZZ") == ("zfs", "review")
    counts = json.loads(db["match_runs"].get((run_id, "companies"))["counts"])
    assert counts["links_rejected"] == 1
