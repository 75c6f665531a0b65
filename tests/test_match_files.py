"""recon match-files: the file contract (headers, one-to-one, tiers) on small generated exports."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recon.cli import app
from recon.errors import FileFormatError, UsageError
from recon.match_files import DUPLICATE_COLUMNS, LINK_COLUMNS, match_files

ORGS = [
    ("Acme Corporation", "acme.com", "+1 212 555 0100", "New York", "US"),
    ("Globex GmbH", "globex.de", "+49 30 1234567", "Berlin", "DE"),
    ("Initech Ltd", "initech.co.uk", "+44 20 7946 0000", "London", "GB"),
    ("Umbrella Pharma SA", "umbrella.fr", "+33 1 23 45 67 89", "Paris", "FR"),
    ("Stark Industries", "starkindustries.com", "(310) 555-0199", "Los Angeles", "US"),
    ("Wayne Enterprises", "wayne-enterprises.com", "", "Gotham", "US"),
]


def write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def company_files(tmp_path: Path) -> tuple[Path, Path]:
    hs_rows, sf_rows = [], []
    for i, (name, domain, phone, city, country) in enumerate(ORGS):
        hs_rows.append([str(100 + i), name, domain, f"https://www.{domain}", phone, city, country])
        sf_rows.append(
            [
                f"001A{i:014d}",
                name.upper().replace(" CORPORATION", " Corp"),
                f"www.{domain}",
                phone,
                city,
                country,
            ]
        )
    hs_rows.append(
        ["200", "ACME Corp.", "acme.com", "acme.com", "", "New York", "USA"]
    )  # a duplicate
    hs = write(
        tmp_path / "hs.csv",
        [
            "Record ID",
            "Company name",
            "Company Domain Name",
            "Website URL",
            "Phone Number",
            "City",
            "Country/Region",
        ],
        hs_rows,
    )
    sf = write(
        tmp_path / "sf.csv",
        ["ID", "NAME", "WEBSITE", "PHONE", "BILLINGCITY", "BILLINGCOUNTRY"],
        sf_rows,
    )
    return hs, sf


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_companies_contract(tmp_path: Path) -> None:
    hs, sf = company_files(tmp_path)
    result = CliRunner().invoke(
        app,
        ["match-files", str(hs), str(sf), "--object", "companies", "--out", str(tmp_path / "out")],
    )
    assert result.exit_code == 0, result.output
    header, links = read(tmp_path / "out" / "links.csv")
    assert (
        tuple(header)
        == LINK_COLUMNS["companies"]
        == ("hubspot_id", "salesforce_id", "score", "tier")
    )
    assert links, "obvious matches are linked"
    assert max(Counter(r["hubspot_id"] for r in links).values()) == 1
    assert max(Counter(r["salesforce_id"] for r in links).values()) == 1
    assert all(0.0 <= float(r["score"]) <= 1.0 and r["tier"] in ("auto", "review") for r in links)
    assert ("101", "001A00000000000001") in {(r["hubspot_id"], r["salesforce_id"]) for r in links}
    as_json = CliRunner().invoke(
        app,
        [
            "match-files",
            str(hs),
            str(sf),
            "--object",
            "companies",
            "--out",
            str(tmp_path / "o2"),
            "--json",
        ],
    )
    summary = json.loads(as_json.output)
    assert summary["links"] == len(links) and summary["records"] == {"hubspot": 7, "salesforce": 6}
    header, dups = read(tmp_path / "out" / "duplicates.csv")
    assert (
        tuple(header)
        == DUPLICATE_COLUMNS
        == ("source", "record_id_l", "record_id_r", "score", "tier")
    )
    assert all(
        r["source"] in ("hubspot", "salesforce") and r["tier"] in ("auto", "review") for r in dups
    )
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in dups)


@pytest.mark.parametrize("split", [False, True])
def test_contacts_contract_with_contacts_and_leads(tmp_path: Path, split: bool) -> None:
    hs = write(
        tmp_path / "hs_contacts.csv",
        ["Record ID", "First Name", "Last Name", "Email", "Company Name"],
        [
            ["1", "Ada", "Lovelace", "ada@analytical.org", "Analytical"],
            ["2", "Grace", "Hopper", "grace@navy.mil", "Navy"],
            ["3", "Alan", "Turing", "alan@bletchley.uk", "Bletchley"],
        ],
    )
    header = ["Id", "FirstName", "LastName", "Email", "Company", "AccountId"]
    contacts = [
        ["003A00000000000001", "Ada", "Lovelace", "ada@analytical.org", "", "001A00000000000001"],
        ["003A00000000000002", "Alan", "Turing", "alan@bletchley.uk", "", ""],
    ]
    leads = [
        ["00QA00000000000001", "Ada", "Lovelace", "ada@analytical.org", "Analytical Engines", ""],
        ["00QA00000000000002", "Grace", "Hopper", "grace@navy.mil", "US Navy", ""],
    ]
    if split:
        files = [
            write(tmp_path / "contacts.csv", header, contacts),
            write(tmp_path / "leads.csv", header, leads),
        ]
    else:
        files = [write(tmp_path / "people.csv", header, contacts + leads)]
    summary = match_files(hs, files, entity="contacts", out_dir=tmp_path / "out")
    header_out, links = read(tmp_path / "out" / "links.csv")
    assert tuple(header_out) == LINK_COLUMNS["contacts"]
    assert summary["links"] == len(links)
    assert max(Counter(r["salesforce_id"] for r in links).values()) == 1
    per_contact = Counter(r["hubspot_id"] for r in links if r["salesforce_object"] == "Contact")
    assert not per_contact or max(per_contact.values()) == 1
    assert {r["salesforce_object"] for r in links} <= {"Contact", "Lead"}
    assert all(
        r["salesforce_object"] == ("Contact" if r["salesforce_id"].startswith("003") else "Lead")
        for r in links
    )
    pairs = {(r["hubspot_id"], r["salesforce_id"]) for r in links}
    assert ("1", "003A00000000000001") in pairs and (
        "1",
        "00QA00000000000001",
    ) in pairs  # one email: both flagged


def test_settings_file_is_used(tmp_path: Path) -> None:
    from recon.match import default_settings

    hs, sf = company_files(tmp_path)
    settings = tmp_path / "settings.json"
    settings.write_text(default_settings("companies").to_json())
    result = CliRunner().invoke(
        app,
        [
            "match-files",
            str(hs),
            str(sf),
            "--object",
            "companies",
            "--out",
            str(tmp_path / "out"),
            "--settings",
            str(settings),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "links.csv").is_file()
    assert json.loads(settings.read_text())  # untouched


def test_bad_object_and_bad_file(tmp_path: Path) -> None:
    hs, sf = company_files(tmp_path)
    with pytest.raises(UsageError, match="companies or contacts"):
        match_files(hs, [sf], entity="deals", out_dir=tmp_path / "out")
    with pytest.raises(FileFormatError, match="is a Salesforce id"):
        match_files(
            sf, [sf], entity="companies", out_dir=tmp_path / "out"
        )  # a Salesforce file as HubSpot
    result = CliRunner().invoke(
        app,
        [
            "match-files",
            str(hs),
            str(tmp_path / "missing.csv"),
            "--object",
            "companies",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert isinstance(result.exception, FileFormatError)
    assert not (tmp_path / "o").exists()


def test_same_salesforce_id_in_two_files_is_refused(tmp_path: Path) -> None:
    hs, sf = company_files(tmp_path)
    with pytest.raises(FileFormatError, match="more than one file"):
        match_files(hs, [sf, sf], entity="companies", out_dir=tmp_path / "out")


def test_swapped_files_are_named_with_a_hint_match_files_can_follow(tmp_path: Path) -> None:
    from recon.errors import FileFormatError
    from recon.match_files import match_files

    sf = tmp_path / "sf.csv"
    sf.write_text("Id,Name,Website\n0015g00000AAAAAAA1,Acme,acme.com\n", encoding="utf-8")
    hs = tmp_path / "hs.csv"
    hs.write_text("Record ID,Company name\n1,Acme\n", encoding="utf-8")
    with pytest.raises(FileFormatError) as err:
        match_files(sf, [hs], entity="companies", out_dir=tmp_path / "out")
    assert err.value.hint == "give the HubSpot export first, then the Salesforce exports"


def test_files_of_the_other_object_get_the_object_to_give(tmp_path: Path) -> None:
    from recon.errors import FileFormatError
    from recon.match_files import match_files

    hs = tmp_path / "hs.csv"
    hs.write_text("Record ID,Company name\n1,Acme\n", encoding="utf-8")
    sf = tmp_path / "sf_contacts.csv"
    sf.write_text("Id,LastName,Email\n0035g0000000001AAA,Lee,a@acme.com\n", encoding="utf-8")
    with pytest.raises(FileFormatError) as err:
        match_files(hs, [sf], entity="companies", out_dir=tmp_path / "out")
    assert err.value.hint == "these are contacts: run with --object contacts"


def test_a_folder_given_as_the_settings_file_is_named_as_one(tmp_path: Path) -> None:
    from recon.match_files import read_settings

    with pytest.raises(UsageError, match="is a folder"):
        read_settings(tmp_path)
    with pytest.raises(UsageError, match="no settings file"):
        read_settings(tmp_path / "nope.json")


def test_settings_of_the_other_object_or_per_object_are_read_as_the_config_reads_them(
    tmp_path: Path,
) -> None:
    """`--settings` of contacts settings with `--object companies` said "settings are for
    contacts, not companies" without the file or what to do, and a file in the shape of
    `[match] settings_file` (settings per object) was refused as having no 'comparisons'."""
    from recon.errors import MatchError
    from recon.match import default_settings
    from recon.match_files import read_settings

    companies = default_settings("companies").to_dict()
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"companies": companies}), encoding="utf-8")
    assert read_settings(path, "companies").to_dict() == companies
    with pytest.raises(MatchError, match=f"settings file {path} holds settings for companies only"):
        read_settings(path, "contacts")
    path.write_text(json.dumps(default_settings("contacts").to_dict()), encoding="utf-8")
    with pytest.raises(MatchError) as err:
        read_settings(path, "companies")
    assert str(path) in err.value.message and "contacts, not companies" in err.value.message
    assert err.value.hint == "run with --object contacts, or give settings for companies"
