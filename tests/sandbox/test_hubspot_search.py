"""HubSpot search through the real client: operators, sorts, paging, the 10,000-result cap, lag."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.companies import PublicObjectSearchRequest
from hubspot.crm.companies.exceptions import ApiException

from recon.sandbox import SandboxServer, SandboxState
from recon.sandbox.hs_records import bulk_load

BASE_MS = 1_700_000_000_000


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    """20 companies with known values: employees = i, modified at BASE + i seconds."""
    state = SandboxState(":memory:")
    records = [
        {
            "name": f"{'Alpha' if i % 2 else 'Beta'} Works {i}",
            "domain": f"w{i}.example" if i % 5 else None,
            "numberofemployees": i,
            "city": ["Oslo", "Lyon", "Kyiv", "Lima"][i % 4],
            "lifecyclestage": "customer" if i < 5 else "lead",
        }
        for i in range(20)
    ]
    bulk_load(
        state, "companies", records, timestamps=[(BASE_MS, BASE_MS + i * 1000) for i in range(20)]
    )
    with SandboxServer(state) as srv:
        yield srv


def search(server: SandboxServer, **body: Any) -> Any:
    hs = HubSpot(access_token="x", host=server.url)
    return hs.crm.companies.search_api.do_search(PublicObjectSearchRequest(**body))


def employees(result: Any) -> list[int]:
    return sorted(int(r.properties["numberofemployees"]) for r in result.results)


def f(prop: str, op: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"propertyName": prop, "operator": op, **extra}
    if value is not None:
        out["value"] = value
    return out


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([f("numberofemployees", "EQ", "3")], [3]),
        ([f("numberofemployees", "GT", "17")], [18, 19]),
        ([f("numberofemployees", "GTE", "18")], [18, 19]),
        ([f("numberofemployees", "LT", "2")], [0, 1]),
        ([f("numberofemployees", "LTE", "1")], [0, 1]),
        ([f("numberofemployees", "BETWEEN", "4", highValue="6")], [4, 5, 6]),
        ([f("city", "EQ", "oslo"), f("numberofemployees", "LT", "9")], [0, 4, 8]),
        (
            [f("city", "IN", values=["Kyiv", "LIMA"]), f("numberofemployees", "LT", "8")],
            [2, 3, 6, 7],
        ),
        ([f("domain", "NOT_HAS_PROPERTY")], [0, 5, 10, 15]),
        ([f("domain", "HAS_PROPERTY"), f("numberofemployees", "LT", "4")], [1, 2, 3]),
        ([f("name", "CONTAINS_TOKEN", "alpha"), f("numberofemployees", "LT", "6")], [1, 3, 5]),
        ([f("name", "CONTAINS_TOKEN", "1*"), f("numberofemployees", "LT", "12")], [1, 10, 11]),
        ([f("lifecyclestage", "NEQ", "lead")], [0, 1, 2, 3, 4]),
        ([f("hs_lastmodifieddate", "GTE", str(BASE_MS + 17_000))], [17, 18, 19]),
        ([f("hs_lastmodifieddate", "LT", "2023-11-14T22:13:22Z")], [0, 1]),
        ([f("hs_object_id", "IN", values=["2", "4", "999"])], [1, 3]),
        ([f("createdate", "EQ", str(BASE_MS)), f("numberofemployees", "LT", "2")], [0, 1]),
    ],
)
def test_operators(
    server: SandboxServer, filters: list[dict[str, Any]], expected: list[int]
) -> None:
    result = search(
        server, filter_groups=[{"filters": filters}], properties=["numberofemployees"], limit=100
    )
    assert employees(result) == expected
    assert result.total == len(expected)


def test_filter_groups_are_ored(server: SandboxServer) -> None:
    groups = [
        {"filters": [f("numberofemployees", "EQ", "1")]},
        {"filters": [f("numberofemployees", "EQ", "7")]},
    ]
    assert employees(search(server, filter_groups=groups, properties=["numberofemployees"])) == [
        1,
        7,
    ]


@pytest.mark.parametrize("direction", ["ASCENDING", "DESCENDING"])
def test_sorts_and_after_paging(server: SandboxServer, direction: str) -> None:
    seen: list[int] = []
    after: str | None = None
    while True:
        result = search(
            server,
            sorts=[{"propertyName": "hs_lastmodifieddate", "direction": direction}],
            properties=["numberofemployees"],
            limit=7,
            after=after,
        )
        assert result.total == 20
        seen += [int(r.properties["numberofemployees"]) for r in result.results]
        if result.paging is None:
            break
        after = result.paging.next.after
    assert seen == (list(range(20)) if direction == "ASCENDING" else list(range(19, -1, -1)))


def test_free_text_query(server: SandboxServer) -> None:
    result = search(server, query="beta", properties=["name"], limit=100)
    assert result.total == 10 and all(
        r.properties["name"].startswith("Beta") for r in result.results
    )


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 201},
        {"filter_groups": [{"filters": [f("no_such_property", "EQ", "1")]}]},
        {"filter_groups": [{"filters": [f("name", "EQ", "x")]}] * 6},
        {"sorts": [{"propertyName": "name"}, {"propertyName": "domain"}]},
    ],
)
def test_invalid_searches_are_400(server: SandboxServer, body: dict[str, Any]) -> None:
    with pytest.raises(ApiException) as err:
        search(server, **body)
    assert err.value.status == 400
    assert json.loads(err.value.body)["category"] == "VALIDATION_ERROR"


def test_paging_past_10000_results_fails_as_hubspot_does() -> None:
    state = SandboxState(":memory:")
    bulk_load(state, "contacts", [{"firstname": "P", "lastname": str(i)} for i in range(10_050)])
    with SandboxServer(state) as srv:
        hs = HubSpot(access_token="x", host=srv.url)
        request = PublicObjectSearchRequest(limit=200, after="9800", properties=["lastname"])
        page = hs.crm.contacts.search_api.do_search(request)
        assert page.total == 10_000  # HubSpot counts no further
        assert len(page.results) == 200
        assert page.paging.next.after == "10000"
        from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException

        with pytest.raises(ContactsApiException) as err:
            hs.crm.contacts.search_api.do_search(
                PublicObjectSearchRequest(limit=200, after=page.paging.next.after)
            )
        assert err.value.status == 400
        assert "10000" in json.loads(err.value.body)["message"]


def test_search_indexing_lag_hides_fresh_records(sandbox_reset: Any) -> None:
    from hubspot.crm.companies import SimplePublicObjectInputForCreate

    hs = HubSpot(access_token="x", host=sandbox_reset.url)
    name = f"Lagged {time.time_ns()}"
    request = PublicObjectSearchRequest(filter_groups=[{"filters": [f("name", "EQ", name)]}])
    sandbox_reset.state.settings.update({"hubspot_search_lag_s": 3600})
    hs.crm.companies.basic_api.create(SimplePublicObjectInputForCreate(properties={"name": name}))
    assert hs.crm.companies.search_api.do_search(request).total == 0
    sandbox_reset.state.settings.update({"hubspot_search_lag_s": 0})
    assert hs.crm.companies.search_api.do_search(request).total == 1


def test_an_update_is_indexed_later_than_a_create(sandbox_reset: Any) -> None:
    from hubspot.crm.companies import SimplePublicObjectInput, SimplePublicObjectInputForCreate

    hs = HubSpot(access_token="x", host=sandbox_reset.url)
    name = f"Indexed {time.time_ns()}"
    made = hs.crm.companies.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"name": name})
    )
    settings = sandbox_reset.state.settings
    settings.update({"hubspot_search_lag_s": 0, "hubspot_search_update_lag_s": 3600})
    try:
        other = f"Created {time.time_ns()}"
        hs.crm.companies.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"name": other})
        )
        hs.crm.companies.basic_api.update(
            made.id, SimplePublicObjectInput(properties={"industry": "RETAIL"})
        )

        def total(value: str) -> int:
            request = PublicObjectSearchRequest(
                filter_groups=[{"filters": [f("name", "EQ", value)]}]
            )
            return int(hs.crm.companies.search_api.do_search(request).total)

        # the create is found at once, the updated record only once its update is indexed
        assert (total(other), total(name)) == (1, 0)
    finally:
        settings.update({"hubspot_search_update_lag_s": 0})
    assert total(name) == 1
