"""Validated writes of the Salesforce emulator: create, update, upsert, delete, merge.

:class:`Writer` works inside one :meth:`SandboxState.tx` transaction and raises
:class:`~recon.sandbox.sf_common.SfError` per record with Salesforce's codes:
``INVALID_FIELD`` (unknown field), ``INVALID_FIELD_FOR_INSERT_UPDATE`` (read-only
field), ``REQUIRED_FIELD_MISSING``, ``STRING_TOO_LONG``, ``INVALID_EMAIL_ADDRESS``,
``MALFORMED_ID``, ``INVALID_CROSS_REFERENCE_KEY``, ``DUPLICATE_VALUE`` (unique
fields such as ``Recon_Key__c``), ``NOT_FOUND``, ``ENTITY_IS_DELETED``,
``PRECONDITION_FAILED`` (412), and the validation/duplicate-rule failures injected
with ``state.faults`` (``FIELD_CUSTOM_VALIDATION_EXCEPTION``, ``DUPLICATES_DETECTED``).
:func:`save_many` runs a list of such operations with sObject Collections'
``allOrNone`` semantics and returns the SaveResults.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .sf_common import SfError, normalize_id, parse_datetime, table_name
from .sf_describe import TEXT_TYPES, FieldSpec, ObjectSpec, get_object, object_for_id
from .sf_store import (
    _fill_defaults,
    fetch_row,
    full_name,
    next_ids,
    now_stamp,
    to_storage,
    touch,
    write_row,
)

if TYPE_CHECKING:
    from .state import SandboxState

__all__ = ["ROLLED_BACK", "Writer", "object_of", "save_many"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
    "fields": [],
}
_SIDE = "salesforce"


class Writer:
    """Record writes of one API request (one transaction, one request id)."""

    def __init__(self, state: SandboxState, conn: sqlite3.Connection, request_id: str) -> None:
        self.state, self.conn, self.request_id = state, conn, request_id

    # ------------------------------------------------------------------ helpers

    def _log(
        self, spec: ObjectSpec, rid: str, action: str, detail: dict[str, Any] | None = None
    ) -> None:
        self.state.log_change(_SIDE, spec.name, rid, action, self.request_id, detail)

    def existing(self, spec: ObjectSpec, record_id: Any, *, status: int = 404) -> dict[str, Any]:
        """The live row of ``record_id``; NOT_FOUND / ENTITY_IS_DELETED / MALFORMED_ID otherwise."""
        rid = normalize_id(str(record_id)) if record_id is not None else None
        if rid is None or rid[:3] != spec.key_prefix:
            if status == 404:
                raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
            raise SfError(
                400,
                "MALFORMED_ID",
                f"{spec.name} ID: id value of incorrect type: {record_id}",
                ["Id"],
            )
        row = fetch_row(self.conn, spec, rid)
        if row is None:
            if status == 404:
                raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
            raise SfError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
        if row.get("IsDeleted"):
            raise SfError(status, "ENTITY_IS_DELETED", "entity is deleted", [])
        return row

    def _prepare(self, spec: ObjectSpec, body: dict[str, Any], creating: bool) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        readonly: list[str] = []
        for key, value in body.items():
            if key == "attributes":
                continue
            f = spec.field(key)
            if f is None:
                raise SfError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{key}' on sobject of type {spec.name}",
                    [key],
                )
            if f.name == "Id" and creating:
                raise SfError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    "Record ID: cannot specify Id in an insert call",
                    ["Id"],
                )
            if not (f.createable if creating else f.updateable):
                readonly.append(f.name)
                continue
            changes[f.name] = self._value(f, value)
        if readonly:
            verb = "create" if creating else "update"
            raise SfError(
                400,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to {verb} fields: {', '.join(readonly)}. Please check the security settings of "
                "this field and verify that it is read/write for your profile or permission set.",
                readonly,
            )
        return changes

    def _value(self, f: FieldSpec, value: Any) -> Any:
        try:
            stored = to_storage(f, value)
        except SfError as exc:
            exc.fields = [f.name]
            raise
        if stored is None:
            return None
        if f.type in TEXT_TYPES or f.type == "textarea":
            if f.length and len(str(stored)) > f.length:
                raise SfError(
                    400,
                    "STRING_TOO_LONG",
                    f"{f.label or f.name}: data value too large: {stored} (max length={f.length})",
                    [f.name],
                )
            if f.type == "email" and not _EMAIL.match(str(stored)):
                raise SfError(
                    400,
                    "INVALID_EMAIL_ADDRESS",
                    f"Email: invalid email address: {stored}",
                    [f.name],
                )
        if f.type == "reference" and f.reference_to:
            target = get_object(f.reference_to)
            parent = fetch_row(self.conn, target, stored) if target else None
            if parent is None:
                raise SfError(
                    400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name]
                )
            if parent.get("IsDeleted"):
                raise SfError(400, "ENTITY_IS_DELETED", "entity is deleted", [f.name])
        return stored

    def _check(
        self, spec: ObjectSpec, merged: dict[str, Any], changed: set[str], rid: str | None
    ) -> None:
        missing = [
            f.name
            for f in spec.fields
            if f.required and f.name in changed and merged.get(f.name) is None
        ]
        if missing:
            raise SfError(
                400,
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        for f in spec.fields:
            if "q" in f.flags and f.name in changed and merged.get(f.name) is not None:
                other = self.conn.execute(
                    f'SELECT "Id" FROM {table_name(spec.name)} WHERE "{f.name}" = ? AND "Id" IS NOT ? '
                    + ('AND "IsDeleted" = 0 ' if spec.field("IsDeleted") else "")
                    + "LIMIT 1",
                    (merged[f.name], rid),
                ).fetchone()
                if other is not None:
                    raise SfError(
                        400,
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {f.name} duplicates value on record with id: {other[0]}",
                        [],
                    )
        injected = self.state.faults.record_error(_SIDE, spec.name, merged)
        if injected is not None:
            raise SfError(
                400, injected["code"], injected["message"], list(injected.get("fields") or [])
            )

    @staticmethod
    def _names(spec: ObjectSpec, merged: dict[str, Any], changes: dict[str, Any]) -> None:
        if spec.field("FirstName") is not None and (
            "FirstName" in changes or "LastName" in changes
        ):
            changes["Name"] = full_name(merged.get("FirstName"), merged.get("LastName"))

    # ------------------------------------------------------------------ operations

    def create(self, spec: ObjectSpec, body: dict[str, Any]) -> str:
        """Insert one record; return its id."""
        changes = self._prepare(spec, body, creating=True)
        row = dict(changes)
        _fill_defaults(spec, row, now_stamp())
        self._check(spec, row, {f.name for f in spec.fields}, None)
        [rid] = next_ids(self.conn, spec, 1)
        row["Id"] = rid
        cols = [f.name for f in spec.fields if f.name in row]
        self.conn.execute(
            f"INSERT INTO {table_name(spec.name)} ({', '.join(chr(34) + c + chr(34) for c in cols)}) "
            f"VALUES ({', '.join('?' for _ in cols)})",
            [row[c] for c in cols],
        )
        self._log(spec, rid, "created")
        return rid

    def update(
        self,
        spec: ObjectSpec,
        record_id: Any,
        body: dict[str, Any],
        *,
        unmodified_since: datetime | None = None,
        status: int = 404,
    ) -> str:
        """Change one record; return its id."""
        row = self.existing(spec, record_id, status=status)
        _not_converted(spec, row)
        if unmodified_since is not None:
            modified = parse_datetime(row["LastModifiedDate"])
            if modified is not None and modified.replace(microsecond=0) > unmodified_since:
                raise SfError(412, "PRECONDITION_FAILED", "The requested entity has been modified.")
        body = {k: v for k, v in body.items() if k.lower() != "id"}
        changes = self._prepare(spec, body, creating=False)
        merged = {**row, **changes}
        self._check(spec, merged, set(changes), row["Id"])
        self._names(spec, merged, changes)
        changes |= touch(row)
        write_row(self.conn, spec, row["Id"], changes)
        self._log(
            spec, row["Id"], "updated", {"fields": sorted(k for k in body if k != "attributes")}
        )
        return str(row["Id"])

    def upsert(
        self, spec: ObjectSpec, ext: FieldSpec, value: Any, body: dict[str, Any]
    ) -> tuple[str, bool]:
        """Create or update by an external id field; return (id, created)."""
        if ext.name == "Id":
            if value in (None, ""):
                return self.create(spec, {k: v for k, v in body.items() if k.lower() != "id"}), True
            return self.update(spec, value, body, status=400), False
        if value in (None, ""):
            raise SfError(400, "MISSING_ARGUMENT", f"{ext.name} not specified", [ext.name])
        where = '"IsDeleted" = 0 AND ' if spec.field("IsDeleted") else ""
        ids = [
            r[0]
            for r in self.conn.execute(
                f'SELECT "Id" FROM {table_name(spec.name)} WHERE {where}"{ext.name}" = ? LIMIT 2',
                (str(value),),
            )
        ]
        if len(ids) > 1:
            raise SfError(
                300,
                "MULTIPLE_CHOICES",
                f"More than one record found for external id field {ext.name}",
            )
        fields = {k: v for k, v in body.items() if k.lower() != ext.name.lower()}
        if ids:
            return self.update(spec, ids[0], fields), False
        return self.create(spec, {**fields, ext.name: value}), True

    def delete(self, spec: ObjectSpec, record_id: Any, *, status: int = 404) -> str:
        """Move one record to the recycle bin (``IsDeleted = true``); Accounts take their Contacts along."""
        if spec.field("IsDeleted") is None:
            raise SfError(400, "INVALID_TYPE_FOR_OPERATION", "entity type cannot be deleted", [])
        row = self.existing(spec, record_id, status=status)
        self._soft_delete(spec, row, {})
        if spec.name == "Account":
            contact = get_object("Contact")
            assert contact is not None
            for (cid,) in self.conn.execute(
                'SELECT "Id" FROM sf_contact WHERE "AccountId" = ? AND "IsDeleted" = 0',
                (row["Id"],),
            ).fetchall():
                child = fetch_row(self.conn, contact, cid)
                assert child is not None
                self._soft_delete(contact, child, {})
        return str(row["Id"])

    def _soft_delete(self, spec: ObjectSpec, row: dict[str, Any], extra: dict[str, Any]) -> None:
        write_row(self.conn, spec, row["Id"], {"IsDeleted": 1, **extra, **touch(row)})
        self._log(
            spec, row["Id"], "merged" if extra.get("MasterRecordId") else "deleted", extra or None
        )

    def merge(
        self, spec: ObjectSpec, master: dict[str, Any], victim_ids: list[str]
    ) -> dict[str, Any]:
        """SOAP ``merge``: update the master, delete the victims, re-parent their children."""
        if not spec.mergeable:
            raise SfError(400, "INVALID_TYPE", f"Cannot merge records of type {spec.name}", [])
        if not victim_ids:
            raise SfError(
                400, "REQUIRED_FIELD_MISSING", "Required field is missing: recordToMergeIds", []
            )
        if len(victim_ids) > 2:
            raise SfError(
                400, "LIMIT_EXCEEDED", "A maximum of three records can be merged at a time", []
            )
        master_id = normalize_id(str(master.get("Id") or ""))
        if master_id is None:
            raise SfError(400, "MALFORMED_ID", f"bad id {master.get('Id')}", ["Id"])
        master_row = self.existing(spec, master_id, status=400)
        _not_converted(spec, master_row)
        victims = []
        for vid in victim_ids:
            norm = normalize_id(vid)
            if norm == master_id:
                raise SfError(
                    400,
                    "INVALID_ID_FIELD",
                    "The master record id also appears in the merge list",
                    [],
                )
            victims.append(self.existing(spec, vid, status=400))
            _not_converted(spec, victims[-1])
        fields = {k: v for k, v in master.items() if k not in ("Id", "type", "fieldsToNull")}
        for name in master.get("fieldsToNull") or []:
            fields[name] = None
        if fields:
            self.update(spec, master_id, fields, status=400)
        related: list[str] = []
        for victim in victims:
            related += self._reparent(spec, victim["Id"], master_row["Id"])
            self._soft_delete(spec, victim, {"MasterRecordId": master_row["Id"]})
        return {
            "id": master_row["Id"],
            "mergedRecordIds": [v["Id"] for v in victims],
            "updatedRelatedIds": related,
        }

    def _reparent(self, spec: ObjectSpec, old: str, new: str) -> list[str]:
        moves = {
            "Account": [("Contact", "AccountId"), ("Account", "ParentId")],
            "Contact": [("CampaignMember", "ContactId"), ("Contact", "ReportsToId")],
            "Lead": [("CampaignMember", "LeadId")],
        }[spec.name]
        moved: list[str] = []
        for child_name, fk in moves:
            child = get_object(child_name)
            assert child is not None
            for (cid,) in self.conn.execute(
                f'SELECT "Id" FROM {table_name(child_name)} WHERE "{fk}" = ? AND "IsDeleted" = 0',
                (old,),
            ).fetchall():
                row = fetch_row(self.conn, child, cid)
                assert row is not None
                write_row(self.conn, child, cid, {fk: new, **touch(row)})
                self._log(child, cid, "updated", {"fields": [fk], "reparented_from": old})
                moved.append(cid)
        return moved


def object_of(record: dict[str, Any]) -> ObjectSpec | None:
    """The object of a collection record: ``attributes.type``, else its id's key prefix.

    Examples:
        >>> object_of({"attributes": {"type": "Lead"}}).name, object_of({"id": "0035g0000000001AAA"}).name
        ('Lead', 'Contact')
    """
    attrs = record.get("attributes")
    name = attrs.get("type") if isinstance(attrs, dict) else None
    if name:
        return get_object(str(name))
    rid = record.get("id") or record.get("Id")
    return object_for_id(str(rid)) if rid else None


def save_many(
    state: SandboxState,
    request_id: str,
    items: list[Any],
    op: Callable[[Writer, Any], dict[str, Any]],
    *,
    all_or_none: bool,
) -> list[dict[str, Any]]:
    """Run ``op`` on each item in one transaction; return SaveResults in order.

    ``op`` returns the success result (``{"id": ...}``, maybe ``created``) or raises
    SfError. With ``all_or_none``, one failure rolls every record back and the
    others report ``ALL_OR_NONE_OPERATION_ROLLED_BACK``.

    Examples:
        >>> from recon.sandbox.state import SandboxState
        >>> state, account = SandboxState(":memory:"), get_object("Account")
        >>> create = lambda w, body: {"id": w.create(account, body), "_new": True}
        >>> [r["success"] for r in save_many(state, "r1", [{"Name": "A"}, {}], create, all_or_none=False)]
        [True, False]
        >>> save_many(state, "r2", [{"Name": "B"}, {}], create, all_or_none=True)[0]["errors"][0]["statusCode"]
        'ALL_OR_NONE_OPERATION_ROLLED_BACK'
    """
    results: list[dict[str, Any]] = []
    failed = False
    with state.tx() as conn:
        writer = Writer(state, conn, request_id)
        conn.execute("SAVEPOINT sf_batch")
        for n, item in enumerate(items):
            conn.execute(f"SAVEPOINT sf_rec_{n}")
            try:
                ok = op(writer, item)
            except SfError as exc:
                conn.execute(f"ROLLBACK TO sf_rec_{n}")
                conn.execute(f"RELEASE sf_rec_{n}")
                failed = True
                result: dict[str, Any] = {"success": False, "errors": [exc.save_error()]}
                rid = (item.get("id") or item.get("Id")) if isinstance(item, dict) else item
                if rid and isinstance(rid, str):
                    result = {"id": rid, **result}
                results.append(result)
                continue
            conn.execute(f"RELEASE sf_rec_{n}")
            results.append({**ok, "success": True, "errors": []})
        if failed and all_or_none:
            conn.execute("ROLLBACK TO sf_batch")
            results = [r if not r["success"] else _rolled_back(r) for r in results]
        conn.execute("RELEASE sf_batch")
    for r in results:
        r.pop("_new", None)
    return results


def _rolled_back(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not (result.get("_new") or result.get("created")):
        out["id"] = result["id"]
    return out | {"success": False, "errors": [dict(ROLLED_BACK)]}


def _not_converted(spec: ObjectSpec, row: dict[str, Any]) -> None:
    """A converted Lead is history: Salesforce refuses to change (or merge) it."""
    if spec.name == "Lead" and row.get("IsConverted") in (1, True, "true"):
        raise SfError(
            400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", ["Id"]
        )
