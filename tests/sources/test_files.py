"""The file source: HubSpot and Salesforce exports to canonical records, and every bad file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.errors import FileFormatError
from recon.sources.base import RECORD_COLUMNS
from recon.sources.files import AS_CHOICES, file_times, load_export, parse_as, read_export

HS_COMPANIES = [
    [
        "Record ID",
        "Company name",
        "Company Domain Name",
        "Website URL",
        "Phone Number",
        "City",
        "Country/Region",
        "Industry",
        "Last Modified Date",
    ],
    [
        "101",
        "Müller GmbH",
        "mueller.de",
        "https://www.mueller.de",
        "+49 30 1234567",
        "Berlin",
        "Germany",
        "Retail",
        "2024-01-02T03:04:05Z",
    ],
    ["102", "Café Crème; Ltd", "", "cafe.fr", "", "Paris", "FR", "", ""],
]
SF_ACCOUNTS = [
    ["ID", "NAME", "WEBSITE", "BILLINGCITY", "BILLINGCOUNTRY", "SYSTEMMODSTAMP", "CUSTOM_FIELD__C"],
    [
        "001A00000000001AAA",
        "Müller GmbH",
        "mueller.de",
        "Berlin",
        "DE",
        "2024-01-02T03:04:05.000+0000",
        "x",
    ],
    ["001A00000000002AAA", "Café, Crème", "", "Paris", "France", "", ""],
]


def write_csv(
    path: Path, rows: list[list[str]], *, sep: str = ",", encoding: str = "utf-8"
) -> Path:
    def cell(v: str) -> str:
        return f'"{v}"' if any(ch in v for ch in (sep, '"', "\n")) else v

    path.write_text(
        "\r\n".join(sep.join(cell(v) for v in row) for row in rows) + "\r\n", encoding=encoding
    )
    return path


def write_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


@pytest.mark.parametrize(
    ("encoding", "sep"),
    [
        ("utf-8", ","),
        ("utf-8-sig", ","),
        ("cp1252", ";"),
        ("utf-8", "\t"),
        ("utf-16", ","),
        ("cp1252", ","),
    ],
)
def test_hubspot_companies_encodings_and_delimiters(
    tmp_path: Path, encoding: str, sep: str
) -> None:
    path = write_csv(tmp_path / "companies.csv", HS_COMPANIES, sep=sep, encoding=encoding)
    frame = read_export(path, "hubspot:companies")
    assert frame.columns == list(RECORD_COLUMNS)
    first, second = frame.to_dicts()
    assert first["source"] == "hubspot" and first["object"] == "companies"
    assert (first["record_id"], first["name"], first["domain"], first["website"]) == (
        "101",
        "Müller GmbH",
        "mueller.de",
        "https://www.mueller.de",
    )
    assert (first["phone"], first["city"], first["country"]) == (
        "+49 30 1234567",
        "Berlin",
        "Germany",
    )
    assert first["modified_at"] == "2024-01-02T03:04:05.000Z"
    # no domain column value: the website's host, as a pull stores it
    assert second["name"] == "Café Crème; Ltd" and second["domain"] == "cafe.fr"
    # fields are stored under the API names their labels stand for (the plan reads those)
    assert json.loads(first["data"])["industry"] == "Retail"


@pytest.mark.parametrize(
    "transform", [str.upper, str.lower, lambda s: s.title().replace("__C", "__c")]
)
def test_salesforce_account_headers_any_case(tmp_path: Path, transform) -> None:
    rows = [[transform(h) for h in SF_ACCOUNTS[0]], *SF_ACCOUNTS[1:]]
    frame = read_export(write_csv(tmp_path / "accounts.csv", rows), "salesforce:Account")
    first = frame.row(0, named=True)
    assert (first["object"], first["name"], first["city"], first["country"]) == (
        "Account",
        "Müller GmbH",
        "Berlin",
        "DE",
    )
    assert first["modified_at"] == "2024-01-02T03:04:05.000Z"
    assert json.loads(first["data"])[transform("CUSTOM_FIELD__C")] == "x"  # unknown columns kept
    assert frame.row(1, named=True)["name"] == "Café, Crème"


def test_report_labels_and_internal_names(tmp_path: Path) -> None:
    report = write_csv(
        tmp_path / "r.csv",
        [
            ["Account ID", "Account Name", "Billing City", "Billing Country"],
            ["001x", "Acme", "Oslo", "NO"],
        ],
    )
    assert read_export(report, "salesforce:Account").select("record_id", "name", "city").row(0) == (
        "001x",
        "Acme",
        "Oslo",
    )
    lead = write_csv(
        tmp_path / "l.csv",
        [
            ["Lead ID", "First Name", "Last Name", "Company / Account", "Email"],
            ["00Q1", "Bo", "Li", "Bolico", "bo@x.org"],
        ],
    )
    assert read_export(lead, "salesforce:Lead").select("record_id", "name", "company", "email").row(
        0
    ) == ("00Q1", "Bo Li", "Bolico", "bo@x.org")
    internal = write_csv(
        tmp_path / "i.csv",
        [["hs_object_id", "name", "domain", "website"], ["7", "Acme", "acme.com", "acme.com/x"]],
    )
    assert read_export(internal, "hubspot:companies").select("record_id", "name", "domain").row(
        0
    ) == ("7", "Acme", "acme.com")


def test_hubspot_contacts(tmp_path: Path) -> None:
    rows = [
        [
            "Record ID",
            "First Name",
            "Last Name",
            "Email",
            "Phone Number",
            "Company Name",
            "Associated Company IDs",
            "Salesforce Contact ID",
        ],
        ["5", "Ada", "Lovelace", "ada@example.org", "123", "Analytical", "901;902", "003AAA"],
        ["6", "", "Hopper", "", "", "", "", ""],
    ]
    first, second = read_export(write_csv(tmp_path / "c.csv", rows), "hubspot:contacts").to_dicts()
    assert (
        first["name"],
        first["first_name"],
        first["email"],
        first["company"],
        first["account_id"],
    ) == ("Ada Lovelace", "Ada", "ada@example.org", "Analytical", "901")
    assert json.loads(first["external_ids"]) == {"salesforce_id": "003AAA"}
    assert second["name"] == "Hopper" and second["external_ids"] is None


@pytest.mark.parametrize("with_type_column", [False, True])
def test_contact_file_mixing_contacts_and_leads(tmp_path: Path, with_type_column: bool) -> None:
    header = ["Id", "FirstName", "LastName", "Email", "AccountId", "Company"]
    rows = [
        header,
        ["003A1", "Ada", "L", "a@x.org", "001Z", ""],
        ["00QA2", "Bob", "M", "b@x.org", "", "Bobco"],
    ]
    if with_type_column:  # ids without a known prefix: the type column decides
        rows = [
            [*header, "Type"],
            ["C1", "Ada", "L", "a@x.org", "001Z", "", "Contact"],
            ["L2", "Bob", "M", "b@x.org", "", "Bobco", "lead"],
        ]
    frame = read_export(write_csv(tmp_path / "mixed.csv", rows), "salesforce:contacts")
    assert frame["object"].to_list() == ["Contact", "Lead"]
    assert frame["account_id"].to_list() == ["001Z", None]
    assert frame["company"].to_list() == [None, "Bobco"]
    assert frame["name"].to_list() == ["Ada L", "Bob M"]


def test_xlsx_picks_the_sheet_with_the_id_column(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "export.xlsx",
        {
            "About": [["exported by HubSpot"]],
            "Companies": [
                ["Record ID", "Company name", "Number of Employees"],
                [101, "Acme", 12.0],
                [None, None, None],
                [102.0, "Beta", None],
            ],
        },
    )
    frame = read_export(path, "hubspot:companies")
    assert frame["record_id"].to_list() == ["101", "102"]
    assert json.loads(frame["data"][0])["numberofemployees"] == "12"


def _bad(tmp_path: Path, case: str) -> tuple[Path, str]:
    """A bad file for each case, and the --as it is read with."""
    p = tmp_path / "bad.csv"
    if case == "empty":
        p.write_bytes(b"")
    elif case == "blank":
        p.write_text("\n  \n")
    elif case == "header_only":
        p.write_text("Record ID,Company name\n")
    elif case == "missing_id_column":
        write_csv(p, [["Name", "Website"], ["Acme", "acme.com"]])
    elif case == "duplicate_ids":
        write_csv(p, [["Record ID", "Company name"], ["1", "A"], ["2", "B"], ["1", "C"]])
    elif case == "blank_id":
        write_csv(p, [["Record ID", "Company name"], ["1", "A"], ["", "B"]])
    elif case == "undecodable":
        p.write_bytes("Record ID,Company name\n1,Müller\n".encode() + b"2,\x81\x9d bad\n")
    elif case == "ragged_long":
        p.write_text("Record ID,Company name\n1,A\n2,B,extra\n3,C\n")
    elif case == "ragged_short":
        p.write_text("Record ID,Company name,City\n1,A,Oslo\n2,B\n")
    elif case == "ragged_multiline":
        p.write_text('Record ID,Company name,City\n1,"A\nB",Oslo\n2,B\n')
    elif case == "unknown_as":
        write_csv(p, HS_COMPANIES)
        return p, "hubspot:deals"
    elif case == "wrong_prefix":
        write_csv(p, [["Id", "Name"], ["001A", "Acme"], ["003B", "Ada"]])
        return p, "salesforce:Account"
    elif case == "account_prefix_in_leads":
        write_csv(p, [["Id", "LastName"], ["00QA", "Li"], ["001B", "Acme"]])
        return p, "salesforce:Lead"
    elif case == "account_in_contacts":
        write_csv(
            p, [["Id", "LastName"], ["003A00000000001AAA", "L"], ["001A00000000002AAA", "Acme"]]
        )
        return p, "salesforce:contacts"
    elif case == "unknown_object":
        write_csv(p, [["Id", "LastName"], ["XYZ1", "L"]])
        return p, "salesforce:contacts"
    elif case == "dup_after_blank_lines":
        p.write_text("\n\nRecord ID,Company name\n1,A\n\n2,B\n2,C\n")
    elif case == "salesforce_as_hubspot":
        write_csv(p, [["ID", "NAME"], ["001A00000000001AAA", "Acme"]])
    elif case == "duplicate_header":
        write_csv(p, [["Record ID", "Name", "Name"], ["1", "A", "B"]])
    elif case == "unclosed_quote":
        p.write_bytes(b'Record ID,Company name\n1,"Acme\n2,Beta\n3,Gamma\n')
    elif case == "same_field_twice":
        write_csv(p, [["Record ID", "Company name", "COMPANY NAME"], ["1", "", "B"]])
    elif case == "dup_after_empty_row":  # a ",," row and a blank line before the duplicate
        p.write_text("Record ID,Company name\n1,A\n,\n\n2,B\n2,C\n")
    # the header below Excel's "sep=;" line or blank lines: named at its own line, not line 1
    elif case == "sep_line_duplicate_header":
        p.write_text("sep=;\nRecord ID;Name;Name\n1;A;B\n")
    elif case == "sep_line_header_only":
        p.write_text("\nsep=;\nRecord ID;Company name\n")
    elif case == "blank_lines_missing_id_column":
        p.write_text("\n\nName,Website\nAcme,acme.com\n")
    elif case == "blank_lines_unnamed_column":
        p.write_text("\nRecord ID,,Company name\n1,x,Acme\n")
    elif case == "sep_line_dup_after_multiline":  # a record over two lines, then a repeat
        p.write_text('sep=;\nRecord ID;Company name\n1;"Acme\nInc"\n2;B\n1;C\n')
    elif case == "xlsx_title_rows_duplicate_header":
        p = write_xlsx(
            tmp_path / "bad.xlsx",
            {"Sheet": [["Report"], [], ["Record ID", "Name", "Name"], [1, "A", "B"]]},
        )
    elif case == "xlsx_no_sheet":
        p = write_xlsx(tmp_path / "bad.xlsx", {"Sheet": [["Name", "City"], ["Acme", "Oslo"]]})
    elif case == "xlsx_dup_id":
        p = write_xlsx(
            tmp_path / "bad.xlsx",
            {
                "Sheet": [
                    ["exported"],
                    ["Record ID", "Company name"],
                    [1, "A"],
                    [None, None],
                    [1, "B"],
                ]
            },
        )
    elif case == "xlsx_corrupt":
        p = tmp_path / "bad.xlsx"
        p.write_bytes(b"PK\x03\x04 not really a zip")
    elif case == "missing_file":
        p = tmp_path / "nope.csv"
    elif case == "folder":
        p = tmp_path / "exports"
        p.mkdir()
    elif case == "unreadable":  # an I/O error reading it
        p = Path("/proc/self/mem")
    return p, "hubspot:companies"


@pytest.mark.parametrize(
    ("case", "row", "column", "words"),
    [
        ("empty", None, None, "empty"),
        ("blank", None, None, "empty"),
        ("header_only", 2, None, "no rows"),
        ("missing_id_column", 1, None, "no id column"),  # the header: no column of the file
        ("duplicate_ids", 2, "Record ID", "more than once (again in row 4)"),
        ("blank_id", 3, "Record ID", "blank"),
        ("undecodable", 3, None, "undecodable"),
        ("ragged_long", 3, None, "3 fields but the header has 2"),
        ("ragged_short", 3, None, "2 fields but the header has 3"),
        ("ragged_multiline", 4, None, "2 fields but the header has 3"),
        ("unknown_as", None, None, "unknown --as"),
        ("wrong_prefix", 3, "Id", "Contact id"),
        ("account_prefix_in_leads", 3, "Id", "(it is an Account id)"),
        ("account_in_contacts", 3, "Id", "Account id, not a Contact or Lead"),
        ("unknown_object", 2, "Id", "Contact or a Lead"),
        ("salesforce_as_hubspot", 2, "ID", "is a Salesforce id"),
        ("dup_after_blank_lines", 6, "Record ID", "more than once (again in row 7)"),
        ("duplicate_header", 1, "Name", "twice"),
        ("same_field_twice", 1, "COMPANY NAME", "name the same field"),
        ("unclosed_quote", 2, None, "starts in row 2"),
        ("dup_after_empty_row", 5, "Record ID", "more than once (again in row 6)"),
        ("sep_line_duplicate_header", 2, "Name", "twice"),
        ("sep_line_header_only", 4, None, "no rows"),
        ("blank_lines_missing_id_column", 3, None, "no id column"),
        ("blank_lines_unnamed_column", 2, None, "column 2 of the header has no name"),
        ("sep_line_dup_after_multiline", 3, "Record ID", "more than once (again in row 6)"),
        ("xlsx_title_rows_duplicate_header", 3, "Name", "twice"),
        ("xlsx_no_sheet", None, "recordid", "no sheet"),
        ("xlsx_corrupt", None, None, "XLSX"),
        ("xlsx_dup_id", 3, "Record ID", "more than once (again in row 5)"),
        ("missing_file", None, None, "no such file"),
        ("folder", None, None, "is a folder, not an export file"),
        ("unreadable", None, None, "cannot be read"),
    ],
)
def test_bad_files_raise_one_clear_error(
    tmp_path: Path, case: str, row: int | None, column: str | None, words: str
) -> None:
    path, as_ = _bad(tmp_path, case)
    with pytest.raises(FileFormatError) as info:
        read_export(path, as_)
    err = info.value
    assert words in str(err)
    assert str(path) in str(err)
    assert err.row == row
    assert err.column == column
    assert err.hint  # says what to do


def test_parse_as_is_case_insensitive() -> None:
    assert parse_as("Salesforce:CONTACT") == ("salesforce", "Contact")
    assert parse_as("salesforce:contacts") == ("salesforce", "contacts")


def test_load_export_stores_snapshots_in_a_pull_run(tmp_path: Path, fresh_db) -> None:
    path = write_csv(
        tmp_path / "mixed.csv",
        [["Id", "LastName", "Email"], ["003A1", "L", "a@x.org"], ["00QA2", "M", "b@x.org"]],
    )
    run_id = load_export(fresh_db, path, "salesforce:contacts")
    rows = list(
        fresh_db.query(
            "select source, object, record_id, email, origin, run_id, content_hash from snapshots order by record_id"
        )
    )
    assert [(r["source"], r["object"], r["record_id"], r["email"]) for r in rows] == [
        ("salesforce", "Contact", "003A1", "a@x.org"),
        ("salesforce", "Lead", "00QA2", "b@x.org"),
    ]
    assert {r["origin"] for r in rows} == {f"file:{path}"} and {r["run_id"] for r in rows} == {
        run_id
    }
    assert all(r["content_hash"] for r in rows)
    run = fresh_db["runs"].get(run_id)
    assert run["stage"] == "pull" and run["status"] == "ok"
    assert json.loads(run["config"])["file"] == str(path)
    assert json.loads(run["summary"])["objects"] == {"Contact": 1, "Lead": 1}
    # loading again upserts: no doubled rows
    load_export(fresh_db, path, "salesforce:contacts")
    assert fresh_db["snapshots"].count == 2


def test_a_re_import_counts_the_records_its_file_lacks(
    tmp_path: Path, fresh_db, caplog: pytest.LogCaptureFixture
) -> None:
    """An updated export without a record left it live in the store, silently: the next plan
    still proposed creating it elsewhere. The load now says how many it lacks."""
    first = write_csv(tmp_path / "v1.csv", [["Record ID", "Company name"], ["1", "A"], ["2", "B"]])
    load_export(fresh_db, first, "hubspot:companies")
    second = write_csv(tmp_path / "v2.csv", [["Record ID", "Company name"], ["1", "A2"]])
    stats: dict[str, Any] = {}
    with caplog.at_level("WARNING"):
        load_export(fresh_db, second, "hubspot:companies", stats=stats)
    assert stats["absent"] == 1
    assert "1 record(s) an earlier export file loaded are not in this one" in caplog.text


def test_load_export_bad_file_stores_nothing(tmp_path: Path, fresh_db) -> None:
    path = write_csv(tmp_path / "dup.csv", [["Record ID", "Company name"], ["1", "A"], ["1", "B"]])
    with pytest.raises(FileFormatError):
        load_export(fresh_db, path, "hubspot:companies", run_id="pull-file-1")
    assert fresh_db["snapshots"].count == 0
    assert fresh_db["runs"].get("pull-file-1")["status"] == "failed"


def test_load_export_joins_a_running_run(tmp_path: Path, fresh_db) -> None:
    from recon.store import start_run

    run_id = start_run(fresh_db, "pull", config={"files": 2})
    path = write_csv(tmp_path / "c.csv", HS_COMPANIES)
    assert load_export(fresh_db, path, "hubspot:companies", run_id=run_id) == run_id
    assert fresh_db["runs"].get(run_id)["status"] == "running"  # the caller finishes its run
    assert fresh_db["snapshots"].count == 2


def test_lean_read_skips_data_and_timestamp_normalisation(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "companies.csv", HS_COMPANIES)
    full = read_export(path, "hubspot:companies")
    lean = read_export(path, "hubspot:companies", lean=True)
    assert lean.columns == full.columns
    assert lean["data"].null_count() == lean.height
    assert lean["modified_at"][0] == "2024-01-02T03:04:05Z"  # as exported
    assert lean.drop("data", "modified_at").equals(full.drop("data", "modified_at"))


def test_a_quote_inside_an_unquoted_value_is_text(tmp_path: Path) -> None:
    path = tmp_path / "inch.csv"
    path.write_bytes(b'Record ID,Company name\n1,A\n2,5" pipe Ltd\n,\n3,C\n3,D\n')
    with pytest.raises(FileFormatError) as info:  # rows still named right after the fallback
        read_export(path, "hubspot:companies")
    assert info.value.row == 5 and "again in row 6" in str(info.value)
    path.write_bytes(b'Record ID,Company name\n1,A\n2,5" pipe Ltd\n3,C\n')
    assert read_export(path, "hubspot:companies").select("record_id", "name").rows() == [
        ("1", "A"),
        ("2", '5" pipe Ltd'),
        ("3", "C"),
    ]


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("\n\nRecord ID,Company name\n1,A\n\n   \n2,B\n\n")
    with pytest.raises(
        FileFormatError, match="blank"
    ):  # a whitespace-only line is a row without id
        read_export(path, "hubspot:companies")
    path.write_text("\n\nRecord ID,Company name\n1,A\n\n2,B\n\n")
    assert read_export(path, "hubspot:companies").select("record_id", "name").rows() == [
        ("1", "A"),
        ("2", "B"),
    ]


_CSVISH = st.lists(
    st.lists(
        st.sampled_from(
            ["1", "2", "Acme", "", " ", '"a,b"', '"x""y"', "é", "\t", ";", "ß,", '"', "\r"]
        ),
        max_size=4,
    ),
    max_size=5,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    head=st.sampled_from(["Record ID,Company name\n", "Record ID;Company name\n", "", "ID,NAME\n"]),
    rows=_CSVISH,
    noise=st.binary(max_size=40),
    as_=st.sampled_from(AS_CHOICES),
)
def test_any_bytes_give_records_or_one_file_format_error(
    tmp_path: Path, head: str, rows: list[list[str]], noise: bytes, as_: str
) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(head.encode() + "\n".join(",".join(r) for r in rows).encode() + noise)
    try:
        frame = read_export(path, as_)
    except FileFormatError as err:
        assert str(path) in str(err)
    else:
        assert frame.columns == list(RECORD_COLUMNS)
        assert frame["record_id"].null_count() == 0


def test_a_reload_rewrites_nothing_and_an_old_export_never_overwrites_newer_data(
    tmp_path: Path, fresh_db
) -> None:
    from recon.pull import load_file

    new = tmp_path / "new.csv"
    new.write_text(
        "Record ID,Company name,Last Modified Date\n100,New Name,2025-12-29 10:00\n101,B,2025-01-01 10:00\n",
        encoding="utf-8",
    )
    first = load_file(fresh_db, new, "hubspot:companies")
    again = load_file(fresh_db, new, "hubspot:companies")
    assert first.changed == {"hubspot:companies": 2} and again.changed == {"hubspot:companies": 0}
    # an export from long ago: the row pulled since is newer and stays
    old = tmp_path / "old.csv"
    old.write_text(
        "Record ID,Company name,Last Modified Date\n100,Old Name Ltd,2020-01-01 10:00\n",
        encoding="utf-8",
    )
    load_file(fresh_db, old, "hubspot:companies")
    name = fresh_db.execute("select name from snapshots where record_id = '100'").fetchone()[0]
    assert name == "New Name"


def test_a_zip_named_csv_is_a_file_format_error(tmp_path: Path) -> None:
    path = tmp_path / "z.csv"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(FileFormatError, match="not a readable XLSX workbook"):
        read_export(path, "hubspot:companies")


def test_hubspot_ids_a_spreadsheet_reformatted_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("Record ID;Company name\n1.23457E+11;Acme\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="not a HubSpot id") as err:
        read_export(path, "hubspot:companies")
    assert "Text" in str(err.value)


def test_salesforce_ids_of_a_report_export_are_stored_in_their_18_character_form(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "Account ID,Account Name,Owner ID\n0015g0000000001,Acme,0055g0000000001\n",
        encoding="utf-8",
    )
    (row,) = read_export(path, "salesforce:Account").select("record_id", "owner_id").rows()
    assert row == ("0015g0000000001AAA", "0055g0000000001AAA")


def test_a_report_s_lookup_ids_are_stored_in_their_18_character_form_in_the_data_too(
    tmp_path: Path,
) -> None:
    """The canonical columns were converted, but the record's fields kept the report's
    15-character ``AccountId``: the plan then wrote it into HubSpot's ``salesforceaccountid``."""
    fields = _one_json(
        tmp_path,
        "Contact ID,Last Name,Account ID,Email,Title\n"
        "0035g0000000001,Bo,0015g0000000001,bo@x.co,ABCDEFGHIJKLMNO\n",
        "salesforce:Contact",
        "data",
    )
    assert (fields["Id"], fields["AccountId"]) == ("0035g0000000001AAA", "0015g0000000001AAA")
    assert fields["Title"] == "ABCDEFGHIJKLMNO"  # no id field: left as it is


def _one_json(tmp_path: Path, text: str, as_: str, column: str) -> Any:
    """The JSON ``column`` of the one record of an export file holding ``text``."""
    path = tmp_path / "one.csv"
    path.write_text(text, encoding="utf-8")
    (value,) = read_export(path, as_)[column].to_list()
    return json.loads(value)


def _plan_of_files(tmp_path: Path, *files: tuple[str, str]) -> Any:
    """The dry-run plan of a new store holding export files (``(text, as_)`` each), matched."""
    from recon.config import ReconConfig
    from recon.match import run_match
    from recon.plan import build_plan
    from recon.store import open_store

    db = open_store(tmp_path / "recon.db")
    for n, (text, as_) in enumerate(files):
        path = tmp_path / f"file{n}.csv"
        path.write_text(text, encoding="utf-8")
        load_export(db, path, as_)
    run_match(db, ReconConfig())
    return build_plan(db, ReconConfig(), dry_run=True)


def test_a_hubspot_contact_stores_its_contact_id_not_its_account_id(tmp_path: Path) -> None:
    ext = _one_json(
        tmp_path,
        "Record ID,Email,Salesforce Account ID,Salesforce Contact ID\n"
        "7,a@b.co,0015g0000000001AAA,0035g0000000001AAA\n",
        "hubspot:contacts",
        "external_ids",
    )
    assert ext == {"salesforce_id": "0035g0000000001AAA"}


def test_a_file_load_applies_the_scoping_filters_as_a_pull_does(
    tmp_path: Path, fresh_db, caplog
) -> None:
    """Filters name API fields; a HubSpot export has labels: the stored schema's label finds the
    column. Rows out of scope are not stored, or marked out of scope when stored before."""
    from recon.config import load_config
    from recon.pull import load_file

    fresh_db["schemas"].insert(
        {"source": "hubspot", "object": "contacts",
         "fields": json.dumps([{"name": "hs_lead_status", "label": "Lead Status"}])},
        pk=("source", "object"),
    )  # fmt: skip
    path = tmp_path / "contacts.csv"
    path.write_text(
        "Record ID,First Name,Email,Lead Status\n"
        "1,Ann,ann@x.org,OPEN\n2,Ben,ben@x.org,UNQUALIFIED\n3,Cy,,OPEN\n",
        encoding="utf-8",
    )
    everything = load_config(None, overrides={"pull": {"contacts_require_email": False}})
    load_file(fresh_db, path, "hubspot:contacts", cfg=everything)
    assert fresh_db["snapshots"].count == 3
    scoped = load_config(
        None,
        overrides={"pull": {"filters": [
            {"source": "hubspot", "object": "contacts", "field": "hs_lead_status", "op": "eq",
             "value": "open"},
        ]}},
    )  # fmt: skip
    result = load_file(fresh_db, path, "hubspot:contacts", cfg=scoped)
    flags = dict(fresh_db.execute("select record_id, archived from snapshots").fetchall())
    # Ben fails the filter, Cy has no email (contacts_require_email): kept, marked out of scope
    assert flags == {"1": 0, "2": 2, "3": 2}
    assert result.records == {"hubspot:contacts": 3}
    assert result.changed == {"hubspot:contacts": 2}
    # back in scope when the filter goes
    load_file(fresh_db, path, "hubspot:contacts", cfg=everything)
    assert dict(fresh_db.execute("select record_id, archived from snapshots").fetchall()) == {
        "1": 0, "2": 0, "3": 0,
    }  # fmt: skip
    # a new store: rows out of scope are not stored at all
    fresh_db["snapshots"].delete_where()
    new = load_file(fresh_db, path, "hubspot:contacts", cfg=scoped)
    assert [r[0] for r in fresh_db.execute("select record_id from snapshots")] == ["1"]
    assert new.summary["out_of_scope"] == 2
    # a filter on a field the file has no column for is not judged, and said so
    other = load_config(
        None,
        overrides={"pull": {"contacts_require_email": False, "filters": [
            {"source": "hubspot", "object": "contacts", "field": "lifecyclestage", "op": "eq",
             "value": "customer"},
        ]}},
    )  # fmt: skip
    with caplog.at_level("WARNING", logger="recon.sources.files"):
        load_file(fresh_db, path, "hubspot:contacts", cfg=other)
    assert fresh_db["snapshots"].count == 3
    assert "no column for the filter on hubspot contacts lifecyclestage" in caplog.text


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["30.11.2026 14:05", "1.2.2026"], ["2026-11-30T14:05:00.000Z", "2026-02-01T00:00:00.000Z"]),
        (["11/30/2026, 2:05 PM", "01/02/2026, 12:00 AM"],
         ["2026-11-30T14:05:00.000Z", "2026-01-02T00:00:00.000Z"]),
        (["30/11/2026 14:05", "01/02/2026"], ["2026-11-30T14:05:00.000Z", "2026-02-01T00:00:00.000Z"]),
        (["2026-11-30T14:05:00.000+0100", "2026-11-30 14:05"],
         ["2026-11-30T13:05:00.000Z", "2026-11-30T14:05:00.000Z"]),
        # year first (Japan, China, Korea): never read day first
        (["2026/11/30 14:05", "2026/2/1"], ["2026-11-30T14:05:00.000Z", "2026-02-01T00:00:00.000Z"]),
    ],
)  # fmt: skip
def test_report_exports_write_dates_in_the_users_locale(
    tmp_path: Path, values: list[str], expected: list[str]
) -> None:
    path = tmp_path / "a.csv"
    rows = "".join(f'00100000000000{i},A{i},"{v}"\n' for i, v in enumerate(values))
    path.write_text("Account ID,Account Name,Last Modified Date\n" + rows, encoding="utf-8")
    assert read_export(path, "salesforce:Account")["modified_at"].to_list() == expected


def test_dates_either_order_could_read_are_not_guessed(tmp_path: Path, caplog) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "Account ID,Account Name,Last Modified Date\n001000000000001,A,01/02/2026\n"
        "001000000000002,B,2026-03-04 10:00\n",
        encoding="utf-8",
    )
    with caplog.at_level("WARNING", logger="recon.sources.files"):
        times = read_export(path, "salesforce:Account")["modified_at"].to_list()
    assert times == [None, "2026-03-04T10:00:00.000Z"]
    assert "day or month first" in caplog.text and "Last Modified Date" in caplog.text


def test_a_value_that_is_no_date_names_its_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "Record ID,Company name,Last Modified Date\n1,A,2026-01-01\n2,B,yesterday\n",
        encoding="utf-8",
    )
    with pytest.raises(FileFormatError, match="'yesterday' is not a date") as err:
        read_export(path, "hubspot:companies")
    assert err.value.row == 3 and err.value.column == "Last Modified Date"
    # a slashed value that is no date either way is no vote for day or month first (the
    # column was left unread, "read as day or month first"): it is named as no date
    path.write_text(
        "Id,Name,LastModifiedDate\n001A,A,12/11/2026\n001B,B,13/13/2026\n", encoding="utf-8"
    )
    with pytest.raises(FileFormatError, match="'13/13/2026' is not a date") as err:
        read_export(path, "salesforce:Account")
    assert err.value.row == 3 and err.value.column == "LastModifiedDate"
    path.write_text(
        "Id,Name,LastModifiedDate\n001A,A,12/11/2026\n001B,B,00/00/0000\n", encoding="utf-8"
    )
    with pytest.raises(FileFormatError, match="'00/00/0000' is not a date"):
        read_export(path, "salesforce:Account")


def test_files_named_by_labels_plan_as_files_named_by_api_names(tmp_path: Path) -> None:
    """A HubSpot export (property labels) and a Salesforce report (field labels): the plan
    reads the values, so Salesforce's name is kept and HubSpot's phone offered to it; never
    a "blank" side overwritten."""
    from recon.config import ReconConfig
    from recon.match import run_match
    from recon.plan import build_plan
    from recon.store import open_store

    hs = tmp_path / "hs.csv"
    hs.write_text(
        "Record ID,Company name,Company Domain Name,Phone Number,City,Last Modified Date\n"
        "101,Acme Corporation,acme.com,+49 30 1234567,Berlin,2026-01-10 12:00\n"
    )
    sf = tmp_path / "sf_report.csv"
    sf.write_text(
        '"Account ID","Account Name","Website","Phone","Billing City"\n'
        '"0015g0000000001","Acme Corp","www.acme.com","","Munich"\n'
    )
    db = open_store(tmp_path / "recon.db")
    load_export(db, hs, "hubspot:companies")
    load_export(db, sf, "salesforce:Account")
    data = json.loads(
        db.execute("select data from snapshots where source = 'salesforce'").fetchone()[0]
    )
    assert data["Name"] == "Acme Corp" and data["BillingCity"] == "Munich" and data["Id"]
    cfg = ReconConfig()
    run_match(db, cfg)
    items = build_plan(db, cfg, dry_run=True).items
    writes = {
        (i["system"], i["field"]): (i["before"], i["after"])
        for i in items
        if i["action"] == "update"
    }
    assert writes[("hubspot", "name")] == ("Acme Corporation", "Acme Corp")
    assert writes[("hubspot", "city")] == ("Berlin", "Munich")
    assert writes[("salesforce", "Phone")] == (None, "+49 30 1234567")
    assert ("salesforce", "Name") not in writes and ("salesforce", "BillingCity") not in writes


def test_a_file_of_fewer_columns_or_no_times_does_not_blank_or_overwrite_the_store(
    tmp_path: Path, fresh_db
) -> None:
    """A file with a few columns updates those and keeps the rest; a row without a time (or
    with one the store has newer) leaves a stored record with a time alone, and says so."""
    from recon.pull import load_file

    full = tmp_path / "full.csv"
    full.write_text(
        "Record ID,Company name,Company Domain Name,Phone Number,Last Modified Date\n"
        "101,Acme,acme.com,+49 30 1234567,2026-01-10 12:00\n"
        "102,Beta,beta.io,+1 555 0100,2026-01-10 12:00\n"
    )
    load_file(fresh_db, full, "hubspot:companies")
    names = tmp_path / "names.csv"  # newer, two columns only
    names.write_text("Record ID,Company name,Last Modified Date\n101,Acme AG,2026-02-01 09:00\n")
    assert load_file(fresh_db, names, "hubspot:companies").changed == {"hubspot:companies": 1}
    row = fresh_db.execute(
        "select name, domain, phone, modified_at, data from snapshots where record_id = '101'"
    ).fetchone()
    assert row[:4] == ("Acme AG", "acme.com", "+49 30 1234567", "2026-02-01T09:00:00.000Z")
    assert json.loads(row[4]) == {
        "hs_object_id": "101", "name": "Acme AG", "domain": "acme.com",
        "phone": "+49 30 1234567", "hs_lastmodifieddate": "2026-02-01 09:00",
    }  # fmt: skip
    timeless = tmp_path / "timeless.csv"
    timeless.write_text("Record ID,Company name\n101,Old Name\n102,Beta Old\n103,New Co\n")
    older = tmp_path / "older.csv"
    older.write_text("Record ID,Company name,Last Modified Date\n102,Beta 2025,2025-06-01 10:00\n")
    for path, field in ((timeless, "no_time"), (older, "older")):
        stats: dict = {}
        load_export(fresh_db, path, "hubspot:companies", stats=stats)
        assert stats[field] == (2 if field == "no_time" else 1)
    assert dict(fresh_db.execute("select record_id, name from snapshots").fetchall()) == {
        "101": "Acme AG", "102": "Beta", "103": "New Co",
    }  # fmt: skip
    assert load_file(fresh_db, full, "hubspot:companies").changed == {"hubspot:companies": 0}


@pytest.mark.parametrize(
    ("header", "row", "as_", "says"),
    [
        ("Record ID,First Name,Email,Company Name", "501,Anna,a@acme.com,Acme", "hubspot:companies", "contacts export"),
        ("Contact ID,First Name,Last Name,Account ID,Account Name", "0035g0000000001,A,B,0015g0000000001,Acme", "salesforce:Account", "contacts export"),
        ("Record ID,Company name,Company Domain Name", "101,Acme,acme.com", "hubspot:contacts", "companies export"),
    ],
)  # fmt: skip
def test_a_file_of_the_other_object_is_refused(
    tmp_path: Path, header: str, row: str, as_: str, says: str
) -> None:
    path = tmp_path / "f.csv"
    path.write_text(f"{header}\n{row}\n")
    with pytest.raises(FileFormatError, match=says) as err:
        read_export(path, as_)
    assert "row 1" in str(err.value) and "--as" in str(err.value)


def test_one_salesforce_record_under_its_15_and_18_character_id_is_a_repeated_id(
    tmp_path: Path,
) -> None:
    path = tmp_path / "d.csv"
    path.write_text(
        "Id,Name\n0015g0000000001,Acme\n0015g0000000001AAA,Acme Zero\n0015g0000000002,B\n"
    )
    with pytest.raises(FileFormatError, match=r"appears more than once.*row 3"):
        read_export(path, "salesforce:Account")


def test_spreadsheet_mangled_hubspot_ids_are_named_as_such_even_when_they_collide(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.csv"
    path.write_text("Record ID,Company name\n1.00000E+10,A\n1.00000E+10,B\n")
    with pytest.raises(FileFormatError, match="format the column as Text"):
        read_export(path, "hubspot:companies")


def test_a_contacts_and_leads_report_takes_each_rows_own_id(tmp_path: Path) -> None:
    path = tmp_path / "cl.csv"
    path.write_text(
        "Contact ID,Lead ID,First Name,Last Name,Email\n"
        "0035g0000000001,,Ann,Lee,ann@x.org\n,00Q5g0000000002,Ben,Ng,ben@y.org\n"
    )
    frame = read_export(path, "salesforce:contacts")
    assert frame.select("object", "record_id").rows() == [
        ("Contact", "0035g0000000001AAA"),
        ("Lead", "00Q5g0000000002EAA"),
    ]
    assert "Contact ID or Lead ID" not in json.loads(frame["data"][0])


def test_filters_find_standard_labels_without_a_stored_schema(tmp_path: Path, fresh_db) -> None:
    """A file-only store has no schema: HubSpot's and Salesforce's standard labels still name
    the filtered fields (`Lead Status` is `hs_lead_status`, and a Lead's `Status`)."""
    from recon.config import load_config
    from recon.pull import load_file

    cfg = load_config(
        None,
        overrides={"pull": {"contacts_require_email": False, "filters": [
            {"source": "hubspot", "object": "contacts", "field": "hs_lead_status", "op": "in",
             "value": ["OPEN", "NEW"]},
            {"source": "salesforce", "object": "Lead", "field": "Status", "op": "neq",
             "value": "Closed - Not Converted"},
        ]}},
    )  # fmt: skip
    hs = tmp_path / "hs.csv"
    hs.write_text("Record ID,First Name,Lead Status\n1,Ann,OPEN\n2,Ben,UNQUALIFIED\n")
    sf = tmp_path / "sf.csv"
    sf.write_text(
        "Lead ID,Last Name,Company,Lead Status\n00Q5g0000000001,Lee,A,Open - Not Contacted\n"
        "00Q5g0000000002,Ng,B,Closed - Not Converted\n"
    )
    assert load_file(fresh_db, hs, "hubspot:contacts", cfg=cfg).summary["out_of_scope"] == 1
    assert load_file(fresh_db, sf, "salesforce:Lead", cfg=cfg).summary["out_of_scope"] == 1
    assert fresh_db["snapshots"].count == 2


def test_a_salesforce_report_footer_is_left_out(tmp_path: Path, caplog) -> None:
    path = tmp_path / "report.csv"
    path.write_text(
        '"Account ID","Account Name","Billing City"\n'
        '"0015g0000000001","Acme","Berlin"\n"0015g0000000002","Beta","Paris"\n'
        '\n"Grand Totals (2 records)"\n'
        '\n"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."\n'
        '"Confidential Information - Do Not Distribute"\n"Generated By:  Ana Silva  11/30/2026 2:05 PM"\n'
        '"Acme Holdings"\n'
    )
    with caplog.at_level("WARNING"):
        frame = read_export(path, "salesforce:Account")
    assert frame["name"].to_list() == ["Acme", "Beta"]
    assert "footer" in caplog.text
    # a data row that only looks like one is never cut
    path.write_text('"Id","Name"\n"0015g0000000001","Grand Totals (3 records)"\n')
    assert read_export(path, "salesforce:Account")["name"].to_list() == ["Grand Totals (3 records)"]


def test_a_salesforce_report_footer_is_left_out_of_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "report.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    for row in (
        ["Account ID", "Account Name"], ["0015g0000000001", "Acme"], [None, None],
        ["Grand Totals (1 records)", None], ["Copyright (c) 2000-2026 salesforce.com, inc.", None],
        ["Generated By: Ana Silva", None],
    ):  # fmt: skip
        sheet.append(row)
    book.save(path)
    assert read_export(path, "salesforce:Account")["name"].to_list() == ["Acme"]


def test_a_workbook_saved_under_a_csv_name_is_read_as_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    book = openpyxl.Workbook()
    book.active.append(["Id", "Name"])
    book.active.append(["0015g0000000001", "Acme"])
    book.save(path)
    assert read_export(path, "salesforce:Account")["name"].to_list() == ["Acme"]


def test_a_field_a_file_lacks_is_unknown_to_the_plan_not_blank(tmp_path: Path) -> None:
    """A Salesforce file of a few columns says nothing of the fields it lacks: the plan does
    not write HubSpot's values over them as if Salesforce held none."""
    result = _plan_of_files(
        tmp_path,
        ("Record ID,Company name,Company Domain Name,Phone Number,City,Last Modified Date\n"
         "101,Acme Corporation,acme.com,+49 30 1234567,Berlin,2026-01-10 12:00\n",
         "hubspot:companies"),
        ("Id,Name,Website\n0015g0000000001,Acme Corp,www.acme.com\n", "salesforce:Account"),
    )  # fmt: skip
    writes = {(i["system"], i["field"]) for i in result.items if i["action"] == "update"}
    assert ("hubspot", "name") in writes  # what both files hold is compared
    assert not {f for s, f in writes if s == "salesforce"} & {"Phone", "BillingCity"}
    assert result.skipped.get("field_not_read", 0) >= 2


def test_the_scope_judges_a_file_row_with_what_the_store_holds(tmp_path: Path, fresh_db) -> None:
    """A file of job titles says nothing of the contacts' emails: stored contacts with an
    email stay in scope (contacts_require_email), and keep their email."""
    from recon.config import load_config
    from recon.pull import load_file

    cfg = load_config(None)
    full = tmp_path / "full.csv"
    full.write_text(
        "Record ID,First Name,Email,Last Modified Date\n115,Sam,s@west.co.uk,2026-10-01 10:00\n"
    )
    load_file(fresh_db, full, "hubspot:contacts", cfg=cfg)
    titles = tmp_path / "titles.csv"
    titles.write_text("Record ID,Job Title,Last Modified Date\n115,CTO,2026-11-01 10:00\n")
    assert load_file(fresh_db, titles, "hubspot:contacts", cfg=cfg).summary["out_of_scope"] == 0
    row = fresh_db.execute("select email, archived, data from snapshots").fetchone()
    assert row[:2] == ("s@west.co.uk", 0) and json.loads(row[2])["jobtitle"] == "CTO"


def test_owner_and_lookup_columns_by_label_are_names_not_ids(tmp_path: Path, fresh_db) -> None:
    """HubSpot exports an owner by name; a Salesforce report a lookup ("Account") by name:
    such a column is not stored under the id field (the plan would write a name as an id)."""
    fresh_db["schemas"].insert(
        {"source": "salesforce", "object": "Contact", "fields": json.dumps([
            {"name": "AccountId", "label": "Account", "type": "reference"},
            {"name": "Title", "label": "Title", "type": "string"},
        ])},
        pk=("source", "object"),
    )  # fmt: skip
    hs = tmp_path / "hs.csv"
    hs.write_text("Record ID,Company name,Company owner\n1,Jackson,Maria Schmidt\n")
    sf = tmp_path / "sf.csv"
    sf.write_text(
        "Contact ID,Last Name,Email,Account,Title\n0035g0000000002,Brown,a@b.com,Brooks & Wagner,CTO\n"
    )
    load_export(fresh_db, hs, "hubspot:companies")
    load_export(fresh_db, sf, "salesforce:Contact")
    data = dict(fresh_db.execute("select source, data from snapshots").fetchall())
    hs_data, sf_data = json.loads(data["hubspot"]), json.loads(data["salesforce"])
    assert "hubspot_owner_id" not in hs_data and hs_data["Company owner"] == "Maria Schmidt"
    assert "AccountId" not in sf_data and sf_data["Account"] == "Brooks & Wagner"
    assert sf_data["Title"] == "CTO"


def test_two_columns_for_one_field_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("Account Name,ID,NAME\nLabel Name,0015g0000000001,Api Name\n")
    with pytest.raises(
        FileFormatError, match="'Account Name' and 'NAME' both stand for the field 'Name'"
    ):
        read_export(path, "salesforce:Account")


def test_a_time_in_the_future_does_not_make_an_old_export_newer(tmp_path: Path, fresh_db) -> None:
    """A report's local time read as UTC can lie ahead of now: it is not used, so the export
    does not overwrite what a later pull stored."""
    from datetime import UTC, datetime, timedelta

    from recon.pull import load_file

    past = tmp_path / "a.csv"
    past.write_text(
        "Id,Name,LastModifiedDate\n0015g0000000005,Lake Path API,2026-01-01T10:00:00Z\n"
    )
    load_file(fresh_db, past, "salesforce:Account")
    ahead = (datetime.now(UTC) + timedelta(hours=9)).strftime("%Y-%m-%d %H:%M")
    report = tmp_path / "report.csv"
    report.write_text(f"Id,Name,LastModifiedDate\n0015g0000000005,Lake Path (report),{ahead}\n")
    stats: dict = {}
    load_export(fresh_db, report, "salesforce:Account", stats=stats)
    assert stats["no_time"] == 1
    assert fresh_db.execute("select name from snapshots").fetchone()[0] == "Lake Path API"


def test_a_time_days_ahead_is_named_a_date_problem_not_a_time_zone(
    tmp_path: Path, fresh_db, caplog
) -> None:
    """A date months ahead is no report's local time: the note said export times in UTC."""
    from datetime import UTC, datetime, timedelta

    from recon.pull import load_file

    later = (datetime.now(UTC) + timedelta(days=40)).strftime("%Y-%m-%d %H:%M")
    path = tmp_path / "a.csv"
    path.write_text(f"Id,Name,LastModifiedDate\n0015g0000000005,Lake Path,{later}\n")
    with caplog.at_level("WARNING", logger="recon.sources.files"):
        load_file(fresh_db, path, "salesforce:Account")
    said = caplog.text
    assert "1 row(s) were last modified after today (the latest " + later[:10] in said
    assert "local time" not in said


def test_footer_variants_and_dotted_times() -> None:
    from recon.sources.files import _strip_report_footer

    for foot in (b'"Grand Totals (1,234 records)"', "\"Gesamtsummen (2 Datensätze)\"".encode(),
                 b'"Copyright (c) 2000-2026 Salesforce, Inc. All rights reserved."'):  # fmt: skip
        data = b'"Id","Name"\n"1","A"\n\n' + foot + b"\n"
        assert _strip_report_footer(Path("r.csv"), data) == b'"Id","Name"\n"1","A"\n'
    got = file_times(pl.Series(["2026-11-30 14.05", "2026-11-30 9.30.15"]))[0].to_list()
    assert got == ["2026-11-30T14:05:00.000Z", "2026-11-30T09:30:15.000Z"]


def test_a_file_value_does_not_inherit_the_pulled_values_field_time(tmp_path: Path) -> None:
    """A pull stored `industry` with its field time; a later export changes it: the old time
    no longer dates the new value (two_way would take Salesforce's older value as newer)."""
    from recon.config import ReconConfig
    from recon.match import run_match
    from recon.plan import build_plan
    from recon.sources.hs_map import map_company
    from recon.store import open_store

    db = open_store(tmp_path / "recon.db")
    api = map_company({"id": "101", "properties": {
        "name": "Acme Corporation", "domain": "acme.com", "industry": "Retail",
        "hs_lastmodifieddate": "2025-06-01T00:00:00.000Z",
        "propertiesWithHistory": {"industry": [{"value": "Retail", "timestamp": "2025-01-01T00:00:00.000Z"}]}}})  # fmt: skip
    db["snapshots"].insert({**api, "origin": "api", "run_id": "r0"})
    db["snapshots"].insert(
        {"source": "salesforce", "object": "Account", "record_id": "0015g0000000001AAA",
         "name": "Acme Corporation", "domain": "acme.com", "website": "acme.com",
         "modified_at": "2025-09-01T00:00:00.000Z", "archived": 0, "origin": "api", "run_id": "r0",
         "data": json.dumps({"Id": "0015g0000000001AAA", "Name": "Acme Corporation",
                             "Website": "acme.com", "Industry": "Energy"})}
    )  # fmt: skip
    f = tmp_path / "hs.csv"
    f.write_text(
        "Record ID,Company name,Industry,Last Modified Date\n101,Acme Corporation,Technology,2026-01-10T12:00:00Z\n"
    )
    load_export(db, f, "hubspot:companies")
    cfg = ReconConfig.model_validate({"mapping": {"default_rule": "two_way"}})
    run_match(db, cfg)
    items = [
        i
        for i in build_plan(db, cfg, dry_run=True).items
        if i.get("field") in ("industry", "Industry")
    ]
    assert [(i["system"], i["after"], i["reason"]["why"]) for i in items] == [
        ("salesforce", "Technology", "hubspot_newer")
    ]


def test_a_derived_field_a_file_lacks_is_unknown_too(tmp_path: Path) -> None:
    """A HubSpot contacts file without a Company column says nothing of the contact's company:
    the Account's name is not written over it as if it were blank."""
    from recon.config import ReconConfig
    from recon.match import run_match
    from recon.plan import build_plan
    from recon.store import open_store

    files = {
        "hs.csv": ("Record ID,First Name,Last Name,Email,Last Modified Date\n"
                   "201,Ana,Silva,ana@acme.com,2026-01-10 12:00\n", "hubspot:contacts"),
        "acc.csv": ("Id,Name,Website\n0015g0000000001,Acme Corp,www.acme.com\n", "salesforce:Account"),
        "con.csv": ("Id,First Name,Last Name,Email,Account ID\n"
                    "0035g0000000001,Ana,Silva,ana@acme.com,0015g0000000001\n", "salesforce:Contact"),
    }  # fmt: skip
    db = open_store(tmp_path / "recon.db")
    for name, (text, as_) in files.items():
        (tmp_path / name).write_text(text)
        load_export(db, tmp_path / name, as_)
    run_match(db, ReconConfig())
    result = build_plan(db, ReconConfig(), dry_run=True)
    assert not [i for i in result.items if i.get("field") == "company"]
    assert result.skipped["field_not_read"] >= 1


def test_excel_s_sep_line_names_the_separator(tmp_path: Path) -> None:
    """Excel's "sep=;" first line was read as the header ("column 2 of the header has no
    name"): it names the separator, and the header follows; rows keep their line numbers."""
    path = tmp_path / "sep.csv"
    path.write_text(
        "sep=;\nRecord ID;Company name;Website\n1;Acme, Inc;acme.com\n2;B;b.com\n",
        encoding="utf-8",
    )
    frame = read_export(path, "hubspot:companies")
    assert frame.select("record_id", "name").rows() == [("1", "Acme, Inc"), ("2", "B")]
    path.write_text("sep=\t\nRecord ID\tCompany name\n1\tA, Inc\n", encoding="utf-8")
    assert read_export(path, "hubspot:companies").select("record_id", "name").rows() == [
        ("1", "A, Inc")
    ]  # a tab is a separator too (it was stripped as blank)
    path.write_text("sep=;\nRecord ID;Company name\n1;A\n;B\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="the record id is blank") as err:
        read_export(path, "hubspot:companies")
    assert err.value.row == 4


def test_trailing_empty_columns_of_a_csv_are_dropped(tmp_path: Path) -> None:
    """Excel leaves empty columns at the end ("Record ID,Company name,,,"): the xlsx reader
    dropped them, the csv reader refused the file ("column 3 of the header has no name")."""
    path = tmp_path / "co.csv"
    path.write_text("Record ID,Company name,,\n7,Acme,,\n8,Beta,,\n", encoding="utf-8")
    frame = read_export(path, "hubspot:companies")
    assert frame["record_id"].to_list() == ["7", "8"]
    assert json.loads(frame["data"][0]) == {"hs_object_id": "7", "name": "Acme"}
    # a value under a column without a name is refused: where it is, and what to do
    path.write_text("Record ID,Company name,,\n7,Acme,,\n8,Beta,,x\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="column 4 has values but no name") as err:
        read_export(path, "hubspot:companies")
    assert "row 3" in str(err.value)
    # the same in a workbook: its cells under no header were dropped without a word
    book = write_xlsx(
        tmp_path / "co.xlsx",
        {"Sheet1": [["Record ID", "Company name"], ["7", "Acme"], ["8", "Beta", None, "x"]]},
    )
    with pytest.raises(FileFormatError, match="column 4 has values but no name") as err:
        read_export(book, "hubspot:companies")
    assert "row 3" in str(err.value)


def test_numbers_with_a_decimal_comma_are_stored_as_the_api_writes_them(tmp_path: Path) -> None:
    """A European report writes "1.200" for twelve hundred: stored as text, the plan read 1.2
    and proposed writing it over HubSpot's employees. A file's numbers are read in its locale."""
    path = tmp_path / "acc.csv"
    path.write_bytes(
        "Account ID;Account Name;Employees;Annual Revenue;Phone\n"
        "0015g0000000001;Müller GmbH;1.200;15.488.000,00;030.123.456\n"
        "0015g0000000002;Zeta AG;87;676.000;\n".encode("cp1252")
    )
    rows = [json.loads(d) for d in read_export(path, "salesforce:Account")["data"].to_list()]
    assert [(r["NumberOfEmployees"], r["AnnualRevenue"]) for r in rows] == [
        ("1200", "15488000.00"),
        ("87", "676000"),
    ]
    assert rows[0]["Phone"] == "030.123.456"  # no number field: as written
    # a decimal point file keeps its numbers as written (the plan reads 1,200 as 1200)
    path.write_text(
        "Account ID,Account Name,Employees,Annual Revenue\n"
        '0015g0000000001,Acme,"1,200",15488000.50\n0015g0000000002,Beta,1.5,\n',
        encoding="utf-8",
    )
    rows = [json.loads(d) for d in read_export(path, "salesforce:Account")["data"].to_list()]
    assert [r["NumberOfEmployees"] for r in rows] == ["1,200", "1.5"]


def test_a_hubspot_export_writes_option_labels_and_the_store_keeps_internal_values(
    tmp_path: Path,
) -> None:
    """HubSpot exports write an option by its label; the API (and so the plan, the ranking of
    lifecycle stages, the option mappings) knows its internal value. With no schema stored,
    HubSpot's standard options are known; a value already internal and unknown text stay."""
    data = _one_json(
        tmp_path,
        "Record ID,Email,Lifecycle Stage,Lead Status,Original Source,Industry\n"
        "7,a@b.co,Marketing Qualified Lead,attempted to contact,Organic Social,Computer Software\n",
        "hubspot:contacts",
        "data",
    )
    assert data["lifecyclestage"] == "marketingqualifiedlead"
    assert data["hs_lead_status"] == "ATTEMPTED_TO_CONTACT"
    assert data["hs_analytics_source"] == "SOCIAL_MEDIA"
    assert data["industry"] == "Computer Software"  # no schema: its options are not guessed
    data = _one_json(
        tmp_path,
        "Record ID,Company name,Lifecycle Stage,Type\n101,Acme,customer,Vendor\n",
        "hubspot:companies",
        "data",
    )
    assert data == {
        "hs_object_id": "101",
        "name": "Acme",
        "lifecyclestage": "customer",
        "type": "VENDOR",
    }


def test_a_stored_schema_turns_every_picklist_label_of_a_file_into_its_value(
    tmp_path: Path, fresh_db, caplog
) -> None:
    """Custom dropdowns and multiple checkboxes (HubSpot) and translated picklists (a
    Salesforce report in German): each label, of each option of a multi-select too, is stored
    as its value; a label of no option is kept as written (the plan reports it)."""
    import logging

    def options(*pairs: tuple[str, str], key: str = "options") -> dict[str, Any]:
        return {key: [{"label": label, "value": value} for value, label in pairs]}

    fresh_db["schemas"].insert_all(
        [
            {"source": "hubspot", "object": "contacts", "fields": json.dumps([
                {"name": "tier", "label": "Tier", "type": "enumeration", "fieldType": "select",
                 **options(("t1", "Gold"), ("t2", "Silver"))},
                {"name": "products", "label": "Products", "type": "enumeration",
                 "fieldType": "checkbox", **options(("p_a", "Mower"), ("p_b", "Hedge Trimmer"))},
                {"name": "vip", "label": "VIP", "type": "enumeration",
                 "fieldType": "booleancheckbox", **options(("true", "Yes"), ("false", "No"))},
            ])},
            {"source": "salesforce", "object": "Lead", "fields": json.dumps([
                {"name": "Status", "label": "Status", "type": "picklist",
                 **options(("Open", "Offen"), ("Working", "In Bearbeitung"), ("Key", "Großkunde"),
                           key="picklistValues")},
                {"name": "Interests__c", "label": "Interessen", "type": "multipicklist",
                 **options(("Golf", "Golf"), ("Sailing", "Segeln"), key="picklistValues")},
            ])},
        ],
        pk=("source", "object"),
    )  # fmt: skip
    hs = tmp_path / "hs.csv"
    hs.write_text(
        "Record ID,Email,Tier,Products,VIP\n"
        "1,a@x.org,Gold,Mower;hedge trimmer,Yes\n"
        "2,b@x.org,t2,p_a,No\n"
        "3,c@x.org,Platinum,,\n",
        encoding="utf-8",
    )
    sf = tmp_path / "sf.csv"
    sf.write_text(
        "Lead ID,Nachname,Status,Interessen\n00Q5g0000000001,Berg,In Bearbeitung,Segeln;Golf\n"
        "00Q5g0000000002,Alt,Großkunde,\n00Q5g0000000003,Neu,GROSSKUNDE,\n",
        encoding="utf-8",
    )
    with caplog.at_level(logging.INFO, logger="recon.sources.files"):
        load_export(fresh_db, hs, "hubspot:contacts")
        load_export(fresh_db, sf, "salesforce:Lead")
    stored = {
        rid: json.loads(d)
        for rid, d in fresh_db.execute("select record_id, data from snapshots").fetchall()
    }
    assert [(stored[r]["tier"], stored[r]["products"]) for r in "123"] == [
        ("t1", "p_a;p_b"), ("t2", "p_a"), ("Platinum", None),
    ]  # fmt: skip
    # a single checkbox is a boolean: stored as the API writes it
    assert [stored[r].get("vip") for r in "123"] == ["true", "false", None]
    lead, *keys = (d for rid, d in sorted(stored.items()) if rid.startswith("00Q"))
    assert lead["Status"] == "Working" and lead["Interests__c"] == "Sailing;Golf"
    # ß: case folded it is "ss", lower case it stays ß; either spelling is the option's label
    assert [k["Status"] for k in keys] == ["Key", "Key"]
    assert "column 'Tier': 1 value(s) stored as the API writes them" in caplog.text
    assert "column 'Products': 1 value(s) stored" in caplog.text


def test_option_labels_from_a_hubspot_export_plan_no_spurious_updates(tmp_path: Path) -> None:
    """A HubSpot export's "In Progress" is the API's IN_PROGRESS, which the default mapping
    pairs with Salesforce's "Working - Contacted": the linked pair agrees, nothing is planned."""
    items = _plan_of_files(
        tmp_path,
        ("Record ID,First Name,Last Name,Email,Job Title,Lead Status,Last Modified Date\n"
         "7,Ann,Berg,ann@berg.no,CEO,In Progress,2026-01-10 12:00\n", "hubspot:contacts"),
        ("Lead ID,First Name,Last Name,Email,Company,Title,Lead Status\n"
         "00Q5g0000000001,Ann,Berg,ann@berg.no,Berg AS,Chief Executive,Working - Contacted\n",
         "salesforce:Lead"),
    ).items  # fmt: skip
    fields = {(i["system"], i["field"]) for i in items if i.get("field")}
    assert ("hubspot", "jobtitle") in fields  # the pair was compared
    assert not fields & {("hubspot", "hs_lead_status"), ("salesforce", "Status")}


def test_checkboxes_written_yes_or_1_are_stored_as_the_api_writes_them(tmp_path: Path) -> None:
    """A report writes a checkbox as Yes/No or 1/0: a merge's consent check read "Yes" as not
    opted out and planned to delete the opted-out copy into a subscribed survivor. Consent
    flags and mapped checkboxes are stored as true/false."""
    data = _one_json(
        tmp_path,
        "Contact ID,Last Name,Email Opt Out,Do Not Call,HasOptedOutOfFax\n"
        "0035g0000000001,Holm,Yes,1,nein\n",
        "salesforce:Contact",
        "data",
    )
    assert (data["HasOptedOutOfEmail"], data["DoNotCall"], data["HasOptedOutOfFax"]) == (
        "true", "true", "false",
    )  # fmt: skip
