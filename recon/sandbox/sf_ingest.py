"""Bulk API 2.0 ingest jobs of the Salesforce emulator (insert, update, upsert, delete).

``POST jobs/ingest`` creates an ``Open`` job; ``PUT jobs/ingest/{id}/batches`` adds CSV
data (201); ``PATCH jobs/ingest/{id}`` ``{"state": "UploadComplete"}`` processes every
row through the same validated writes as the REST API (so validation-rule and
duplicate-rule faults apply per row) and ``{"state": "Aborted"}`` drops the data;
``GET jobs/ingest/{id}`` shows ``InProgress`` until the ``salesforce_bulk_seconds``
setting has passed, then ``JobComplete`` with ``numberRecordsProcessed`` and
``numberRecordsFailed``; ``GET .../successfulResults``, ``.../failedResults`` and
``.../unprocessedrecords`` answer CSV (``sf__Id``, ``sf__Created`` / ``sf__Error``
and the uploaded columns). A CSV header naming an unknown field fails the whole job,
as in Salesforce. In the CSV an empty value leaves a field unchanged and ``#N/A``
clears it.
"""

from __future__ import annotations

import csv
import io
import json
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .sf_bulk import _DELIMITERS, _DONE, _ENDINGS, new_job_id
from .sf_common import SfError
from .sf_describe import FieldSpec, ObjectSpec, get_object
from .sf_store import API_USER_ID, now_stamp
from .sf_write import Writer, save_many

if TYPE_CHECKING:
    from .state import SandboxState

__all__ = ["routes"]

OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
NULL = "#N/A"


def _row_fields(row: dict[str, str]) -> dict[str, Any]:
    return {k: (None if v == NULL else v) for k, v in row.items() if v != ""}


def _run(
    state: SandboxState, job: dict[str, Any], request_id: str
) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """Process a job's CSV; return (header, successful rows, failed rows)."""
    spec = get_object(job["object"])
    assert spec is not None
    text = "".join(job.pop("_data", []))
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=_DELIMITERS[job["columnDelimiter"]]
    )
    rows = [r for r in reader if r]
    if not rows:
        return [], [], []
    header, body = rows[0], rows[1:]
    unknown = [h for h in header if spec.field(h) is None]
    if unknown:
        raise SfError(400, "InvalidBatch", f"Field name not found : {unknown[0]}")
    if job["operation"] in ("delete", "hardDelete") and [h.lower() for h in header] != ["id"]:
        raise SfError(400, "InvalidBatch", "The 'delete' batch must contain only 'Id'")
    records = [dict(zip(header, r, strict=False)) for r in body]
    operation = job["operation"]
    ext = spec.field(job.get("externalIdFieldName") or "Id")

    def one(w: Writer, row: dict[str, str]) -> dict[str, Any]:
        fields = _row_fields(row)
        rid = next((v for k, v in fields.items() if k.lower() == "id"), None)
        if operation == "insert":
            return {"id": w.create(spec, fields), "created": True, "_new": True}
        if operation == "update":
            if not rid:
                raise SfError(400, "MISSING_ARGUMENT", "Id not specified in an update call", [])
            return {"id": w.update(spec, rid, fields, status=400), "created": False}
        if operation == "upsert":
            assert ext is not None
            value = next((v for k, v in fields.items() if k.lower() == ext.name.lower()), None)
            if value in (None, "") and ext.name != "Id":
                raise SfError(400, "MISSING_ARGUMENT", f"{ext.name} not specified", [])
            new_id, created = w.upsert(spec, ext, value, fields)
            return {"id": new_id, "created": created}
        return {"id": w.delete(spec, rid, status=400), "created": False}

    results = save_many(state, request_id, records, one, all_or_none=False)
    ok: list[list[str]] = []
    failed: list[list[str]] = []
    for raw, result in zip(body, results, strict=True):
        if result["success"]:
            ok.append([result["id"], "true" if result.get("created") else "false", *raw])
        else:
            err = result["errors"][0]
            fields = ",".join(err.get("fields") or [])
            message = f"{err['statusCode']}:{err['message']}:{fields} --"
            failed.append([str(result.get("id") or ""), message, *raw])
    return header, ok, failed


def _csv(job: dict[str, Any], header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(
        out,
        delimiter=_DELIMITERS[job["columnDelimiter"]],
        lineterminator=_ENDINGS[job["lineEnding"]],
        quoting=csv.QUOTE_ALL,
    )
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _ext_field(spec: ObjectSpec, name: str | None) -> FieldSpec:
    f = spec.field(name or "")
    if f is None or not (f.external_id or f.name == "Id"):
        raise SfError(
            400, "INVALIDJOB", f"InvalidJob : External ID was blank or not valid for {spec.name}"
        )
    return f


def routes(state: SandboxState) -> list[BaseRoute]:
    """The Bulk API 2.0 ingest routes."""
    from .sf_rest import DATA, Ctx, api, json_body

    def label(request: Request) -> str:
        path = request.url.path.rstrip("/")
        base = "/services/data/jobs/ingest"
        if "job_id" not in request.path_params:
            return base
        tail = path.rsplit("/", 1)[-1]
        return base + "/{id}" + ("" if tail == request.path_params["job_id"] else "/" + tail)

    wrap = api(state, label)

    def load(job_id: str) -> dict[str, Any]:
        with state.tx() as conn:
            row = conn.execute("SELECT body FROM sf_bulk_jobs WHERE id = ?", (job_id,)).fetchone()
        job = json.loads(row[0]) if row else None
        if job is None or job.get("jobType") != "V2Ingest":
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        return dict(job)

    def save(job: dict[str, Any]) -> None:
        with state.tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO sf_bulk_jobs (id, body) VALUES (?, ?)",
                (job["id"], json.dumps(job)),
            )

    def public(job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    def advance(job: dict[str, Any]) -> dict[str, Any]:
        if job["state"] in ("UploadComplete", "InProgress"):
            done = time.time() - job["_closed"] >= state.settings.salesforce_bulk_seconds
            job["state"] = "JobComplete" if done else "InProgress"
            save(job)
        return job

    @wrap
    async def create(ctx: Ctx) -> Response:
        body = await json_body(ctx.request)
        if not isinstance(body, dict):
            raise SfError(400, "INVALIDJOB", "The request body must be a JSON object")
        spec = get_object(str(body.get("object") or ""))
        if spec is None:
            raise SfError(
                400, "INVALIDJOB", f"InvalidJob : Unable to find object: {body.get('object')}"
            )
        operation = body.get("operation")
        if operation not in OPERATIONS:
            raise SfError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        delimiter = str(body.get("columnDelimiter") or "COMMA").upper()
        ending = str(body.get("lineEnding") or "LF").upper()
        if delimiter not in _DELIMITERS or ending not in _ENDINGS:
            raise SfError(400, "INVALIDJOB", "Invalid columnDelimiter or lineEnding")
        ext = body.get("externalIdFieldName")
        if operation == "upsert":
            ext = _ext_field(spec, ext).name
        job_id = new_job_id(state)
        stamp = now_stamp()[:-1] + "+0000"
        job = {
            "id": job_id,
            "operation": operation,
            "object": spec.name,
            "createdById": API_USER_ID,
            "createdDate": stamp,
            "systemModstamp": stamp,
            "state": "Open",
            "externalIdFieldName": ext,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(ctx.version),
            "jobType": "V2Ingest",
            "contentUrl": f"services/data/v{ctx.version}/jobs/ingest/{job_id}/batches",
            "lineEnding": ending,
            "columnDelimiter": delimiter,
            "numberRecordsProcessed": 0,
            "numberRecordsFailed": 0,
            "retries": 0,
            "totalProcessingTime": 0,
            "_data": [],
        }
        save(job)
        return JSONResponse(public(job))

    @wrap
    async def upload(ctx: Ctx) -> Response:
        job = load(ctx.request.path_params["job_id"])
        if job["state"] != "Open":
            raise SfError(409, "INVALIDJOBSTATE", f"Job is not open: {job['state']}")
        job["_data"].append((await ctx.request.body()).decode("utf-8-sig"))
        save(job)
        return Response(status_code=201)

    @wrap
    async def job_state(ctx: Ctx) -> Response:
        request = ctx.request
        job = load(request.path_params["job_id"])
        if request.method == "GET":
            return JSONResponse(public(advance(job)))
        if request.method == "DELETE":
            if advance(job)["state"] not in (*_DONE, "Open"):
                raise SfError(400, "INVALIDJOBSTATE", "Only closed jobs can be deleted")
            with state.tx() as conn:
                conn.execute("DELETE FROM sf_bulk_jobs WHERE id = ?", (job["id"],))
            return Response(status_code=204)
        body = await json_body(request) or {}
        wanted = body.get("state")
        if job["state"] != "Open" or wanted not in ("UploadComplete", "Aborted"):
            raise SfError(
                400, "INVALIDJOBSTATE", f"Cannot set state {wanted} on a {job['state']} job"
            )
        started = time.time()
        if wanted == "Aborted":
            job["_unprocessed"] = job.pop("_data", [])
            job["state"] = "Aborted"
        else:
            try:
                header, ok, failed = _run(state, job, ctx.request_id)
            except SfError as exc:
                job |= {"state": "Failed", "errorMessage": f"{exc.code} : {exc.message}"}
            else:
                job |= {
                    "state": "UploadComplete",
                    "numberRecordsProcessed": len(ok) + len(failed),
                    "numberRecordsFailed": len(failed),
                    "_header": header,
                    "_ok": ok,
                    "_failed": failed,
                }
        job["totalProcessingTime"] = int((time.time() - started) * 1000)
        job["_closed"] = time.time()
        save(job)
        return JSONResponse(public(job))

    @wrap
    async def results(ctx: Ctx) -> Response:
        request = ctx.request
        job = advance(load(request.path_params["job_id"]))
        kind = request.url.path.rstrip("/").rsplit("/", 1)[-1].lower()
        header = list(job.get("_header") or [])
        if kind == "unprocessedrecords":
            text = "".join(job.get("_unprocessed") or []) or _csv(job, header, [])
            return Response(text, media_type="text/csv")
        if job["state"] not in _DONE:
            raise SfError(400, "INVALIDJOBSTATE", f"Job is not complete: {job['state']}")
        if kind == "successfulresults":
            body = _csv(job, ["sf__Id", "sf__Created", *header], job.get("_ok") or [])
        else:
            body = _csv(job, ["sf__Id", "sf__Error", *header], job.get("_failed") or [])
        return Response(body, media_type="text/csv")

    @wrap
    async def list_jobs(ctx: Ctx) -> Response:
        with state.tx() as conn:
            jobs = [
                json.loads(r[0]) for r in conn.execute("SELECT body FROM sf_bulk_jobs ORDER BY id")
            ]
        ingest = [public(j) for j in jobs if j.get("jobType") == "V2Ingest"]
        return JSONResponse({"done": True, "records": ingest, "nextRecordsUrl": None})

    base = DATA + "/jobs/ingest"
    return [
        Route(base, create, methods=["POST"]),
        Route(base + "/", create, methods=["POST"]),
        Route(base, list_jobs, methods=["GET"]),
        Route(base + "/", list_jobs, methods=["GET"]),
        Route(base + "/{job_id}", job_state, methods=["GET", "PATCH", "DELETE"]),
        Route(base + "/{job_id}/batches", upload, methods=["PUT"]),
        Route(base + "/{job_id}/batches/", upload, methods=["PUT"]),
        *[
            Route(base + "/{job_id}/" + name, results, methods=["GET"])
            for name in (
                "successfulResults",
                "failedResults",
                "unprocessedrecords",
                "unprocessedRecords",
            )
        ],
    ]
