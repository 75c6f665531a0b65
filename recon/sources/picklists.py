"""Picklist options as the CRM schemas state them: the one reader behind the mapping checks
(:func:`recon.plan_schema.field_info`) and the reading of labelled export files
(:func:`recon.sources.file_labels.option_fields`).

A HubSpot ``enumeration`` property lists its ``options`` (value, label; a ``hidden`` option is
only kept off forms: records hold it and the API takes it, so it is an option like any other);
a single checkbox (``fieldType`` ``booleancheckbox``) is a checkbox, not a picklist. A
Salesforce ``picklist`` or ``multipicklist`` lists its ``picklistValues``; an inactive one
(``active: false``) stays on the records that hold it but can no longer be written.

Examples:
    >>> spec = {"type": "picklist", "picklistValues": [
    ...     {"value": "Open", "label": "Offen"},
    ...     {"value": "Old", "label": "Alt", "active": False}]}
    >>> p = picklist("salesforce", spec)
    >>> sorted(p.values()), sorted(p.values(active_only=True))
    (['Old', 'Open'], ['Open'])
    >>> p.by_label(str.casefold, active_only=True)
    {'offen': 'Open'}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Option", "Picklist", "picklist"]


@dataclass(frozen=True)
class Option:
    """One option of a picklist."""

    value: str
    #: as the schema writes it ("" when it gives none)
    label: str
    #: False: a Salesforce picklist value deactivated (on old records, no longer writable)
    active: bool = True


@dataclass(frozen=True)
class Picklist:
    """A picklist's options in the schema's order."""

    options: tuple[Option, ...]
    #: several options in one value, ``;``-separated (HubSpot checkboxes, multi-select picklists)
    multi: bool = False

    def values(self, *, active_only: bool = False) -> frozenset[str]:
        """The options' internal values (``active_only``: those that can still be written)."""
        return frozenset(o.value for o in self.options if o.active or not active_only)

    def by_label(
        self, fold: Callable[[str], str] = str.casefold, *, active_only: bool = False
    ) -> dict[str, str]:
        """Label, folded with ``fold``, -> value; options without a label are left out (an
        empty label names no option); of two options with one label, the later wins."""
        return {
            fold(o.label): o.value
            for o in self.options
            if o.label and (o.active or not active_only)
        }


def picklist(source: str, spec: Mapping[str, Any]) -> Picklist | None:
    """A HubSpot property's or a Salesforce describe field's options (None: not a picklist).

    Options that are not objects or have no value are skipped (an option ``None`` names
    nothing a record could hold).

    Examples:
        >>> picklist("hubspot", {"type": "enumeration", "fieldType": "booleancheckbox"}) is None
        True
        >>> picklist("hubspot", {"type": "enumeration", "fieldType": "checkbox",
        ...     "options": [{"value": "a", "label": "A", "hidden": True}, {"label": "?"}]})
        Picklist(options=(Option(value='a', label='A', active=True),), multi=True)
    """
    typ = str(spec.get("type") or "")
    if source == "hubspot":
        ftype = str(spec.get("fieldType") or "")
        if typ != "enumeration" or ftype == "booleancheckbox":
            return None
        raw, multi = spec.get("options") or [], ftype == "checkbox"
    else:
        if typ not in ("picklist", "multipicklist"):
            return None
        raw, multi = spec.get("picklistValues") or [], typ == "multipicklist"
    return Picklist(
        options=tuple(
            Option(
                value=str(o["value"]),
                label=str(o.get("label") or ""),
                active=source == "hubspot" or bool(o.get("active", True)),
            )
            for o in raw
            if isinstance(o, Mapping) and o.get("value") is not None
        ),
        multi=multi,
    )
