"""Bulk API 2.0 query jobs of the Salesforce emulator.

``POST jobs/query`` (operation ``query`` or ``queryAll``) creates a job in state
``UploadComplete``; ``GET jobs/query/{id}`` shows ``InProgress`` until the
``salesforce_bulk_seconds`` setting has passed (default 0: done at the first poll),
then ``JobComplete``; ``GET jobs/query/{id}/results?maxRecords=&locator=`` pages the
CSV with ``Sforce-Locator`` (``null`` on the last page) and ``Sforce-NumberOfRecords``
(412 ``JOB_NOT_COMPLETE`` before that); ``PATCH`` ``{"state": "Aborted"}`` aborts
and ``DELETE`` removes a finished job. Jobs live in the ``sf_bulk_jobs`` table; the
result rowids of a finished job are kept in memory (recomputed after a restart).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import time
from array import array
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .sf_common import SfError, make_id
from .sf_describe import FieldSpec
from .sf_query import fetch_rows, select_rowids
from .sf_store import API_USER_ID, now_stamp
from .soql import Query, parse

if TYPE_CHECKING:
    from .state import SandboxState

__all__ = ["jobs_created", "new_job_id", "routes"]

_DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
_DONE = ("JobComplete", "Aborted", "Failed")


def jobs_created(state: SandboxState) -> int:
    """How many Bulk 2.0 query jobs exist (for ``/limits``)."""
    with state.tx() as conn:
        row = conn.execute(
            "SELECT count(*) FROM sf_bulk_jobs WHERE json_extract(body, '$.jobType') = 'V2Query'"
        ).fetchone()
        return int(row[0])


def new_job_id(state: SandboxState) -> str:
    """A new Bulk API job id (key prefix 750), query and ingest jobs alike."""
    with state.tx() as conn:
        row = conn.execute("SELECT next FROM sf_seq WHERE object = 'BulkJob'").fetchone()
        n = int(row[0]) if row else 1
        conn.execute("INSERT OR REPLACE INTO sf_seq (object, next) VALUES ('BulkJob', ?)", (n + 1,))
    return make_id("750", n)


def _csv_value(spec: FieldSpec, value: Any) -> str:
    if value is None:
        return ""
    if spec.type == "boolean":
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _locator(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def _offset(locator: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(locator + "=" * (-len(locator) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        raise SfError(400, "INVALID_LOCATOR", f"Invalid locator: {locator}") from None


def routes(state: SandboxState) -> list[BaseRoute]:
    """The Bulk API 2.0 query routes."""
    from .sf_rest import DATA, Ctx, api, json_body

    results: dict[str, tuple[Query, array[int]]] = {}

    def label(request: Request) -> str:
        p = request.path_params
        base = "/services/data/jobs/query"
        if "job_id" not in p:
            return base
        return (
            base
            + "/{id}"
            + ("/results" if request.url.path.rstrip("/").endswith("/results") else "")
        )

    wrap = api(state, label)

    def load(job_id: str) -> dict[str, Any]:
        with state.tx() as conn:
            row = conn.execute("SELECT body FROM sf_bulk_jobs WHERE id = ?", (job_id,)).fetchone()
        job: dict[str, Any] | None = json.loads(row[0]) if row else None
        if job is None or job.get("jobType") != "V2Query":
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    def save(job: dict[str, Any]) -> None:
        with state.tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO sf_bulk_jobs (id, body) VALUES (?, ?)",
                (job["id"], json.dumps(job)),
            )

    def rowids(job: dict[str, Any]) -> tuple[Query, array[int]]:
        # keyed by creation time too: a restored database can hand out a job id again
        key = f"{job['id']}@{job['_created']}"
        if key not in results:
            query = parse(job["query"])
            with state.tx() as conn:
                ids = select_rowids(conn, query, include_deleted=job["operation"] == "queryAll")
            results[key] = (query, array("q", ids))
        return results[key]

    def advance(job: dict[str, Any]) -> dict[str, Any]:
        if job["state"] in _DONE:
            return job
        if time.time() - job["_created"] < state.settings.salesforce_bulk_seconds:
            job["state"] = "InProgress"
        else:
            _, ids = rowids(job)
            job["state"] = "JobComplete"
            job["numberRecordsProcessed"] = len(ids)
            job["totalProcessingTime"] = int((time.time() - job["_created"]) * 1000)
        job["systemModstamp"] = now_stamp()[:-1] + "+0000"
        save(job)
        return job

    def public(job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    @wrap
    async def create(ctx: Ctx) -> Response:
        body = await json_body(ctx.request)
        if not isinstance(body, dict):
            raise SfError(400, "INVALIDJOB", "The request body must be a JSON object")
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            raise SfError(400, "INVALIDJOB", f"Invalid operation for a query job: {operation}")
        delimiter = str(body.get("columnDelimiter") or "COMMA").upper()
        ending = str(body.get("lineEnding") or "LF").upper()
        if delimiter not in _DELIMITERS or ending not in _ENDINGS:
            raise SfError(400, "INVALIDJOB", "Invalid columnDelimiter or lineEnding")
        soql = body.get("query")
        if not isinstance(soql, str) or not soql.strip():
            raise SfError(400, "INVALIDJOB", "A query is required for a query job")
        query = parse(soql)
        if query.count or query.aggregated:
            raise SfError(400, "INVALIDJOB", "Aggregate queries are not supported by Bulk API 2.0")
        if query.children:
            raise SfError(
                400, "INVALIDJOB", "Relationship subqueries are not supported by Bulk API 2.0"
            )
        stamp = now_stamp()[:-1] + "+0000"
        job = {
            "id": new_job_id(state),
            "operation": operation,
            "object": query.object.name,
            "createdById": API_USER_ID,
            "createdDate": stamp,
            "systemModstamp": stamp,
            "state": "UploadComplete",
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(ctx.version),
            "jobType": "V2Query",
            "lineEnding": ending,
            "columnDelimiter": delimiter,
            "numberRecordsProcessed": 0,
            "retries": 0,
            "totalProcessingTime": 0,
            "query": soql,
            "_created": time.time(),
        }
        save(job)
        return JSONResponse(public(job))

    @wrap
    async def list_jobs(ctx: Ctx) -> Response:
        with state.tx() as conn:
            jobs = [
                json.loads(r[0]) for r in conn.execute("SELECT body FROM sf_bulk_jobs ORDER BY id")
            ]
        queries = [public(j) for j in jobs if j.get("jobType") == "V2Query"]
        return JSONResponse({"done": True, "records": queries, "nextRecordsUrl": None})

    @wrap
    async def job(ctx: Ctx) -> Response:
        request = ctx.request
        found = load(request.path_params["job_id"])
        if request.method == "GET":
            return JSONResponse(public(advance(found)))
        if request.method == "DELETE":
            if advance(found)["state"] not in _DONE:
                raise SfError(400, "INVALIDSTATUS", "Only finished or aborted jobs can be deleted")
            with state.tx() as conn:
                conn.execute("DELETE FROM sf_bulk_jobs WHERE id = ?", (found["id"],))
            results.pop(f"{found['id']}@{found['_created']}", None)
            return Response(status_code=204)
        body = await json_body(request) or {}
        if body.get("state") != "Aborted":
            raise SfError(400, "INVALIDSTATUS", "A query job can only be set to state Aborted")
        if advance(found)["state"] in _DONE:
            raise SfError(400, "INVALIDSTATUS", f"Cannot abort a job in state {found['state']}")
        found["state"] = "Aborted"
        save(found)
        results.pop(f"{found['id']}@{found['_created']}", None)
        return JSONResponse(public(found))

    @wrap
    async def job_results(ctx: Ctx) -> Response:
        request = ctx.request
        found = advance(load(request.path_params["job_id"]))
        if found["state"] != "JobComplete":
            status = {"InProgress": "IN_PROGRESS", "UploadComplete": "UPLOAD_COMPLETE"}.get(
                found["state"], found["state"].upper()
            )
            raise SfError(412, "JOB_NOT_COMPLETE", f"Job is not complete. Current status: {status}")
        if str(found["apiVersion"]) != ctx.version:
            raise SfError(
                409, "INVALIDVERSION", "Results must be retrieved with the API version of the job"
            )
        query, ids = rowids(found)
        locator = request.query_params.get("locator")
        start = _offset(locator) if locator and locator != "null" else 0
        raw_max = request.query_params.get("maxRecords")
        if raw_max is not None and (not raw_max.isdigit() or int(raw_max) < 1):
            raise SfError(400, "INVALIDMAXRECORDS", f"Invalid maxRecords: {raw_max}")
        size = int(raw_max) if raw_max else max(1, len(ids) - start)
        chunk = list(ids[start : start + size])
        with state.tx() as conn:
            rows = fetch_rows(conn, query, chunk)
        out = io.StringIO()
        writer = csv.writer(
            out,
            delimiter=_DELIMITERS[found["columnDelimiter"]],
            lineterminator=_ENDINGS[found["lineEnding"]],
            quoting=csv.QUOTE_ALL,
        )
        writer.writerow([ref.path for ref in query.fields])
        specs = [ref.spec for ref in query.fields]
        for row in rows:
            writer.writerow([_csv_value(s, v) for s, v in zip(specs, row, strict=True)])
        nxt = start + size
        headers = {
            "Sforce-Locator": _locator(nxt) if nxt < len(ids) else "null",
            "Sforce-NumberOfRecords": str(len(rows)),
        }
        return Response(out.getvalue(), media_type="text/csv", headers=headers)

    base = DATA + "/jobs/query"
    return [
        Route(base, create, methods=["POST"]),
        Route(base + "/", create, methods=["POST"]),
        Route(base, list_jobs, methods=["GET"]),
        Route(base + "/", list_jobs, methods=["GET"]),
        Route(base + "/{job_id}", job, methods=["GET", "PATCH", "DELETE"]),
        Route(base + "/{job_id}/results", job_results, methods=["GET"]),
        Route(base + "/{job_id}/results/", job_results, methods=["GET"]),
    ]
