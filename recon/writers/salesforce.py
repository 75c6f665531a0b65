"""Salesforce writer: sObject Collections (≤ 200, ``allOrNone=false``) and SOAP merges.

Updates are ``PATCH composite/sobjects``; a batch of one record is a single-record
``PATCH`` with ``If-Unmodified-Since`` (the snapshot time), which Salesforce refuses
with 412 when the record changed since (a ``stale`` outcome). Creates are upserts on the External ID
field ``Recon_Key__c`` (``PATCH composite/sobjects/{object}/Recon_Key__c``), so a
create sent twice finds the record the first send made. The Salesforce admin
adds that field (Text, External ID, Unique) on Account, Contact and Lead; where
it is missing, creates are plain ``POST composite/sobjects`` and apply looks the
record up by its natural key (email, website) before any retry.

Merges use the SOAP API's ``merge`` call — Salesforce offers no REST merge —
POSTed to ``/services/Soap/u/{version}`` with the client's own session (its
session id, its ``requests`` session and instance URL).

Examples:
    >>> SalesforceWriter(None, budget=CallBudget("salesforce")).max_batch("merge")
    1
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any
from xml.sax.saxutils import escape

from ..errors import AuthError, BudgetExhausted, ErrorClass, RateLimited, SourceError
from ..models import salesforce_record_url
from . import (
    CallBudget,
    Op,
    Outcome,
    RecordState,
    chunks,
    classify_salesforce,
    network_reason,
    scrub,
    with_rate_limit_retries,
)

__all__ = ["KEY_FIELD", "SalesforceWriter"]

log = logging.getLogger(__name__)

#: the External ID field the admin adds on Account, Contact and Lead
KEY_FIELD = "Recon_Key__c"
_MAX_BATCH = 200
_OBJECTS = {"Account", "Contact", "Lead"}


def _soql_list(values: Iterable[str]) -> str:
    return ", ".join("'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)


class SalesforceWriter:
    """Writes to Salesforce through a ``simple_salesforce.Salesforce`` client.

    Args:
        client: an authenticated ``Salesforce`` (see ``recon.sources.salesforce``).
        budget: the run's call counter for Salesforce.
        batch_size: records per collection call (≤ 200).
        max_retries: retries of a rate-limited request.
        instance_url: the org's URL, for record links.
        secrets: values scrubbed from any error text kept.
        refresh: returns a client with a new session (expired sessions are renewed once
            per call; a 401 means the request was not processed).
    """

    system = "salesforce"

    def __init__(
        self,
        client: Any,
        *,
        budget: CallBudget,
        batch_size: int = _MAX_BATCH,
        max_retries: int = 5,
        instance_url: str | None = None,
        secrets: Iterable[str | None] = (),
        refresh: Any = None,
    ) -> None:
        self.client = client
        self.refresh = refresh
        self.budget = budget
        self.batch_size = max(1, min(batch_size, _MAX_BATCH))
        self.max_retries = max_retries
        self.instance_url = (instance_url or "").rstrip("/")
        self.secrets = [s for s in secrets if s]
        if client is not None and getattr(client, "session_id", None):
            self.secrets.append(client.session_id)
        self.key_ready: dict[str, bool] = {}

    def max_batch(self, kind: str) -> int:
        """Records per call: 1 for merges, else the batch size (≤ 200)."""
        return 1 if kind == "merge" else self.batch_size

    def record_link(self, obj: str, record_id: str | None) -> str | None:
        """Lightning link to the record."""
        return salesforce_record_url(self.instance_url, obj, record_id)

    # ------------------------------------------------------------------ plumbing

    def _raise(self, exc: Exception) -> None:
        status = getattr(exc, "status", None)
        if status is None:
            raise SourceError(
                f"Salesforce could not be reached: {network_reason(exc)}",
                error_class=ErrorClass.NETWORK,
            ) from None
        code, message = self._first_error(exc)
        if (
            status == 403
            and code == "REQUEST_LIMIT_EXCEEDED"
            and "concurrent" not in message.lower()
        ):
            # the org's rolling 24-hour allocation is spent: retrying cannot help; stop
            # cleanly, resumable (as HubSpot's daily limit)
            raise BudgetExhausted(
                f"Salesforce's API request limit is exceeded: {message}",
                hint="run `recon apply --resume` once the rolling 24-hour allocation frees up",
            ) from None
        if status == 429 or code == "REQUEST_LIMIT_EXCEEDED":
            raise RateLimited(f"Salesforce rate limit ({status} {code}): {message}") from None
        if status == 401:
            raise AuthError(f"Salesforce refused the session ({code}): {message}") from None
        if status >= 500:
            raise SourceError(
                f"Salesforce server error {status} ({code}): {message}",
                error_class=ErrorClass.SERVER_ERROR,
            ) from None

    def _first_error(self, exc: Exception) -> tuple[str | None, str]:
        content = getattr(exc, "content", None)
        if isinstance(content, list) and content and isinstance(content[0], dict):
            first = content[0]
            return first.get("errorCode") or first.get("statusCode"), scrub(
                first.get("message", ""), self.secrets
            )
        return None, scrub(content if content is not None else exc, self.secrets)[:500]

    def _call(self, fn: Any, *, read: bool = False) -> Any:
        def once() -> Any:
            try:
                return fn()
            except Exception as exc:
                if isinstance(exc, SourceError):
                    raise
                self._raise(exc)
                if read:  # a refused read (malformed query, no access) is a classified error
                    code, message = self._first_error(exc)
                    raise SourceError(
                        f"Salesforce refused a read ({code}): {message}",
                        error_class=classify_salesforce(code, getattr(exc, "status", None)),
                    ) from None
                raise

        return self._with_session(
            lambda: with_rate_limit_retries(
                once,
                system="Salesforce",
                budget=self.budget,
                max_retries=self.max_retries,
                idempotent=read,
            )
        )

    def _with_session(self, fn: Any) -> Any:
        """``fn()``; when the session expired (401, nothing processed), get a new one once and retry."""
        try:
            return fn()
        except AuthError:
            if self.refresh is None:
                raise
            log.info("Salesforce session expired; requesting a new token")
            self.client = self.refresh()
            if getattr(self.client, "session_id", None):
                self.secrets.append(self.client.session_id)
            return fn()

    def _query(self, soql: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        result = self._call(lambda: self.client.query(soql), read=True)
        records.extend(result.get("records", []))
        while not result.get("done", True) and result.get("nextRecordsUrl"):
            url = result["nextRecordsUrl"]
            result = self._call(
                lambda url=url: self.client.query_more(url, identifier_is_url=True), read=True
            )
            records.extend(result.get("records", []))
        return records

    # ------------------------------------------------------------------ setup

    def prepare(self, objects: Iterable[str]) -> None:
        """Describe each object once to learn whether ``Recon_Key__c`` exists."""
        for obj in objects:
            if obj in self.key_ready:
                continue
            desc = self._call(
                lambda obj=obj: self.client.restful(f"sobjects/{obj}/describe"), read=True
            )
            fields = {f.get("name"): f for f in (desc or {}).get("fields", [])}
            key = fields.get(KEY_FIELD)
            self.key_ready[obj] = bool(key and key.get("externalId", True))
            if not self.key_ready[obj]:
                log.warning(
                    "Salesforce %s has no External ID field %s: creates fall back to natural-key lookups",
                    obj,
                    KEY_FIELD,
                )

    # ------------------------------------------------------------------ reads

    def current(
        self, obj: str, record_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, RecordState]:
        """Query records with their ``SystemModstamp`` (missing or deleted ids absent)."""
        cols = [
            "Id",
            "SystemModstamp",
            *sorted({f for f in fields if f not in {"Id", "SystemModstamp"}}),
        ]
        out: dict[str, RecordState] = {}
        for part in chunks(list(dict.fromkeys(record_ids)), _MAX_BATCH):
            soql = f"SELECT {', '.join(cols)} FROM {obj} WHERE Id IN ({_soql_list(part)})"
            for rec in self._query(soql):
                values = {k: v for k, v in rec.items() if k != "attributes"}
                out[str(rec["Id"])] = RecordState(
                    str(rec["Id"]), values.get("SystemModstamp"), values
                )
        return out

    def find_created(self, obj: str, ops: Sequence[Op]) -> dict[str, str]:
        """Records made by earlier sends of these creates: by ``Recon_Key__c``, else natural key."""
        found: dict[str, str] = {}
        keyed = [op for op in ops if op.key and self.key_ready.get(obj)]
        for part in chunks(keyed, _MAX_BATCH):
            soql = f"SELECT Id, {KEY_FIELD} FROM {obj} WHERE {KEY_FIELD} IN ({_soql_list(op.key for op in part)})"
            by_key = {rec.get(KEY_FIELD): str(rec["Id"]) for rec in self._query(soql)}
            for op in part:
                if op.key in by_key:
                    found[op.ref] = by_key[op.key]
        rest = [
            op
            for op in ops
            if op.ref not in found and op.natural and not (op.key and self.key_ready.get(obj))
        ]
        by_field: dict[str, list[Op]] = {}
        for op in rest:
            assert op.natural is not None
            by_field.setdefault(op.natural[0], []).append(op)
        for fname, group in by_field.items():
            for part in chunks(group, _MAX_BATCH):
                values = [op.natural[1] for op in part if op.natural]
                soql = f"SELECT Id, {fname} FROM {obj} WHERE {fname} IN ({_soql_list(values)})"
                by_value = {
                    str(rec.get(fname) or "").lower(): str(rec["Id"]) for rec in self._query(soql)
                }
                for op in part:
                    if op.natural and str(op.natural[1]).lower() in by_value:
                        found[op.ref] = by_value[str(op.natural[1]).lower()]
        return found

    def merged_away(self, obj: str, record_ids: Sequence[str]) -> set[str]:
        """Ids no longer returned by a query (merged or deleted)."""
        present = self.current(obj, record_ids, [])
        return {str(i) for i in record_ids if str(i) not in present}

    # ------------------------------------------------------------------ writes

    def write(self, ops: Sequence[Op]) -> list[Outcome]:
        """Send ops of one kind and object; one :class:`Outcome` per op, in order."""
        if not ops:
            return []
        kind, obj = ops[0].kind, ops[0].object
        if obj not in _OBJECTS:
            raise SourceError(
                f"recon cannot write Salesforce object {obj!r}", hint="only Account, Contact, Lead"
            )
        if kind == "merge":
            return [self._merge(op) for op in ops]
        if kind == "update" and len(ops) == 1 and ops[0].unmodified_since:
            return [self._conditional_update(ops[0])]
        if kind in {"update", "associate"}:
            records = []
            for op in ops:
                props = dict(op.properties)
                if kind == "associate" and op.to_id:
                    props.setdefault("AccountId", op.to_id)
                records.append({"attributes": {"type": obj}, "id": op.record_id, **props})
            path, method = "composite/sobjects", "PATCH"
        elif kind == "create":
            keyed = self.key_ready.get(obj) and all(op.key for op in ops)
            records = [
                {
                    "attributes": {"type": obj},
                    **op.properties,
                    **({KEY_FIELD: op.key} if keyed else {}),
                }
                for op in ops
            ]
            path, method = (
                (f"composite/sobjects/{obj}/{KEY_FIELD}", "PATCH")
                if keyed
                else ("composite/sobjects", "POST")
            )
        else:
            raise SourceError(f"Salesforce writer cannot {kind!r}")
        payload = {"allOrNone": False, "records": records}
        try:
            results = self._call(lambda: self.client.restful(path, method=method, json=payload))
        except SourceError:
            raise
        except Exception as exc:
            code, message = self._first_error(exc)
            cls = classify_salesforce(code, getattr(exc, "status", None))
            return [Outcome(op.ref, False, op.record_id, cls, f"{code}: {message}") for op in ops]
        results = list(results or [])
        out = []
        for index, op in enumerate(ops):
            res = results[index] if index < len(results) else None
            if res is None:
                out.append(
                    Outcome(
                        op.ref, False, op.record_id, ErrorClass.UNKNOWN, "no result for this record"
                    )
                )
            elif res.get("success"):
                out.append(Outcome(op.ref, True, str(res.get("id") or op.record_id)))
            else:
                errors = res.get("errors") or [{}]
                code = errors[0].get("statusCode") or errors[0].get("errorCode")
                fields = errors[0].get("fields") or []
                message = scrub(errors[0].get("message", ""), self.secrets)
                text = f"{code}: {message}" + (f" (fields: {', '.join(fields)})" if fields else "")
                out.append(Outcome(op.ref, False, op.record_id, classify_salesforce(code), text))
        return out

    def _conditional_update(self, op: Op) -> Outcome:
        """One record: ``PATCH sobjects/{object}/{id}`` with ``If-Unmodified-Since`` (412 → stale)."""
        from email.utils import format_datetime

        from ..models import parse_ts

        since = parse_ts(op.unmodified_since)
        headers = {"If-Unmodified-Since": format_datetime(since, usegmt=True)} if since else {}
        try:
            self._call(
                lambda: getattr(self.client, op.object).update(
                    op.record_id, dict(op.properties), headers=headers
                )
            )
        except SourceError:
            raise
        except Exception as exc:
            code, message = self._first_error(exc)
            cls = (
                ErrorClass.STALE
                if getattr(exc, "status", None) == 412
                else classify_salesforce(code, getattr(exc, "status", None))
            )
            return Outcome(op.ref, False, op.record_id, cls, f"{code}: {message}")
        return Outcome(op.ref, True, op.record_id)

    def _merge(self, op: Op) -> Outcome:
        """Merge ``op.merge_ids`` into ``op.record_id``, one SOAP ``merge`` per victim.

        A SOAP merge takes at most two victims; one a call keeps a failure attributable to
        its victim. A victim already merged away (a resumed run, a retry) is skipped: it is
        checked only when its merge is refused. The survivorship values go with every call.
        """
        related: list[str] = []
        for n, victim in enumerate(op.merge_ids):
            outcome = self._merge_one(op, str(victim))
            related.extend(outcome.related)
            if outcome.ok or self._merged_into(op.object, str(victim)) == str(op.record_id):
                continue  # merged now, or before (a resumed run, a retry)
            if n:
                done = tuple(map(str, op.merge_ids[:n]))
                outcome = replace(
                    outcome,
                    error=f"{outcome.error} (after merging {', '.join(done)})",
                    merged=done,
                    related=tuple(related),
                )
            return outcome
        return Outcome(op.ref, True, op.record_id, related=tuple(related))

    def _merged_into(self, obj: str, record_id: str) -> str | None:
        """The master a deleted record was merged into (``queryAll``), else None."""
        soql = (
            f"SELECT Id, MasterRecordId FROM {obj} "
            f"WHERE Id IN ({_soql_list([record_id])}) AND IsDeleted = true"
        )
        result = self._call(lambda: self.client.query(soql, include_deleted=True), read=True)
        rows = result.get("records") or []
        master = rows[0].get("MasterRecordId") if rows else None
        return str(master) if master else None

    def _merge_one(self, op: Op, victim: str) -> Outcome:
        """One SOAP ``merge`` of ``victim`` into ``op.record_id``."""
        victims = f"<urn:recordToMergeIds>{escape(victim)}</urn:recordToMergeIds>"
        # the partner WSDL's sObject is a sequence: type, fieldsToNull*, Id, then the fields
        soap = [_soap_field(k, v) for k, v in op.properties.items()]
        nulls = "".join(f for f in soap if f.startswith("<urn1:fieldsToNull>"))
        fields = "".join(f for f in soap if not f.startswith("<urn1:fieldsToNull>"))
        headers = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'}

        def send() -> Any:
            # built per send: a renewed session brings a new session id and client
            envelope = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns:urn="urn:partner.soap.sforce.com" xmlns:urn1="urn:sobject.partner.soap.sforce.com">'
                "<soapenv:Header><urn:SessionHeader><urn:sessionId>"
                + escape(str(self.client.session_id))
                + "</urn:sessionId></urn:SessionHeader></soapenv:Header>"
                "<soapenv:Body><urn:merge><urn:request><urn:masterRecord>"
                f"<urn1:type>{escape(op.object)}</urn1:type>{nulls}<urn1:Id>{escape(str(op.record_id))}</urn1:Id>{fields}"
                f"</urn:masterRecord>{victims}</urn:request></urn:merge></soapenv:Body></soapenv:Envelope>"
            )
            url = f"https://{self.client.sf_instance}/services/Soap/u/{self.client.sf_version}"
            try:
                resp = self.client.session.post(
                    url, data=envelope.encode("utf-8"), headers=headers, timeout=60
                )
            except SourceError:  # said before sending (the org usage cap): as it is
                raise
            except Exception as exc:
                raise SourceError(
                    f"Salesforce could not be reached for merge: {network_reason(exc)}",
                    error_class=ErrorClass.NETWORK,
                ) from None
            limit = resp.status_code >= 500 and b"REQUEST_LIMIT_EXCEEDED" in resp.content
            if limit and b"concurrent" not in resp.content.lower():
                # the org's rolling 24-hour allocation is spent, as a SOAP fault: stop cleanly,
                # resumable (as the REST calls do, see _raise)
                raise BudgetExhausted(
                    "Salesforce's API request limit is exceeded (merge)",
                    hint="run `recon apply --resume` once the rolling 24-hour allocation frees up",
                )
            if resp.status_code == 429 or limit:  # the concurrent limit: waited out like a 429
                raise RateLimited("Salesforce rate limit on merge")
            if resp.status_code >= 500 and b"Fault" not in resp.content:
                raise SourceError(
                    f"Salesforce server error {resp.status_code} on merge",
                    error_class=ErrorClass.SERVER_ERROR,
                )
            return resp

        def attempt() -> Outcome:
            resp = with_rate_limit_retries(
                send, system="Salesforce", budget=self.budget, max_retries=self.max_retries
            )
            return self._merge_outcome(op, resp.content)

        outcome: Outcome = self._with_session(attempt)
        return outcome

    def _merge_outcome(self, op: Op, content: bytes) -> Outcome:
        try:
            root = ET.fromstring(content)
        except ET.ParseError:
            return Outcome(
                op.ref, False, op.record_id, ErrorClass.UNKNOWN, "merge answer is not XML"
            )

        def find(tag: str) -> list[ET.Element]:
            return [el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == tag]

        fault = find("faultstring")
        if fault:
            code_el = find("faultcode") or find("exceptionCode")
            code = (code_el[0].text or "").rsplit(":", 1)[-1] if code_el else None
            message = scrub(fault[0].text or "", self.secrets)
            if code == "INVALID_SESSION_ID":
                raise AuthError(f"Salesforce refused the session on merge: {message}")
            return Outcome(
                op.ref, False, op.record_id, classify_salesforce(code), f"{code}: {message}"
            )
        success = find("success")
        if success and (success[0].text or "").strip().lower() == "true":
            ids = find("id")
            related = tuple(el.text for el in find("updatedRelatedIds") if el.text)
            return Outcome(
                op.ref,
                True,
                (ids[0].text or op.record_id) if ids else op.record_id,
                related=related,
            )
        codes = find("statusCode")
        messages = find("message")
        code = codes[0].text if codes else None
        message = scrub(messages[0].text if messages else "merge failed", self.secrets)
        return Outcome(op.ref, False, op.record_id, classify_salesforce(code), f"{code}: {message}")


def _soap_field(name: str, value: Any) -> str:
    """One field of a SOAP sObject: xsd text for the value, ``fieldsToNull`` for a blank.

    Examples:
        >>> _soap_field("IsActive", True), _soap_field("Phone", None)
        ('<urn1:IsActive>true</urn1:IsActive>', '<urn1:fieldsToNull>Phone</urn1:fieldsToNull>')
    """
    if value is None or value == "":
        return f"<urn1:fieldsToNull>{escape(name)}</urn1:fieldsToNull>"
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return f"<urn1:{escape(name)}>{escape(text)}</urn1:{escape(name)}>"
