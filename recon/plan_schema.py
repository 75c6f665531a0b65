"""Schema checks behind :func:`recon.mapping.check_mappings`.

Reduces HubSpot properties and Salesforce describe fields to value kinds
(:func:`field_info`), checks type compatibility, writability, option values,
multi-value labelled properties and missing fields, and reports every problem
with its key path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .mapping import (
    COMPATIBLE,
    LENIENT_DEFAULTS,
    FieldMap,
    MappingCheck,
    Schemas,
    default_mappings,
    writes_of,
)
from .sources.picklists import picklist
from .writers.hubspot import OPT_OUT_ALL

__all__ = ["FieldInfo", "check", "field_info"]

_HS_STRING_FIELDS = {"text", "textarea", "phonenumber", "html", "file", "calculation_equation"}
_SF_TEXT = {"string", "textarea", "email", "phone", "url", "encryptedstring", "combobox"}
_SF_NUMBER = {"int", "long", "double", "currency", "percent"}
#: read-only to the CRM API, but recon sets them through HubSpot's communication preferences
#: API (opt-outs only: see :class:`recon.writers.hubspot.HubSpotWriter`)
_HS_VIA_SUBSCRIPTIONS = frozenset({OPT_OUT_ALL})
#: HubSpot properties holding several labelled values (cannot be mapped, seed 004)
_HS_MULTI_LABELLED = {
    "hs_additional_emails",
    "hs_additional_phone_numbers",
    "hs_additional_domains",
}


@dataclass(frozen=True)
class FieldInfo:
    """What a schema says about one field, reduced to what mappings need."""

    kind: str  # one of KINDS, or "unknown" / "compound"
    writable: bool
    createable: bool
    options: frozenset[str] | None
    archived: bool = False
    multi_labelled: bool = False
    raw_type: str = ""
    option_labels: Mapping[str, str] = field(default_factory=dict)
    #: HubSpot option value -> its label as written
    label_of: Mapping[str, str] = field(default_factory=dict)


def field_info(source: str, spec: Mapping[str, Any]) -> FieldInfo:
    """Reduce a HubSpot property or a Salesforce describe field to a :class:`FieldInfo`.

    Examples:
        >>> field_info("salesforce", {"name": "Email", "type": "email", "updateable": True}).kind
        'text'
        >>> field_info("hubspot", {"name": "x", "type": "enumeration", "fieldType": "checkbox"}).kind
        'multi'
    """
    if source == "hubspot":
        typ = str(spec.get("type") or "")
        ftype = str(spec.get("fieldType") or "")
        name = str(spec.get("name") or "")
        kind = "unknown"
        if (
            name == "hubspot_owner_id"
            or str(spec.get("referencedObjectType") or "").upper() == "OWNER"
        ):
            kind = "owner"
        elif (
            typ == "string" and (ftype in _HS_STRING_FIELDS or not ftype)
        ) or typ == "phone_number":
            kind = "text"
        elif typ == "number":
            kind = "number"
        elif typ in ("date", "datetime"):
            kind = typ
        elif typ == "bool" or (typ == "enumeration" and ftype == "booleancheckbox"):
            kind = "bool"
        elif typ == "enumeration":
            kind = "multi" if ftype == "checkbox" else "enum"
        meta = spec.get("modificationMetadata") or {}
        writable = name in _HS_VIA_SUBSCRIPTIONS or (
            not meta.get("readOnlyValue", False) and not spec.get("calculated", False)
        )
        picks = picklist(source, spec)
        return FieldInfo(
            kind=kind,
            writable=writable,
            createable=writable,
            options=picks.values() if picks is not None and kind in ("enum", "multi") else None,
            archived=bool(spec.get("archived", False)),
            multi_labelled=name in _HS_MULTI_LABELLED
            or typ == "object_coordinates"
            or bool(spec.get("multiValued") or spec.get("hasMultipleValues")),
            raw_type=f"{typ}/{ftype}",
            option_labels=picks.by_label() if picks is not None else {},
            label_of={o.value: o.label for o in picks.options} if picks is not None else {},
        )
    typ = str(spec.get("type") or "")
    kind = "unknown"
    if typ in _SF_TEXT:
        kind = "text"
    elif typ in _SF_NUMBER:
        kind = "number"
    elif typ in ("date", "datetime"):
        kind = typ
    elif typ == "boolean":
        kind = "bool"
    elif typ == "picklist":
        kind = "enum"
    elif typ == "multipicklist":
        kind = "multi"
    elif typ == "reference":
        kind = "owner" if "User" in (spec.get("referenceTo") or []) else "reference"
    elif typ == "id":
        kind = "reference"
    elif typ in ("address", "location"):
        kind = "compound"
    # only active values can be written: an inactive one is neither an option nor a label's
    # value here (a file's record may still hold it: see recon.sources.file_labels)
    sf_picks = picklist(source, spec)
    options = (
        sf_picks.values(active_only=True)
        if sf_picks is not None and kind in ("enum", "multi")
        else None
    )
    return FieldInfo(
        kind=kind,
        writable=bool(spec.get("updateable", False)) and not spec.get("calculated", False),
        createable=bool(spec.get("createable", False)),
        options=options,
        archived=bool(spec.get("deprecatedAndHidden", False)),
        multi_labelled=kind == "compound",
        raw_type=typ,
        option_labels=sf_picks.by_label(active_only=True) if sf_picks is not None else {},
    )


def _index(schemas: Schemas | None) -> dict[tuple[str, str], dict[str, FieldInfo]]:
    out: dict[tuple[str, str], dict[str, FieldInfo]] = {}
    for (source, obj), fields in (schemas or {}).items():
        out[(source, obj)] = {str(f.get("name")): field_info(source, f) for f in fields}
    return out


#: the rule a default mapping has unless it carries its own (see ``default_rule``)
_BUILT_IN_RULE = FieldMap.__dataclass_fields__["rule"].default


def _custom_maps(section: Any) -> list[tuple[int, FieldMap]]:
    out = []
    for i, fm in enumerate(section.fields):
        sf_objects = (
            [fm.salesforce_object]
            if fm.salesforce_object
            else (["Account"] if fm.object == "companies" else ["Lead", "Contact"])
        )
        for sf_object in sf_objects:
            out.append(
                (
                    i,
                    FieldMap(
                        fm.object,
                        fm.hubspot,
                        fm.salesforce,
                        sf_object,
                        rule=fm.rule or section.default_rule,
                        default=False,
                        kind="text",
                        options=dict(fm.options),
                        label=fm.hubspot,
                    ),
                )
            )
    return out


def check(section: Any, schemas: Schemas | None = None) -> MappingCheck:
    """The body of :func:`recon.mapping.check_mappings` (see there).

    Examples:
        >>> from recon.config import MappingSection
        >>> check(MappingSection()).errors
        []
    """
    index = _index(schemas)
    errors: list[tuple[str, str]] = []
    warnings: list[tuple[str, str]] = []
    defaults = default_mappings(
        campaign_property=section.campaign_property, lifecycle=section.lifecycle_to_company
    )
    customs = _custom_maps(section)
    # the default mappings follow default_rule, but for those with a rule of their own
    # (the connector's one-way extras: lifecycle stage, campaigns)
    defaults = [
        replace(m, rule=section.default_rule) if m.rule == _BUILT_IN_RULE else m for m in defaults
    ]
    by_pair = {(m.object, m.salesforce_object, m.hubspot, m.salesforce): m for m in defaults}
    overrides: dict[int, tuple[str, FieldMap]] = {}
    extra: list[tuple[str, FieldMap]] = []
    for i, fm in customs:
        key = (fm.object, fm.salesforce_object, fm.hubspot, fm.salesforce)
        path = f"mapping.fields[{i}]"
        if key in by_pair:  # a custom entry naming a default pair overrides its rule and options
            base = by_pair[key]
            if id(base) in overrides and overrides[id(base)][0] != path:
                errors.append(
                    (
                        path,
                        f"{fm.object}.{fm.hubspot} ⇄ {fm.salesforce_object}.{fm.salesforce} is "
                        f"mapped twice (also at {overrides[id(base)][0]}): keep one entry",
                    )
                )
                continue
            given = section.fields[i].rule  # an entry that sets options only keeps the rule
            overrides[id(base)] = (
                path,
                replace(base, rule=given or base.rule, options={**base.options, **fm.options}),
            )
        else:
            extra.append((path, fm))
    # a default a [[mapping.fields]] entry changes is reported at that entry
    candidates: list[tuple[str, FieldMap]] = [
        overrides.get(id(m), (m.path, m)) for m in defaults
    ] + extra
    # options written into an entry for a default pair are the user's: wrong ones are errors
    user_options = {
        path for i, _fm in customs
        if (path := f"mapping.fields[{i}]") in {p for p, _ in overrides.values()}
        and section.fields[i].options
    }  # fmt: skip
    # rules from [mapping] rules
    keys = {m.key for _, m in candidates}
    for key in section.rules:
        if key not in keys:
            errors.append(
                (f"mapping.rules.{key}", f"no mapping for {key!r}; keys look like 'contacts.email'")
            )
    # a rule set both at a [[mapping.fields]] entry and in [mapping] rules, differently: which
    # one is meant cannot be told (the rules key used to win without a word)
    given = {f"mapping.fields[{i}]": section.fields[i].rule for i, _fm in customs}
    for path, m in candidates:
        entry_rule, key_rule = given.get(path), section.rules.get(m.key)
        if entry_rule and key_rule and entry_rule != key_rule:
            errors.append(
                (
                    path,
                    f"rule {entry_rule!r} here, but mapping.rules.{m.key} says {key_rule!r}: "
                    "keep one",
                )
            )
    candidates = [(p, replace(m, rule=section.rules.get(m.key, m.rule))) for p, m in candidates]
    # mapped twice
    seen_hs: dict[tuple[str, str, str], str] = {}
    seen_sf: dict[tuple[str, str], str] = {}
    usable: list[FieldMap] = []
    for path, m in candidates:
        problems: list[str] = []
        hs_key = (m.object, m.salesforce_object, m.hubspot)
        sf_key = (m.salesforce_object, m.salesforce.casefold())  # "title" is Title
        if hs_key in seen_hs:
            problems.append(
                f"HubSpot property {m.object}.{m.hubspot} is mapped twice for "
                f"{m.salesforce_object} (also at {seen_hs[hs_key]})"
            )
        if sf_key in seen_sf and not m.derived:
            problems.append(
                f"Salesforce field {m.salesforce_object}.{m.salesforce} is mapped twice "
                f"(also at {seen_sf[sf_key]})"
            )
        seen_hs.setdefault(hs_key, path)
        seen_sf.setdefault(sf_key, path)
        direction = getattr(section, m.object)
        # a rule the user set on a default pair (at its entry or in [mapping] rules) is the
        # user's: a read-only side it writes is an error, as for a custom mapping
        user_rule = bool(given.get(path)) or m.key in section.rules
        m, schema_problems, narrowed = _check_schema(m, index, direction, user_rule=user_rule)
        problems += schema_problems
        if path in given and m.kind in ("enum", "multi"):
            narrowed += _many_to_one(section.fields[int(path[15:-1])].options)
        if m.derived == "campaigns" and problems:
            # the campaign property is the user's choice ([mapping] campaign_property): a
            # wrong one is an error there, not a default quietly switched off
            errors.extend(("mapping.campaign_property", p) for p in problems)
        elif m.default and path in user_options and problems:
            errors.extend((path, p) for p in problems)
        elif m.default and (written := [p for p in problems if p.startswith(_READ_ONLY)]):
            # only the user's rule can write a read-only side (other problems of a default,
            # such as a field the CRM lacks, still only disable it)
            at = path if path in given or m.key not in section.rules else f"mapping.rules.{m.key}"
            errors.extend((at, p) for p in written)
        elif m.default:
            for p in problems:
                warnings.append((path, p + " (this default mapping is disabled)"))
            warnings.extend((path, n) for n in narrowed)
            if not problems:
                usable.append(m)
        else:
            errors.extend((path, p) for p in problems)
            if not problems:
                # what narrows a custom mapping (read-only side, ignored options, a rule that
                # never writes) is said too
                warnings.extend((path, n) for n in narrowed)
                usable.append(m)
    for source, obj in _needed_schemas(candidates):
        if index and (source, obj) not in index:
            warnings.append(
                (
                    f"schemas.{source}.{obj}",
                    "no schema stored; mappings not checked (run `recon pull`)",
                )
            )
    # a contacts mapping without salesforce_object is checked for Leads and for Contacts: a
    # problem of its HubSpot side is the same line twice (said once)
    return MappingCheck(usable, list(dict.fromkeys(errors)), list(dict.fromkeys(warnings)))


def _needed_schemas(candidates: list[tuple[str, FieldMap]]) -> set[tuple[str, str]]:
    out = set()
    for _, m in candidates:
        out.add(("hubspot", m.object))
        out.add(("salesforce", m.salesforce_object))
    return out


def _many_to_one(options: dict[str, str]) -> list[str]:
    """Warnings for options a person wrote that map several HubSpot values to one
    Salesforce value: the way back takes the first of them (in order).

    Examples:
        >>> _many_to_one({"B": "x", "A": "x", "C": "y"})[0][:33]
        "options map 'A', 'B' to 'x': a Sa"
    """
    shared: dict[str, list[str]] = {}
    for hs_value, sf_value in sorted(options.items()):
        shared.setdefault(sf_value, []).append(hs_value)
    return [
        f"options map {', '.join(map(repr, hs_values))} to {sf_value!r}: a Salesforce "
        f"{sf_value!r} is written to HubSpot as {hs_values[0]!r} (a HubSpot value among them "
        "is left as it is); map one of them only if another is meant"
        for sf_value, hs_values in shared.items()
        if len(hs_values) > 1
    ]


_READ_ONLY = "read-only target"


def _check_schema(
    m: FieldMap,
    index: dict[tuple[str, str], dict[str, FieldInfo]],
    direction: str,
    *,
    user_rule: bool = False,
) -> tuple[FieldMap, list[str], list[str]]:
    """Check one mapping against the schemas; return it with kinds/options filled in.

    ``user_rule``: the rule of a default mapping was set by the user (a read-only side it
    writes is then a problem, as for a custom mapping)."""
    problems: list[str] = []
    narrowed: list[str] = []
    hs_schema = index.get(("hubspot", m.object))
    sf_schema = index.get(("salesforce", m.salesforce_object))
    hs = hs_schema.get(m.hubspot) if hs_schema is not None else None
    sf = sf_schema.get(m.salesforce) if sf_schema is not None and not m.derived else None
    if sf is None and sf_schema is not None and not m.derived:
        # Salesforce field names are case-insensitive ("founded__c" is "Founded__c"): the
        # mapping takes describe's spelling (the API answers with it)
        spelt = next((n for n in sf_schema if n.casefold() == m.salesforce.casefold()), None)
        if spelt is not None:
            m, sf = replace(m, salesforce=spelt), sf_schema[spelt]
    if hs_schema is not None and (hs is None or hs.archived):
        problems.append(
            f"missing field: HubSpot {m.object} has no property {m.hubspot!r} (deleted, archived or not visible)"
        )
    if sf_schema is not None and not m.derived and (sf is None or sf.archived):
        problems.append(
            f"missing field: Salesforce {m.salesforce_object} has no field {m.salesforce!r} "
            "(deleted or hidden from the integration user)"
        )
    for side, info, name in (("HubSpot", hs, m.hubspot), ("Salesforce", sf, m.salesforce)):
        if info is None:
            continue
        if info.multi_labelled:
            problems.append(f"{side} {name!r} holds several labelled values and cannot be mapped")
        elif info.kind in ("unknown", "compound"):
            problems.append(
                f"{side} {name!r} has type {info.raw_type!r}, which recon cannot sync "
                "(unsupported or inconsistently reported type)"
            )
    kind = m.kind
    if hs is not None and sf is not None and not problems:
        pair = (hs.kind, sf.kind)
        if pair not in COMPATIBLE and not (m.default and pair in LENIENT_DEFAULTS):
            problems.append(
                f"incompatible types: HubSpot {m.hubspot!r} is {hs.kind} ({hs.raw_type}), "
                f"Salesforce {m.salesforce!r} is {sf.kind} ({sf.raw_type})"
            )
        kind = hs.kind if hs.kind != "text" else sf.kind if sf.kind == "reference" else "text"
        if pair in LENIENT_DEFAULTS:
            kind = "enum" if "enum" in pair else "number"
        if {hs.kind, sf.kind} <= {"date", "datetime"}:
            kind = "date" if "date" in (hs.kind, sf.kind) else "datetime"
        if kind == "text" and sf.raw_type in ("phone", "url"):
            kind = sf.raw_type  # compared as phone numbers or websites, written as text
        elif kind == "text" and m.kind == "country":
            kind = "country"  # text the mapping holds a country: compared as countries
    elif (
        # a derived value is the HubSpot property's kind (its Salesforce side is computed);
        # both sides known reach here only with problems, which take this branch out
        (known := hs if m.derived or sf is None else sf) is not None
        and not problems
        and (m.derived or not m.default)
    ):
        # one system's schema is not stored (its records were only loaded from export files,
        # which carry none): the field known says what a custom mapping's values are, so a
        # file's "No" or "1,000" is compared with the API's false or 1000 as a checkbox or a
        # number (as text, every format-only difference was a change); a default mapping
        # keeps its own kind
        kind = known.kind
        if kind == "text" and sf is not None and sf.raw_type in ("phone", "url"):
            kind = sf.raw_type
    to_sf, to_hs = m.to_salesforce, m.to_hubspot
    writes = writes_of(m.rule, direction)
    # checked whatever else is wrong with the entry: every problem is reported at once
    for side, info, allowed, name in (
        ("salesforce", sf, to_sf, m.salesforce),
        ("hubspot", hs, to_hs, m.hubspot),
    ):
        if info is None or info.writable:
            continue
        if (not m.default or user_rule) and side in writes:
            problems.append(
                f"{_READ_ONLY}: {side} {name!r} cannot be written but rule {m.rule!r} "
                f"writes to {side}; use a rule that only reads it"
            )
        elif allowed:
            narrowed.append(f"{side} {name!r} is read-only: syncs into the other system only")
    if sf is not None and not sf.writable:
        to_sf = False
    if hs is not None and not hs.writable:
        to_hs = False
    effective = writes & {s for s, a in (("salesforce", to_sf), ("hubspot", to_hs)) if a}
    if writes and not effective and m.rule != "dont_sync" and not problems:
        # the rule writes only where this mapping may not: a rule that looks set but never syncs
        one_way = "salesforce" if to_sf else "hubspot" if to_hs else None
        narrowed.append(
            f"rule {m.rule!r} writes only to {' and '.join(sorted(writes))}, which this mapping "
            + (f"does not write (it syncs into {one_way} only)" if one_way else "cannot write")
            + ": it never syncs; pick a rule that writes to "
            + (one_way or "a writable side")
        )
    if m.options and kind not in ("enum", "multi") and hs is not None and sf is not None:
        narrowed.append(
            f"options are given but {m.hubspot!r} ⇄ {m.salesforce!r} is {kind}, not a picklist: "
            "they are ignored"
        )
    options = dict(m.options)
    hs_opts = hs.options if hs is not None else None
    sf_opts = sf.options if sf is not None else None
    if m.derived == "campaigns" and kind in ("enum", "multi") and hs is not None:
        # campaign names have no Salesforce picklist to pair options with: an option whose
        # label is a campaign's name takes it (as identical and same-label options do)
        for value, label in hs.label_of.items():
            if value not in options and label:
                options[value] = label
    if kind in ("enum", "multi") and not problems and hs is not None and sf is not None:
        problems += _check_options(
            m,
            options,
            hs,
            sf,
            writes & {s for s, a in (("salesforce", to_sf), ("hubspot", to_hs)) if a},
        )
    m = replace(
        m,
        kind=kind,
        to_salesforce=to_sf,
        to_hubspot=to_hs,
        options=options,
        hs_options=hs_opts,
        sf_options=sf_opts,
        sf_type=sf.raw_type if sf is not None else m.sf_type,
    )
    return m, problems, narrowed


def _check_options(
    m: FieldMap, options: dict[str, str], hs: FieldInfo, sf: FieldInfo, writes: set[str]
) -> list[str]:
    """Check the option-value mapping; fill in identical / same-label options (mutates ``options``)."""
    problems = []
    hs_opts, sf_opts = hs.options or frozenset(), sf.options or frozenset()
    for hv, sv in sorted(m.options.items()):
        if hs_opts and hv not in hs_opts:
            problems.append(f"option {hv!r} does not exist on HubSpot {m.hubspot!r}")
        if sf_opts and sv not in sf_opts:
            problems.append(
                f"option {sv!r} does not exist on Salesforce {m.salesforce_object}.{m.salesforce}"
            )
    sf_by_fold = {v.casefold(): v for v in sf_opts}
    for hv in sorted(hs_opts):
        if hv in options:
            continue
        hit = sf_by_fold.get(hv.casefold())
        if hit is None:
            label = next((lab for lab, val in hs.option_labels.items() if val == hv), "")
            hit = sf_by_fold.get(label) or sf.option_labels.get(label)
        if hit is not None:
            options[hv] = hit
    if m.default:
        return problems  # unmapped options of a default surface as review items at plan time
    mapped_sf = set(options.values())
    if "salesforce" in writes:
        missing = sorted(hv for hv in hs_opts if hv not in options)
        if missing:
            problems.append(
                f"HubSpot option(s) {', '.join(map(repr, missing))} of {m.hubspot!r} have no value on "
                f"Salesforce {m.salesforce_object}.{m.salesforce}; add them to options"
            )
    if "hubspot" in writes:
        missing = sorted(sv for sv in sf_opts if sv not in mapped_sf)
        if missing:
            problems.append(
                f"Salesforce value(s) {', '.join(map(repr, missing))} of {m.salesforce_object}.{m.salesforce} "
                f"have no HubSpot option on {m.hubspot!r}; add them to options"
            )
    return problems
