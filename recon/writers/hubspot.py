"""HubSpot writer: batch update/create/upsert (≤ 100), associations v4, merges.

Creates are idempotent: recon makes a unique text property (``[hubspot]
key_property``, default ``recon_key``) through the properties API when it is
missing, and sends creates as a batch *upsert* on that property, so a create
sent twice updates the record the first one made. When the property cannot be
made (no scope), creates fall back to a plain batch create, and apply looks the
record up by its natural key (email, domain) before any retry.

All calls go through the real ``hubspot-api-client`` passed in; 429s are
retried here (HubSpot did not process them), anything else whole-request is
raised for apply to handle.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from ..errors import AuthError, BudgetExhausted, ErrorClass, RateLimited, SourceError
from ..models import hubspot_record_url, opted_out
from . import (
    CallBudget,
    Op,
    Outcome,
    RecordState,
    chunks,
    classify_hubspot,
    network_reason,
    scrub,
    with_rate_limit_retries,
)

__all__ = ["LAST_MODIFIED", "OPT_OUT_ALL", "HubSpotWriter"]

log = logging.getLogger(__name__)

#: "Unsubscribed from all email": read-only to HubSpot's CRM API, set through its communication
#: preferences API (:meth:`HubSpotWriter._with_opt_outs`)
OPT_OUT_ALL = "hs_email_optout"
#: last-modified property per object (contacts differ from companies)
LAST_MODIFIED = {"companies": "hs_lastmodifieddate", "contacts": "lastmodifieddate"}
_GROUPS = {"companies": "companyinformation", "contacts": "contactinformation"}
_MAX_BATCH = 100


def _models(obj: str) -> Any:
    if obj == "companies":
        import hubspot.crm.companies as mod
    elif obj == "contacts":
        import hubspot.crm.contacts as mod
    else:
        raise SourceError(
            f"recon cannot write HubSpot object {obj!r}", hint="only companies and contacts"
        )
    return mod


def _error_body(exc: Any) -> dict[str, Any]:
    try:
        body = json.loads(getattr(exc, "body", None) or "{}")
        return body if isinstance(body, dict) else {}
    except (TypeError, ValueError):
        return {}


class HubSpotWriter:
    """Writes to HubSpot through a ``hubspot.HubSpot`` client.

    Args:
        client: a configured ``hubspot.HubSpot`` (see ``recon.sources.hubspot``).
        budget: the run's call counter for HubSpot.
        key_property: the unique property used as idempotency key of creates.
        batch_size: inputs per batch call (≤ 100).
        max_retries: retries of a rate-limited request.
        app_url: HubSpot app URL, for record links.
        portal_id: HubSpot account id, for record links.
        secrets: values scrubbed from any error text kept.

    Examples:
        >>> HubSpotWriter(None, budget=CallBudget("hubspot")).max_batch("update")
        100
    """

    system = "hubspot"

    def __init__(
        self,
        client: Any,
        *,
        budget: CallBudget,
        key_property: str = "recon_key",
        batch_size: int = _MAX_BATCH,
        max_retries: int = 5,
        app_url: str = "https://app.hubspot.com",
        portal_id: str | None = None,
        secrets: Iterable[str | None] = (),
    ) -> None:
        self.client = client
        self.budget = budget
        self.key_property = key_property
        self.batch_size = max(1, min(batch_size, _MAX_BATCH))
        self.max_retries = max_retries
        self.app_url = app_url.rstrip("/")
        self.portal_id = portal_id
        self.secrets = [s for s in secrets if s]
        self.key_ready: dict[str, bool] = {}
        #: properties this writer created in the portal (apply audits them): object, name, spec
        self.schema_changes: list[dict[str, Any]] = []
        #: called with a property about to be created, and again if creating it failed
        #: (``"intended"`` / ``"failed"``): apply audits the attempt before it is sent
        self.schema_event: Callable[[dict[str, Any], str], None] | None = None

    # ------------------------------------------------------------------ plumbing

    def max_batch(self, kind: str) -> int:
        """Inputs per call: 1 for merges, else the batch size (≤ 100)."""
        return 1 if kind == "merge" else self.batch_size

    def record_link(self, obj: str, record_id: str | None) -> str | None:
        """Link to the record in the HubSpot app (needs ``[hubspot] portal_id``)."""
        return hubspot_record_url(self.app_url, self.portal_id, obj, record_id)

    def _raise(self, exc: Exception) -> None:
        status = getattr(exc, "status", None)
        if status is None:
            raise SourceError(
                f"HubSpot could not be reached: {network_reason(exc)}",
                error_class=ErrorClass.NETWORK,
            ) from None
        body = _error_body(exc)
        message = scrub(body.get("message") or getattr(exc, "reason", "") or "", self.secrets)
        if status == 429 and str(body.get("policyName", "")).upper() == "DAILY":
            # the day's calls are spent: retrying cannot help; stop cleanly, resumable
            raise BudgetExhausted(
                f"HubSpot's daily API limit is reached: {message}",
                hint="run `recon apply --resume` after the limit resets",
            ) from None
        if status == 429:
            headers = getattr(exc, "headers", None) or {}
            after = headers.get("Retry-After") if hasattr(headers, "get") else None
            try:
                retry_after = float(after) if after is not None else None
            except ValueError:
                retry_after = None
            raise RateLimited(f"HubSpot rate limit: {message}", retry_after=retry_after) from None
        if status == 401:
            raise AuthError(f"HubSpot refused the token (401): {message}") from None
        if status >= 500:
            raise SourceError(
                f"HubSpot server error {status}: {message}", error_class=ErrorClass.SERVER_ERROR
            ) from None

    def _call(self, fn: Any, *, read: bool = False, convert: bool = True) -> Any:
        """One request: 429 retried; reads also retried on 5xx and, with ``convert``,
        any other refusal raised as a classified :class:`SourceError`."""

        def once() -> Any:
            try:
                return fn()
            except Exception as exc:
                if isinstance(exc, SourceError):
                    raise
                self._raise(exc)
                if read and convert:
                    cls, message = self._client_error(exc)
                    raise SourceError(
                        f"HubSpot refused a read ({getattr(exc, 'status', '?')}): {message}",
                        error_class=ErrorClass.NOT_FOUND
                        if getattr(exc, "status", None) == 404
                        else cls,
                    ) from None
                raise

        return with_rate_limit_retries(
            once,
            system="HubSpot",
            budget=self.budget,
            max_retries=self.max_retries,
            idempotent=read,
        )

    def _client_error(self, exc: Exception) -> tuple[ErrorClass, str]:
        body = _error_body(exc)
        message = scrub(body.get("message") or getattr(exc, "reason", "") or str(exc), self.secrets)
        return classify_hubspot(
            body.get("category"), message, getattr(exc, "status", None)
        ), message

    # ------------------------------------------------------------------ setup

    def prepare(self, objects: Iterable[str]) -> None:
        """Make sure the unique key property exists on each object (creates it if missing)."""
        from hubspot.crm.properties import PropertyCreate

        core = self.client.crm.properties.core_api
        for obj in objects:
            if obj in self.key_ready:
                continue
            try:
                prop = self._call(
                    lambda obj=obj: core.get_by_name(obj, self.key_property),
                    read=True,
                    convert=False,
                )
                unique = bool(getattr(prop, "has_unique_value", False))
                if unique and self.schema_event is not None:
                    # there: a create of it an earlier apply audited as intended, then lost its
                    # answer (a timeout), did land
                    self.schema_event(self._key_change(obj), "exists")
                if not unique:
                    log.warning(
                        "HubSpot property %s.%s is not unique: creates fall back to natural keys",
                        obj,
                        self.key_property,
                    )
                self.key_ready[obj] = unique
                continue
            except (RateLimited, AuthError):
                raise
            except SourceError:
                raise
            except Exception as exc:
                if getattr(exc, "status", None) != 404:
                    self.key_ready[obj] = False
                    continue
            create = PropertyCreate(
                name=self.key_property,
                label="Recon key",
                type="string",
                field_type="text",
                group_name=_GROUPS[obj],
                has_unique_value=True,
                hidden=False,
                form_field=False,
                description="Idempotency key of records created by recon (do not edit).",
            )
            change = self._key_change(obj)
            if self.schema_event is not None:
                self.schema_event(change, "intended")
            try:
                self._call(lambda obj=obj, create=create: core.create(obj, create))
                self.key_ready[obj] = True
                self.schema_changes.append(change)
                log.info("created unique HubSpot property %s.%s", obj, self.key_property)
            except (RateLimited, AuthError):
                raise
            except Exception as exc:
                if isinstance(exc, SourceError) and exc.error_class is not ErrorClass.UNKNOWN:
                    raise
                if self.schema_event is not None:
                    self.schema_event(change, "failed")
                log.warning(
                    "cannot create HubSpot property %s.%s (%s): creates fall back to natural keys",
                    obj,
                    self.key_property,
                    self._client_error(exc)[1],
                )
                self.key_ready[obj] = False

    def _key_change(self, obj: str) -> dict[str, Any]:
        """The key property of ``obj`` as a schema change (what apply audits)."""
        return {
            "object": obj,
            "field": self.key_property,
            "after": {
                "property": self.key_property,
                "type": "string",
                "unique": True,
                "why": "idempotency key of the records recon creates",
            },
        }

    # ------------------------------------------------------------------ reads

    def current(
        self, obj: str, record_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, RecordState]:
        """Batch-read records with their last-modified property (missing ids absent)."""
        mod = _models(obj)
        api = getattr(self.client.crm, obj).batch_api
        props = sorted({*fields, LAST_MODIFIED[obj]})
        out: dict[str, RecordState] = {}
        for part in chunks(list(dict.fromkeys(record_ids)), _MAX_BATCH):
            body = mod.BatchReadInputSimplePublicObjectId(
                inputs=[mod.SimplePublicObjectId(id=str(i)) for i in part],
                properties=props,
                properties_with_history=[],
            )
            try:
                resp = self._call(lambda body=body: api.read(body, archived=False), read=True)
            except SourceError as exc:
                if exc.error_class is ErrorClass.NOT_FOUND:
                    continue
                raise
            for rec in getattr(resp, "results", None) or []:
                values = dict(rec.properties or {})
                modified = values.get(LAST_MODIFIED[obj]) or _iso(getattr(rec, "updated_at", None))
                out[str(rec.id)] = RecordState(str(rec.id), modified, values)
        return out

    def find_created(self, obj: str, ops: Sequence[Op]) -> dict[str, str]:
        """Records made by earlier sends of these creates: by recon key, else natural key."""
        found: dict[str, str] = {}
        keyed = [op for op in ops if op.key and self.key_ready.get(obj)]
        if keyed:
            mod = _models(obj)
            api = getattr(self.client.crm, obj).batch_api
            for part in chunks(keyed, _MAX_BATCH):
                body = mod.BatchReadInputSimplePublicObjectId(
                    inputs=[mod.SimplePublicObjectId(id=op.key) for op in part],
                    properties=[self.key_property],
                    properties_with_history=[],
                    id_property=self.key_property,
                )
                try:
                    resp = self._call(lambda body=body: api.read(body, archived=False), read=True)
                except SourceError as exc:
                    if exc.error_class is ErrorClass.NOT_FOUND:
                        continue
                    raise
                by_key = {
                    (rec.properties or {}).get(self.key_property): str(rec.id)
                    for rec in getattr(resp, "results", None) or []
                }
                for op in part:
                    if op.key in by_key:
                        found[op.ref] = by_key[op.key]
        rest = [
            op
            for op in ops
            if op.ref not in found and op.natural and (not op.key or not self.key_ready.get(obj))
        ]
        for op in rest:
            assert op.natural is not None
            prop, value = op.natural
            # an email is a contact's own id property: read by it, at once; search finds a
            # record only once indexed (up to a minute after its create)
            rid = (
                self._read_by(obj, prop, value)
                if obj == "contacts" and prop == "email"
                else self._search_one(obj, prop, value)
            )
            if rid:
                found[op.ref] = rid
        return found

    def _read_by(self, obj: str, prop: str, value: str) -> str | None:
        """The record whose unique ``prop`` (a contact's email) is ``value``, read directly."""
        mod = _models(obj)
        api = getattr(self.client.crm, obj).batch_api
        body = mod.BatchReadInputSimplePublicObjectId(
            inputs=[mod.SimplePublicObjectId(id=value)],
            properties=[prop],
            properties_with_history=[],
            id_property=prop,
        )
        try:
            resp = self._call(lambda: api.read(body, archived=False), read=True)
        except SourceError as exc:
            if exc.error_class is ErrorClass.NOT_FOUND:
                return None
            raise
        results = getattr(resp, "results", None) or []
        return str(results[0].id) if results else None

    def _search_one(self, obj: str, prop: str, value: str) -> str | None:
        mod = _models(obj)
        api = getattr(self.client.crm, obj).search_api
        request = mod.PublicObjectSearchRequest(
            filter_groups=[
                mod.FilterGroup(
                    filters=[mod.Filter(property_name=prop, operator="EQ", value=value)]
                )
            ],
            properties=[prop],
            limit=2,
        )
        resp = self._call(lambda: api.do_search(public_object_search_request=request), read=True)
        results = getattr(resp, "results", None) or []
        return str(results[0].id) if results else None

    def merged_away(self, obj: str, record_ids: Sequence[str]) -> set[str]:
        """Ids that no longer answer as themselves (merged into another, or archived)."""
        present = self.current(obj, record_ids, [])
        return {str(i) for i in record_ids if str(i) not in present}

    # ------------------------------------------------------------------ writes

    def write(self, ops: Sequence[Op]) -> list[Outcome]:
        """Send ops of one kind and object; one :class:`Outcome` per op, in order."""
        if not ops:
            return []
        kind, obj = ops[0].kind, ops[0].object
        if kind == "merge":
            return [self._merge(op) for op in ops]
        if obj == "contacts" and any(OPT_OUT_ALL in op.properties for op in ops):
            return self._with_opt_outs(list(ops))
        try:
            return self._batch(kind, obj, list(ops))
        except SourceError:
            raise
        except Exception as exc:
            status = getattr(exc, "status", None)
            if status in (400, 409) and len(ops) > 1:
                # a whole batch refused for one bad input (invalid, or a duplicate of an existing
                # record): nothing landed, so send singly to isolate it
                out: list[Outcome] = []
                for op in ops:
                    out.extend(self.write([op]))
                return out
            cls, message = self._client_error(exc)
            return [Outcome(op.ref, False, op.record_id, cls, message) for op in ops]

    # ------------------------------------------------------------------ opt-outs

    def _with_opt_outs(self, ops: list[Op]) -> list[Outcome]:
        """Contact writes carrying ``hs_email_optout``: the other properties through the CRM
        API, the opt-out through the communication preferences API (HubSpot's CRM API refuses
        the property, read-only, and a batch with it fails whole).

        An opt-out is only ever set (no API resubscribes an address): an update asking
        ``false`` fails with a validation error; a create's ``false`` is left out (a new
        contact is not opted out). A contact without an e-mail address cannot opt out. A
        created contact whose opt-out then fails stays created (a warning): the next plan
        proposes the opt-out again.
        """
        flags = {op.ref: op.properties[OPT_OUT_ALL] for op in ops if OPT_OUT_ALL in op.properties}
        rest = [
            replace(op, properties={k: v for k, v in op.properties.items() if k != OPT_OUT_ALL})
            for op in ops
        ]
        out: dict[str, Outcome] = {}
        for op in ops:
            if op.kind == "update" and op.ref in flags and not opted_out(flags[op.ref]):
                out[op.ref] = Outcome(
                    op.ref,
                    False,
                    op.record_id,
                    ErrorClass.VALIDATION,
                    f"HubSpot does not resubscribe an address through its API: {OPT_OUT_ALL} "
                    "stays true (a person opts in again from a subscription page)",
                )
        send = [op for op in rest if op.ref not in out and (op.properties or op.kind != "update")]
        for outcome in self.write(send) if send else []:
            out[outcome.ref] = outcome
        pending = [
            op
            for op in rest
            if opted_out(flags.get(op.ref))
            and (op.ref not in out or out[op.ref].ok)
            and (op.kind == "update" or out[op.ref].record_id)
        ]
        if pending:
            ids = [str(out[op.ref].record_id if op.ref in out else op.record_id) for op in pending]
            emails = self._emails(ids)
            for op, rid in zip(pending, ids, strict=True):
                done = self._unsubscribe(op, rid, emails)
                if op.kind == "create" and not done.ok:
                    # the contact exists: its create stands (a failure would lose the id and
                    # plan it again), its audit without the flag; the next plan proposes the
                    # opt-out again, as an update
                    log.warning("HubSpot contact %s was created without its opt-out: %s",
                                rid, done.error)  # fmt: skip
                    unwritten = {OPT_OUT_ALL: str(done.error or "the opt-out was refused")}
                    out[op.ref] = replace(out[op.ref], unwritten=unwritten)
                    continue
                out[op.ref] = done
        return [out[op.ref] for op in ops]

    def _emails(self, record_ids: Sequence[str]) -> dict[str, str]:
        """Contact id -> its e-mail address ('' without one); a contact gone is absent."""
        return {
            rid: str(st.values.get("email") or "").strip()
            for rid, st in self.current("contacts", record_ids, ["email"]).items()
        }

    def _unsubscribe(self, op: Op, record_id: str, emails: dict[str, str]) -> Outcome:
        """Opt one contact's address out of all email (communication preferences v4), its
        address read from ``emails`` (:meth:`_emails`).

        A network or server error is a retryable outcome, not raised: the rest of the
        record's write landed already, and its outcome stands (errors never name the address:
        the record id does)."""
        email = emails.get(record_id)
        if email is None:
            return Outcome(
                op.ref,
                False,
                record_id,
                ErrorClass.NOT_FOUND,
                f"contact {record_id} is gone from HubSpot (merged or archived since): its "
                "opt-out was not set",
            )
        if not email:
            return Outcome(
                op.ref,
                False,
                record_id,
                ErrorClass.VALIDATION,
                f"contact {record_id} has no e-mail address: HubSpot keeps email opt-outs per "
                "address, so this one cannot be set; give the contact an address and plan again",
            )
        api_client = self.client.communication_preferences.status_api.api_client

        def send() -> Any:
            return api_client.call_api(
                "/communication-preferences/v4/statuses/{subscriberIdString}/unsubscribe-all",
                "POST",
                path_params={"subscriberIdString": email},
                query_params=[("channel", "EMAIL")],
                header_params={"Accept": "application/json", "Content-Type": "application/json"},
                body={},
                response_types_map={},
                auth_settings=["oauth2"],
                _preload_content=False,
                _return_http_data_only=True,
            )

        try:
            self._call(send)
        except SourceError as exc:
            if exc.error_class not in (ErrorClass.NETWORK, ErrorClass.SERVER_ERROR):
                raise
            return Outcome(op.ref, False, record_id, exc.error_class, scrub(str(exc), [email]))
        except Exception as exc:
            cls, message = self._client_error(exc)
            message = scrub(message, [email])
            return Outcome(
                op.ref, False, record_id, cls, f"opting contact {record_id} out failed: {message}"
            )
        return Outcome(op.ref, True, record_id)

    def _batch(self, kind: str, obj: str, ops: list[Op]) -> list[Outcome]:
        mod = _models(obj)
        api = getattr(self.client.crm, obj).batch_api
        if kind == "update":
            body = mod.BatchInputSimplePublicObjectBatchInput(
                inputs=[
                    mod.SimplePublicObjectBatchInput(
                        id=str(op.record_id), properties=property_strings(op.properties)
                    )
                    for op in ops
                ]
            )
            resp = self._call(lambda: api.update(body))
            return self._outcomes(ops, resp, lambda op: str(op.record_id), lambda rec: str(rec.id))
        if kind == "create":
            if self.key_ready.get(obj) and all(op.key for op in ops):
                body = mod.BatchInputSimplePublicObjectBatchInputUpsert(
                    inputs=[
                        mod.SimplePublicObjectBatchInputUpsert(
                            id=op.key,
                            id_property=self.key_property,
                            properties=property_strings(
                                {**op.properties, self.key_property: op.key}
                            ),
                        )
                        for op in ops
                    ]
                )
                resp = self._call(lambda: api.upsert(body))
                return self._outcomes(
                    ops,
                    resp,
                    lambda op: str(op.key),
                    lambda rec: (rec.properties or {}).get(self.key_property),
                )
            if len(ops) > 1 and not all(op.natural for op in ops):
                # a batch's results come back in no set order: without a key property a
                # create is told apart by its natural key, or by being sent alone
                done = (
                    {o.ref: o for o in self._batch(kind, obj, [op for op in ops if op.natural])}
                    if any(op.natural for op in ops)
                    else {}
                )
                for op in ops:
                    if not op.natural:
                        done[op.ref] = self._batch(kind, obj, [op])[0]
                return [done[op.ref] for op in ops]
            body = mod.BatchInputSimplePublicObjectBatchInputForCreate(
                inputs=[
                    mod.SimplePublicObjectBatchInputForCreate(
                        properties=property_strings(op.properties)
                    )
                    for op in ops
                ]
            )
            resp = self._call(lambda: api.create(body))
            return self._outcomes(
                ops,
                resp,
                lambda op: str(op.natural[1]).lower() if op.natural else op.ref,
                lambda rec: _natural_of(rec, ops),
            )
        if kind == "associate":
            return self._associate(obj, ops)
        raise SourceError(f"HubSpot writer cannot {kind!r}")

    def _outcomes(self, ops: list[Op], resp: Any, op_key: Any, rec_key: Any) -> list[Outcome]:
        results = list(getattr(resp, "results", None) or [])
        by_key: dict[Any, str] = {}
        for rec in results:
            k = rec_key(rec)
            if k is not None:
                by_key[str(k).lower() if isinstance(k, str) else k] = str(rec.id)
        failed: dict[str, tuple[ErrorClass, str]] = {}
        for err in getattr(resp, "errors", None) or []:
            cls = classify_hubspot(getattr(err, "category", None), getattr(err, "message", None))
            message = scrub(getattr(err, "message", "") or "", self.secrets)
            for ident in _error_ids(err):
                failed[ident] = (cls, message)
        out: list[Outcome] = []
        for index, op in enumerate(ops):
            k = op_key(op)
            k = k.lower() if isinstance(k, str) else k
            if k in by_key:
                out.append(Outcome(op.ref, True, by_key[k]))
            elif str(op_key(op)) in failed or (op.record_id and op.record_id in failed):
                cls, message = failed.get(str(op_key(op))) or failed[str(op.record_id)]
                out.append(Outcome(op.ref, False, op.record_id, cls, message))
            elif not by_key and len(results) == len(ops):
                out.append(Outcome(op.ref, True, str(results[index].id)))
            elif failed and len(failed) == 1 and len(ops) == 1:
                cls, message = next(iter(failed.values()))
                out.append(Outcome(op.ref, False, op.record_id, cls, message))
            else:
                errors = getattr(resp, "errors", None) or []
                if len(errors) > 1:
                    # several errors naming no input: which one is this record's is unknown
                    messages = "; ".join(
                        scrub(getattr(e, "message", "") or "", self.secrets) for e in errors[:3]
                    )
                    out.append(
                        Outcome(
                            op.ref,
                            False,
                            op.record_id,
                            ErrorClass.UNKNOWN,
                            f"one of {len(errors)} errors the batch answer does not attribute: "
                            f"{messages}",
                        )
                    )
                    continue
                message = scrub(
                    getattr(errors[0], "message", "") if errors else "no result for this input",
                    self.secrets,
                )
                cls = (
                    classify_hubspot(getattr(errors[0], "category", None), message)
                    if errors
                    else ErrorClass.UNKNOWN
                )
                out.append(Outcome(op.ref, False, op.record_id, cls, message))
        return out

    def _associate(self, obj: str, ops: list[Op]) -> list[Outcome]:
        import hubspot.crm.associations.v4 as assoc

        out: dict[str, Outcome] = {}
        api = self.client.crm.associations.v4.batch_api
        by_target: dict[tuple[str, bool], list[Op]] = {}
        for op in ops:
            by_target.setdefault((str(op.to_object), op.primary), []).append(op)
        for (to_object, primary), group in by_target.items():
            if primary:
                # labelled: the company becomes the contact's primary one (HubSpot moves the
                # label, and associatedcompanyid, off the former one)
                labelled = assoc.BatchInputPublicAssociationMultiPost(
                    inputs=[
                        assoc.PublicAssociationMultiPost(
                            _from=assoc.PublicObjectId(id=str(op.record_id)),
                            to=assoc.PublicObjectId(id=str(op.to_id)),
                            types=[
                                assoc.AssociationSpec(
                                    association_category="HUBSPOT_DEFINED",
                                    association_type_id=type_id,
                                )
                                for type_id in (_PRIMARY_TYPE_ID, _UNLABELLED_TYPE_ID)
                            ],
                        )
                        for op in group
                    ]
                )
                raw = self._call(
                    lambda body=labelled, to_object=to_object: api.create(
                        obj, to_object, body, _preload_content=False
                    )
                )
            else:
                body = assoc.BatchInputPublicDefaultAssociationMultiPost(
                    inputs=[
                        assoc.PublicDefaultAssociationMultiPost(
                            _from=assoc.PublicObjectId(id=str(op.record_id)),
                            to=assoc.PublicObjectId(id=str(op.to_id)),
                        )
                        for op in group
                    ]
                )
                # read raw: the client knows no 207 answer for this endpoint and returns None
                # for one, hiding which associations failed
                raw = self._call(
                    lambda body=body, to_object=to_object: api.create_default(
                        obj, to_object, body, _preload_content=False
                    )
                )
            answer = json.loads(raw.data or b"{}") if getattr(raw, "data", None) else {}
            resp = SimpleNamespace(
                results=answer.get("results") or [],
                errors=[SimpleNamespace(**e) for e in answer.get("errors") or []],
            )
            failed: dict[str, tuple[ErrorClass, str]] = {}
            for err in getattr(resp, "errors", None) or []:
                cls = classify_hubspot(
                    getattr(err, "category", None), getattr(err, "message", None)
                )
                for ident in _error_ids(err):
                    failed[ident] = (cls, scrub(getattr(err, "message", "") or "", self.secrets))
            # an association is made when the answer lists it: one named nowhere (an error
            # naming "from->to", or none) is not taken for a success
            made = {
                (str(_side_id(r, "_from", "from")), str(_side_id(r, "to", "to")))
                for r in getattr(resp, "results", None) or []
            }
            for op in group:
                pair = (str(op.record_id), str(op.to_id))
                hit = (
                    failed.get(f"{pair[0]}->{pair[1]}")
                    or failed.get(pair[0])
                    or failed.get(pair[1])
                )
                if pair in made and not hit:
                    out[op.ref] = Outcome(op.ref, True, op.record_id)
                elif hit:
                    out[op.ref] = Outcome(op.ref, False, op.record_id, hit[0], hit[1])
                else:
                    out[op.ref] = Outcome(
                        op.ref, False, op.record_id, ErrorClass.NOT_FOUND,
                        "HubSpot did not make this association (a record may be gone)",
                    )  # fmt: skip
        return [out[op.ref] for op in ops]

    def _merged_into(self, obj: str, record_id: str) -> str | None:
        """The record a merged-away id now answers as (HubSpot reads it as its survivor)."""
        for rid, state in self.current(obj, [record_id], ["hs_merged_object_ids"]).items():
            merged = str(state.values.get("hs_merged_object_ids") or "").split(";")
            if rid != record_id and record_id in merged:
                return rid
        return None

    def _merge(self, op: Op) -> Outcome:
        """Merge ``op.merge_ids`` into ``op.record_id`` one by one, then write ``op.properties``.

        A victim refused because it was merged into the survivor before (a resumed run, a
        retry) is skipped; a failure names the victims already merged.
        """
        mod = _models(op.object)
        api = getattr(self.client.crm, op.object).basic_api
        survivor = str(op.record_id)
        for n, victim in enumerate(op.merge_ids):
            body = mod.PublicMergeInput(primary_object_id=survivor, object_id_to_merge=str(victim))
            try:
                resp = self._call(lambda body=body: api.merge(body))
            except SourceError:
                raise
            except Exception as exc:
                if self._merged_into(op.object, str(victim)) == survivor:
                    continue  # merged before: a resumed run, a retry
                cls, message = self._client_error(exc)
                done = tuple(map(str, op.merge_ids[:n]))
                if n:
                    message += f" (after merging {', '.join(done)})"
                return Outcome(op.ref, False, survivor, cls, message, merged=done)
            survivor = str(getattr(resp, "id", None) or survivor)
        props = dict(op.properties)
        flag = props.pop(OPT_OUT_ALL, None) if op.object == "contacts" else None
        if props:
            # HubSpot's merge takes no field values: write the survivorship choices onto the survivor
            body = mod.SimplePublicObjectInput(properties=property_strings(props))
            try:
                self._call(lambda: api.update(survivor, body))
            except SourceError:
                raise
            except Exception as exc:
                cls, message = self._client_error(exc)
                return Outcome(
                    op.ref,
                    False,
                    survivor,
                    cls,
                    f"merged into {survivor}, but its field values were refused: {message}",
                    merged=tuple(map(str, op.merge_ids)),
                )
        if opted_out(flag):  # a member's opt-out: through communication preferences
            opt = self._unsubscribe(op, survivor, self._emails([survivor]))
            if not opt.ok:
                return Outcome(
                    op.ref, False, survivor, opt.error_class, f"merged into {survivor}, but "
                    f"{opt.error}", merged=tuple(map(str, op.merge_ids)),
                )  # fmt: skip
        return Outcome(op.ref, True, survivor)


def property_strings(props: dict[str, Any]) -> dict[str, str]:
    """HubSpot property values are strings ('' clears a value)."""
    out = {}
    for k, v in props.items():
        if v is None:
            out[k] = ""
        elif isinstance(v, bool):
            out[k] = "true" if v else "false"
        else:
            out[k] = str(v)
    return out


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        from datetime import UTC

        return str(value.astimezone(UTC).isoformat().replace("+00:00", "Z"))
    return str(value)


def _natural_of(rec: Any, ops: list[Op]) -> str | None:
    props = rec.properties or {}
    for op in ops:
        if op.natural and props.get(op.natural[0]) is not None:
            return str(props[op.natural[0]]).lower()
    return None


_ID_RE = re.compile(r"\b\d{1,20}(?:->\d{1,20})?\b")


#: HubSpot's association types contact → company: primary, and unlabelled
_PRIMARY_TYPE_ID, _UNLABELLED_TYPE_ID = 1, 279


def _side_id(result: Any, attr: str, key: str) -> Any:
    """The id of one end of an association result (a client model or a plain dict; a
    labelled create answers ``fromObjectId``/``toObjectId``)."""
    if isinstance(result, dict) and f"{key}ObjectId" in result:
        return result[f"{key}ObjectId"]
    end = getattr(result, attr, None) if not isinstance(result, dict) else result.get(key)
    if end is None:
        return None
    return end.get("id") if isinstance(end, dict) else getattr(end, "id", None)


def _error_ids(err: Any) -> list[str]:
    """The record ids a HubSpot batch error names (context ids, else ids in its message)."""
    ids: list[str] = []
    context = getattr(err, "context", None) or {}
    for key, values in context.items():
        if (
            key in {"ids", "id", "idProperty", "objectIds", "inputs", "fromObjectId", "toObjectId"}
            or "id" in key.lower()
        ):
            ids.extend(str(v) for v in (values if isinstance(values, list) else [values]))
    if not ids:
        ids.extend(_ID_RE.findall(getattr(err, "message", "") or ""))
    return ids
