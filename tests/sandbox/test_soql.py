"""SOQL parser and evaluator of the Salesforce emulator, driven directly (no HTTP)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from recon.sandbox import sf_query
from recon.sandbox.salesforce import load_records
from recon.sandbox.sf_common import SfError
from recon.sandbox.soql import date_literal_range, parse, unquote
from recon.sandbox.state import SandboxState

# ---------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("soql", "obj", "paths"),
    [
        ("SELECT Id FROM Account", "Account", ["Id"]),
        ("select id, name from account", "Account", ["Id", "Name"]),
        ("SELECT Id, Account.Name, Owner.Email FROM Contact", "Contact", ["Id", "Account.Name", "Owner.Email"]),
        ("SELECT Account.Owner.Email FROM Contact", "Contact", ["Account.Owner.Email"]),
        ("SELECT Account.Name FROM Account", "Account", ["Name"]),
        ("SELECT Campaign.Name, Lead.Email, Contact.Account.Name FROM CampaignMember", "CampaignMember",
         ["Campaign.Name", "Lead.Email", "Contact.Account.Name"]),
        ("SELECT Username, Email FROM User", "User", ["Username", "Email"]),
        ("SELECT Recon_Key__c, HubSpot_Id__c FROM Lead", "Lead", ["Recon_Key__c", "HubSpot_Id__c"]),
    ],
)  # fmt: skip
def test_select_lists_resolve_to_canonical_paths(soql: str, obj: str, paths: list[str]) -> None:
    q = parse(soql)
    assert q.object.name == obj
    assert [f.path for f in q.fields] == paths


@pytest.mark.parametrize(
    "literal",
    [
        "2024-01-01T08:00:00Z",
        "2024-01-01T08:00:00.000Z",
        "2024-01-01T08:00:00+00:00",
        "2024-01-01T08:00:00.000+00:00",
        "2024-01-01T00:00:00-08:00",
        "2024-01-01T00:00:00.000-08:00",
        "2024-01-01T09:00:00+01:00",
    ],
)
def test_every_datetime_literal_form_means_the_same_instant(literal: str) -> None:
    q = parse(f"SELECT Id FROM Account WHERE SystemModstamp >= {literal}")
    assert q.where[3] == "2024-01-01T08:00:00.000Z"


@pytest.mark.parametrize(
    ("where", "shape"),
    [
        ("Name = 'a' AND Name = 'b'", "and"),
        ("Name = 'a' OR Name = 'b' OR Name = 'c'", "or"),
        ("(Name = 'a' AND Name = 'b') OR Name = 'c'", "or"),
        ("NOT Name = 'a'", "not"),
        ("NOT (Name = 'a' OR Website = null)", "not"),
        ("Name IN ('a', 'b')", "in"),
        ("Name NOT IN ('a')", "in"),
        ("Name LIKE 'ac%'", "like"),
        ("NumberOfEmployees >= 10", "cmp"),
        ("AnnualRevenue < 1.5", "cmp"),
        ("IsDeleted = false", "cmp"),
        ("CreatedDate = LAST_N_DAYS:30", "cmp"),
        ("LastActivityDate > 2024-01-01", "cmp"),
        ("Id = '001R0000005hDFY'", "cmp"),
    ],
)
def test_where_clauses_parse(where: str, shape: str) -> None:
    assert parse(f"SELECT Id FROM Account WHERE {where}").where[0] == shape


def test_clauses_limit_offset_order_and_count() -> None:
    q = parse("SELECT Id FROM Lead ORDER BY Email DESC NULLS LAST, Id LIMIT 5 OFFSET 10")
    assert [(r.path, desc, nf) for r, desc, nf in q.order] == [
        ("Email", True, False),
        ("Id", False, True),
    ]
    assert (q.limit, q.offset) == (5, 10)
    assert parse("SELECT COUNT() FROM Lead").count
    q = parse("SELECT COUNT(Id) n FROM Lead")
    assert (q.count_field.path if q.count_field else None, q.count_alias) == ("Id", "n")


def test_fifteen_character_ids_get_their_checksum() -> None:
    assert (
        parse("SELECT Id FROM Account WHERE Id = '001R0000005hDFY'").where[3]
        == "001R0000005hDFYIA2"
    )


@pytest.mark.parametrize(
    ("soql", "code", "text"),
    [
        ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY", "unexpected token: '<EOF>'"),
        ("SELECT FROM Account", "MALFORMED_QUERY", "unexpected token"),
        ("SELECT Id Account", "MALFORMED_QUERY", "unexpected token"),
        (
            "SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'",
            "MALFORMED_QUERY",
            "'OR'",
        ),
        (
            "SELECT Id FROM Account WHERE Name = 'unterminated",
            "MALFORMED_QUERY",
            "unexpected token",
        ),
        (
            "SELECT Id FROM Account GROUP BY Name",
            "MALFORMED_QUERY",
            "must be grouped or aggregated: Id",
        ),
        (
            "SELECT Id FROM Account WHERE SystemModstamp > 2024-01-01T00:00:00+0000",
            "MALFORMED_QUERY",
            "unexpected",
        ),
        (
            "SELECT Id FROM Account WHERE SystemModstamp > 2024-01-01T00:00:00",
            "MALFORMED_QUERY",
            "unexpected",
        ),
        ("SELECT Id FROM Account LIMIT x", "MALFORMED_QUERY", "unexpected token"),
        ("SELECT COUNT(), Name FROM Account", "MALFORMED_QUERY", "COUNT()"),
        ("SELECT COUNT() FROM Account ORDER BY Name", "MALFORMED_QUERY", "ORDER BY"),
        (
            "SELECT Id, Foo FROM Account",
            "INVALID_FIELD",
            "No such column 'Foo' on entity 'Account'",
        ),
        ("SELECT Id FROM Account WHERE Foo__c = 'x'", "INVALID_FIELD", "No such column 'Foo__c'"),
        ("SELECT Foo.Name FROM Contact", "INVALID_FIELD", "Didn't understand relationship 'Foo'"),
        (
            "SELECT Account.Foo FROM Contact",
            "INVALID_FIELD",
            "No such column 'Foo' on entity 'Account'",
        ),
        (
            "SELECT Id FROM Opportunity",
            "INVALID_TYPE",
            "sObject type 'Opportunity' is not supported",
        ),
        (
            "SELECT Id FROM Account WHERE NumberOfEmployees = '5'",
            "INVALID_FIELD",
            "must be of type integer",
        ),
        ("SELECT Id FROM Account WHERE Name = 5", "INVALID_FIELD", "must be of type string"),
        (
            "SELECT Id FROM Account WHERE CreatedDate > 2024-01-01",
            "INVALID_FIELD",
            "must be of type dateTime",
        ),
        (
            "SELECT Id FROM Account WHERE CreatedDate > '2024-01-01T00:00:00Z'",
            "INVALID_FIELD",
            "dateTime",
        ),
        (
            "SELECT Id FROM Account WHERE LastActivityDate > 2024-01-01T00:00:00Z",
            "INVALID_FIELD",
            "type date",
        ),
        ("SELECT Id FROM Account WHERE IsDeleted = 'true'", "INVALID_FIELD", "type boolean"),
        ("SELECT Id FROM Account WHERE NumberOfEmployees LIKE '5%'", "INVALID_FIELD", "LIKE"),
        ("SELECT Id FROM Account WHERE Description = 'x'", "INVALID_FIELD", "can not be filtered"),
        (
            "SELECT Id FROM Account WHERE Id = 'abc'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "invalid ID field: abc",
        ),
        ("SELECT Id FROM Account OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", "2000"),
        ("SELECT Id, Id FROM Account", "DUPLICATE_FIELD", "duplicate field selected: Id"),
    ],
)
def test_bad_queries_get_salesforce_errors(soql: str, code: str, text: str) -> None:
    with pytest.raises(SfError) as info:
        parse(soql)
    assert (info.value.status, info.value.code) == (400, code)
    assert text in info.value.message


def test_error_messages_point_at_the_offending_column() -> None:
    with pytest.raises(SfError) as info:
        parse("SELECT Id, Foo FROM Account")
    assert info.value.message.startswith(
        "\nSELECT Id, Foo FROM Account\n           ^\nERROR at Row:1:Column:12\n"
    )


@pytest.mark.parametrize(
    ("literal", "start", "end"),
    [
        ("TODAY", date(2024, 3, 13), date(2024, 3, 14)),
        ("YESTERDAY", date(2024, 3, 12), date(2024, 3, 13)),
        ("TOMORROW", date(2024, 3, 14), date(2024, 3, 15)),
        ("LAST_N_DAYS:7", date(2024, 3, 6), date(2024, 3, 14)),
        ("NEXT_N_DAYS:2", date(2024, 3, 14), date(2024, 3, 16)),
        ("N_DAYS_AGO:3", date(2024, 3, 10), date(2024, 3, 11)),
        ("THIS_WEEK", date(2024, 3, 10), date(2024, 3, 17)),
        ("LAST_WEEK", date(2024, 3, 3), date(2024, 3, 10)),
        ("THIS_MONTH", date(2024, 3, 1), date(2024, 4, 1)),
        ("LAST_MONTH", date(2024, 2, 1), date(2024, 3, 1)),
        ("LAST_N_MONTHS:14", date(2023, 1, 1), date(2024, 3, 1)),
        ("THIS_YEAR", date(2024, 1, 1), date(2025, 1, 1)),
        ("LAST_N_YEARS:2", date(2022, 1, 1), date(2024, 1, 1)),
        ("last_90_days", date(2023, 12, 14), date(2024, 3, 14)),
    ],
)
def test_date_literal_ranges(literal: str, start: date, end: date) -> None:
    assert date_literal_range(literal, date(2024, 3, 13)) == (start, end)  # a Wednesday


def test_date_literal_of_many_days_and_out_of_range() -> None:
    """Ten years of days is a range like any other (only the literal asked for is built:
    ``LAST_N_YEARS:3650`` would be before year 1); a range past the calendar is a 400."""
    assert date_literal_range("LAST_N_DAYS:3650", date(2026, 11, 30)) == (
        date(2016, 12, 2),
        date(2026, 12, 1),
    )
    with pytest.raises(SfError, match="out of the supported range") as err:
        date_literal_range("LAST_N_YEARS:3000", date(2026, 11, 30))
    assert err.value.status == 400 and err.value.code == "MALFORMED_QUERY"


@pytest.mark.parametrize(
    ("text", "like", "value"),
    [
        (r"'O\'Brien'", False, "O'Brien"),
        (r"'a\\b'", False, "a\\b"),
        (r"'line\nbreak'", False, "line\nbreak"),
        (r"'100\%'", True, "100\\%"),
        (r"'a\_b%'", True, "a\\_b%"),
    ],
)
def test_string_escapes(text: str, like: bool, value: str) -> None:
    assert unquote(text, like=like) == value


# ---------------------------------------------------------------------------- evaluation


@pytest.fixture(scope="module")
def state() -> SandboxState:
    st = SandboxState(":memory:")
    now = datetime.now(UTC).replace(microsecond=0)
    accounts = load_records(
        st,
        "Account",
        [
            {"Name": "Acme Corp", "Website": "acme.com", "NumberOfEmployees": 50, "Industry": "Retail",
             "SystemModstamp": "2024-01-01T00:00:00Z", "CreatedDate": now - timedelta(days=400)},
            {"Name": "acme gmbh", "Website": None, "NumberOfEmployees": 5, "Industry": None,
             "SystemModstamp": "2024-02-01T00:00:00Z", "CreatedDate": now - timedelta(days=2)},
            {"Name": "Globex", "Website": "globex.io", "NumberOfEmployees": None, "Industry": "Energy",
             "SystemModstamp": "2024-03-01T00:00:00Z", "CreatedDate": now},
            {"Name": "100% Pure", "Website": "pure.example", "NumberOfEmployees": 500, "Industry": "Food & Beverage",
             "SystemModstamp": "2024-03-01T00:00:00Z", "CreatedDate": now - timedelta(days=40), "IsDeleted": True},
        ],
    )  # fmt: skip
    load_records(
        st,
        "Contact",
        [
            {
                "FirstName": "Ann",
                "LastName": "Lee",
                "AccountId": accounts[0],
                "Email": "ann@acme.com",
            },
            {"LastName": "Orphan", "Email": None},
        ],
    )
    return st


def names(state: SandboxState, soql: str, *, include_deleted: bool = False) -> list[str]:
    q = parse(soql)
    with state.tx() as conn:
        rowids = sf_query.select_rowids(conn, q, include_deleted=include_deleted)
        records = sf_query.fetch_records(conn, q, rowids, "59.0")
    return [r["Name"] for r in records]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Name = 'ACME CORP'", ["Acme Corp"]),
        ("Name != 'Acme Corp'", ["acme gmbh", "Globex"]),
        ("Website = null", ["acme gmbh"]),
        ("Website != null", ["Acme Corp", "Globex"]),
        ("Industry != 'Retail'", ["acme gmbh", "Globex"]),  # null is a value in SOQL
        ("NOT Industry = 'Retail'", ["acme gmbh", "Globex"]),
        ("NOT NumberOfEmployees > 10", ["acme gmbh", "Globex"]),
        ("NumberOfEmployees > 10", ["Acme Corp"]),
        ("NumberOfEmployees <= 5", ["acme gmbh"]),
        ("Name LIKE 'acme%'", ["Acme Corp", "acme gmbh"]),
        ("Name LIKE '%CORP'", ["Acme Corp"]),
        ("Name LIKE 'Glob_x'", ["Globex"]),
        ("NOT Name LIKE 'acme%'", ["Globex"]),
        ("Name IN ('globex', 'Acme Corp')", ["Acme Corp", "Globex"]),
        ("Name NOT IN ('globex')", ["Acme Corp", "acme gmbh"]),
        ("Industry IN ('Retail', null)", ["Acme Corp", "acme gmbh"]),
        ("Industry NOT IN ('Retail')", ["acme gmbh", "Globex"]),
        (
            "(Name LIKE 'acme%' AND NumberOfEmployees > 10) OR Website = 'globex.io'",
            ["Acme Corp", "Globex"],
        ),
        ("NOT (Name LIKE 'acme%' OR Website = null)", ["Globex"]),
        ("SystemModstamp >= 2024-02-01T00:00:00Z", ["acme gmbh", "Globex"]),
        ("SystemModstamp > 2024-01-31T16:00:00-08:00", ["Globex"]),
        ("SystemModstamp < 2024-02-01T00:00:00.000+00:00", ["Acme Corp"]),
        ("CreatedDate = LAST_N_DAYS:7", ["acme gmbh", "Globex"]),
        ("CreatedDate = TODAY", ["Globex"]),
        ("CreatedDate < LAST_N_DAYS:7", ["Acme Corp"]),
        ("CreatedDate != TODAY", ["Acme Corp", "acme gmbh"]),
        ("CreatedDate > YESTERDAY", ["Globex"]),
        ("IsDeleted = false", ["Acme Corp", "acme gmbh", "Globex"]),
    ],
)
def test_where_semantics(state: SandboxState, where: str, expected: list[str]) -> None:
    assert (
        names(state, f"SELECT Name FROM Account WHERE {where} ORDER BY SystemModstamp, Name")
        == expected
    )


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ("ORDER BY Name", ["100% Pure", "Acme Corp", "acme gmbh", "Globex"]),
        ("ORDER BY Name DESC", ["Globex", "acme gmbh", "Acme Corp", "100% Pure"]),
        ("ORDER BY NumberOfEmployees", ["Globex", "acme gmbh", "Acme Corp", "100% Pure"]),
        (
            "ORDER BY NumberOfEmployees NULLS LAST",
            ["acme gmbh", "Acme Corp", "100% Pure", "Globex"],
        ),
        ("ORDER BY NumberOfEmployees DESC", ["Globex", "100% Pure", "Acme Corp", "acme gmbh"]),
        (
            "ORDER BY NumberOfEmployees DESC NULLS LAST",
            ["100% Pure", "Acme Corp", "acme gmbh", "Globex"],
        ),
        (
            "ORDER BY SystemModstamp DESC, Name ASC",
            ["100% Pure", "Globex", "acme gmbh", "Acme Corp"],
        ),
        ("ORDER BY Name LIMIT 2", ["100% Pure", "Acme Corp"]),
        ("ORDER BY Name LIMIT 2 OFFSET 1", ["Acme Corp", "acme gmbh"]),
        ("ORDER BY Name OFFSET 3", ["Globex"]),
    ],
)
def test_order_limit_offset(state: SandboxState, tail: str, expected: list[str]) -> None:
    assert names(state, f"SELECT Name FROM Account {tail}", include_deleted=True) == expected


def test_like_escapes_match_literally(state: SandboxState) -> None:
    assert names(
        state, r"SELECT Name FROM Account WHERE Name LIKE '100\%%'", include_deleted=True
    ) == ["100% Pure"]
    assert names(state, r"SELECT Name FROM Account WHERE Name LIKE '100\%%'") == []


@pytest.mark.parametrize(
    ("soql", "include_deleted", "expected"),
    [
        ("SELECT COUNT() FROM Account", False, 3),
        ("SELECT COUNT() FROM Account", True, 4),
        ("SELECT COUNT(Id) FROM Account WHERE Website != null", False, 2),
        ("SELECT COUNT(Website) FROM Account", True, 3),
        ("SELECT COUNT() FROM Account LIMIT 2", False, 2),
        ("SELECT COUNT() FROM User", False, 5),
    ],
)
def test_count(state: SandboxState, soql: str, include_deleted: bool, expected: int) -> None:
    with state.tx() as conn:
        assert sf_query.count(conn, parse(soql), include_deleted=include_deleted) == expected


def test_parent_fields_nest_and_null_parents_are_null(state: SandboxState) -> None:
    q = parse(
        "SELECT Name, Account.Name, Account.Owner.Email FROM Contact WHERE Account.Name LIKE 'acme%' OR Email = null ORDER BY Name"
    )
    with state.tx() as conn:
        records = sf_query.fetch_records(
            conn, q, sf_query.select_rowids(conn, q, include_deleted=False), "59.0"
        )
    ann, orphan = records
    assert ann["Name"] == "Ann Lee"
    assert ann["Account"]["Name"] == "Acme Corp"
    assert ann["Account"]["attributes"]["type"] == "Account"
    assert ann["Account"]["Owner"]["Email"] == "integration@sandbox.recon.test"
    assert orphan["Account"] is None
    assert ann["attributes"]["url"].startswith("/services/data/v59.0/sobjects/Contact/003")


def test_values_come_back_typed(state: SandboxState) -> None:
    q = parse(
        "SELECT Id, IsDeleted, NumberOfEmployees, SystemModstamp, CreatedDate FROM Account WHERE Name = 'Acme Corp'"
    )
    with state.tx() as conn:
        [record] = sf_query.fetch_records(
            conn, q, sf_query.select_rowids(conn, q, include_deleted=False), "59.0"
        )
    assert record["IsDeleted"] is False
    assert record["NumberOfEmployees"] == 50
    assert record["SystemModstamp"] == "2024-01-01T00:00:00.000+0000"
    assert len(record["Id"]) == 18 and record["Id"].startswith("001")


def test_incremental_query_uses_the_modstamp_index(state: SandboxState) -> None:
    q = parse(
        "SELECT Id FROM Account WHERE SystemModstamp >= 2024-01-01T00:00:00Z ORDER BY SystemModstamp, Id"
    )
    sql = sf_query._Sql(q)
    where = sf_query._where(sql, False)
    with state.tx() as conn:
        plan = " ".join(
            str(row[3])
            for row in conn.execute(
                f"EXPLAIN QUERY PLAN SELECT t0.rowid {sql.from_sql()}{where}{sql.order_sql()}",
                sql.args,
            )
        )
    assert "sf_account_modstamp" in plan
    assert "TEMP B-TREE" not in plan


# ---------------------------------------------------------------------------- beyond recon's own queries


def records(state: SandboxState, soql: str) -> list[dict]:
    q = parse(soql)
    with state.tx() as conn:
        return sf_query.fetch_records(
            conn, q, sf_query.select_rowids(conn, q, include_deleted=False), "59.0"
        )


def test_child_relationship_subqueries(state: SandboxState) -> None:
    rows = records(
        state,
        "SELECT Name, (SELECT LastName, Email FROM Contacts WHERE Email != null ORDER BY LastName LIMIT 5) "
        "FROM Account ORDER BY Name",
    )
    by_name = {r["Name"]: r["Contacts"] for r in rows}
    assert by_name["Acme Corp"]["totalSize"] == 1
    assert by_name["Acme Corp"]["done"] is True
    assert by_name["Acme Corp"]["records"][0]["Email"] == "ann@acme.com"
    assert by_name["Globex"] is None


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Id IN (SELECT AccountId FROM Contact)", ["Acme Corp"]),
        ("Id IN (SELECT AccountId FROM Contact WHERE Email LIKE '%@nowhere')", []),
        ("Id NOT IN (SELECT AccountId FROM Contact)", ["acme gmbh", "Globex"]),
        ("NOT (Id IN (SELECT AccountId FROM Contact))", ["acme gmbh", "Globex"]),
        ("Id IN (SELECT AccountId FROM Contact) OR Website = null", ["Acme Corp", "acme gmbh"]),
    ],
)
def test_semi_joins(state: SandboxState, where: str, expected: list[str]) -> None:
    assert (
        names(state, f"SELECT Name FROM Account WHERE {where} ORDER BY SystemModstamp") == expected
    )


@pytest.mark.parametrize(
    ("soql", "present", "absent"),
    [
        (
            "SELECT FIELDS(STANDARD) FROM Account",
            {"Id", "Name", "SystemModstamp"},
            {"Recon_Key__c"},
        ),
        (
            "SELECT FIELDS(CUSTOM) FROM Account LIMIT 200",
            {"Recon_Key__c", "HubSpot_Id__c"},
            {"Name"},
        ),
        ("SELECT Id, FIELDS(ALL) FROM Lead LIMIT 10", {"Id", "Company", "Recon_Key__c"}, set()),
        ("SELECT a.Name, a.Owner.Email FROM Account a", {"Name", "Owner.Email"}, {"a.Name"}),
        ("SELECT Id FROM Account WITH SECURITY_ENFORCED", {"Id"}, set()),
    ],
)
def test_fields_functions_aliases_and_with(soql: str, present: set[str], absent: set[str]) -> None:
    paths = {f.path for f in parse(soql).fields}
    assert present <= paths
    assert not absent & paths


@pytest.mark.parametrize(
    ("soql", "code", "text"),
    [
        ("SELECT FIELDS(ALL) FROM Account", "MALFORMED_QUERY", "LIMIT of at most 200"),
        ("SELECT FIELDS(CUSTOM) FROM Account LIMIT 201", "MALFORMED_QUERY", "LIMIT of at most 200"),
        ("SELECT FIELDS(SOME) FROM Account", "MALFORMED_QUERY", "FIELDS(SOME)"),
        ("SELECT Id, (SELECT Id FROM Widgets) FROM Account", "INVALID_TYPE", "relationship 'Widgets'"),
        ("SELECT Id, (SELECT Id, (SELECT Id FROM Contacts) FROM ChildAccounts) FROM Account", "MALFORMED_QUERY", "Nested"),
        ("SELECT Id, (SELECT Nope FROM Contacts) FROM Account", "INVALID_FIELD", "'Nope' on entity 'Contact'"),
        ("SELECT Id FROM Account WHERE Name IN (SELECT AccountId FROM Contact)", "INVALID_FIELD", "semi join"),
        ("SELECT Id FROM Account WHERE Id IN (SELECT Email FROM Contact)", "INVALID_FIELD", "semi join"),
        ("SELECT Id FROM Account WITH CACHE", "MALFORMED_QUERY", "'CACHE'"),
    ],
)  # fmt: skip
def test_bad_advanced_queries(soql: str, code: str, text: str) -> None:
    with pytest.raises(SfError) as info:
        parse(soql)
    assert info.value.code == code
    assert text in info.value.message


@pytest.mark.parametrize(
    ("soql", "expected"),
    [
        ("SELECT COUNT(Id) FROM Account", [{"expr0": 3}]),
        ("SELECT COUNT(Id) n, COUNT(Website) w FROM Account", [{"n": 3, "w": 2}]),
        ("SELECT MAX(NumberOfEmployees), MIN(Name), SUM(NumberOfEmployees) total FROM Account",
         [{"expr0": 50, "expr1": "Acme Corp", "total": 55.0}]),
        ("SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry ORDER BY Industry NULLS LAST",
         [{"Industry": "Energy", "expr0": 1}, {"Industry": "Retail", "expr0": 1}, {"Industry": None, "expr0": 1}]),
        ("SELECT Owner.Email, COUNT(Id) FROM Account GROUP BY Owner.Email",
         [{"Email": "integration@sandbox.recon.test", "expr0": 3}]),
        ("SELECT COUNT_DISTINCT(OwnerId) FROM Account", [{"expr0": 1}]),
        ("SELECT AVG(NumberOfEmployees) FROM Account WHERE NumberOfEmployees != null", [{"expr0": 27.5}]),
        ("SELECT Industry FROM Account GROUP BY Industry ORDER BY Industry DESC NULLS LAST LIMIT 1", [{"Industry": "Retail"}]),
        ("SELECT Website, COUNT(Id) c FROM Account GROUP BY Website ORDER BY COUNT(Id) DESC, Website LIMIT 1",
         [{"Website": None, "c": 1}]),
        ("SELECT Owner.Email, COUNT(Id) FROM Account GROUP BY Owner.Email HAVING COUNT(Id) > 1",
         [{"Email": "integration@sandbox.recon.test", "expr0": 3}]),
        ("SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry HAVING COUNT(Id) > 1", []),
        ("SELECT Industry FROM Account GROUP BY Industry HAVING Industry IN ('Retail', 'Energy') AND MAX(NumberOfEmployees) >= 50",
         [{"Industry": "Retail"}]),
        ("SELECT Industry FROM Account GROUP BY Industry HAVING NOT (COUNT(Id) = 1) OR Industry LIKE 'ret%'",
         [{"Industry": "Retail"}]),
    ],
)  # fmt: skip
def test_aggregate_queries(state: SandboxState, soql: str, expected: list[dict]) -> None:
    with state.tx() as conn:
        rows = sf_query.aggregate(conn, parse(soql), include_deleted=False)
    assert [{k: v for k, v in r.items() if k != "attributes"} for r in rows] == expected
    assert all(r["attributes"] == {"type": "AggregateResult"} for r in rows)


@pytest.mark.parametrize(
    ("soql", "text"),
    [
        ("SELECT Name, COUNT(Id) FROM Account", "Field must be grouped or aggregated: Name"),
        (
            "SELECT Name, COUNT(Id) FROM Account GROUP BY Industry",
            "Field must be grouped or aggregated: Name",
        ),
        (
            "SELECT Industry FROM Account GROUP BY Industry ORDER BY Name",
            "Ordered field must be grouped",
        ),
        ("SELECT SUM(Name) FROM Account", "does not support aggregate operator SUM"),
        ("SELECT COUNT(), COUNT(Id) FROM Account", "COUNT() must be the only item"),
        ("SELECT COUNT() FROM Account GROUP BY Name", "GROUP BY can not be used with COUNT()"),
        ("SELECT Industry, (SELECT Id FROM Contacts) FROM Account GROUP BY Industry", "subqueries"),
        ("SELECT Id, (SELECT COUNT(Id) FROM Contacts) FROM Account", "relationship subquery"),
        ("SELECT Id FROM Account WHERE COUNT(Id) > 1", "only allowed in HAVING"),
        (
            "SELECT Industry FROM Account GROUP BY Industry HAVING COUNT(Id) IN (SELECT Id FROM Contact)",
            "semi join",
        ),
        ("SELECT COUNT(Id) FROM Account HAVING COUNT(Id) > 1", "HAVING needs a GROUP BY"),
        (
            "SELECT Industry FROM Account GROUP BY Industry HAVING Name = 'x'",
            "HAVING field must be grouped",
        ),
    ],
)
def test_bad_aggregate_queries(soql: str, text: str) -> None:
    with pytest.raises(SfError) as info:
        parse(soql)
    assert info.value.code == "MALFORMED_QUERY"
    assert text in info.value.message


# ---------------------------------------------------------------------------- robustness

_FRAGMENTS = [
    "SELECT", "Id", ",", "Name", "Account.Name", "FROM", "Account", "Contact", "WHERE", "=", "!=", "<",
    "'x'", "5", "null", "true", "2024-01-01", "2024-01-01T00:00:00Z", "TODAY", "LAST_N_DAYS:3", "AND",
    "OR", "NOT", "(", ")", "IN", "LIKE", "ORDER BY", "DESC", "NULLS LAST", "LIMIT", "OFFSET", "COUNT()",
    "COUNT(Id)", "GROUP BY", "HAVING", "FIELDS(ALL)", "WITH SECURITY_ENFORCED", "(SELECT Id FROM Contacts)",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_any_text_is_parsed_or_refused_with_a_salesforce_error(text: str) -> None:
    try:
        parse(text)
    except SfError as exc:
        assert exc.status == 400 and exc.code


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), min_size=1, max_size=14))
@example(["ORDER BY", "COUNT()"])  # COUNT() outside the select list crashed the resolver
def test_fragment_soup_is_parsed_or_refused_with_a_salesforce_error(parts: list[str]) -> None:
    try:
        q = parse("SELECT Id FROM Account " + " ".join(parts))
    except SfError as exc:
        assert exc.status == 400 and exc.code
    else:
        assert q.object.name == "Account"
