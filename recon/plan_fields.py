"""The fields of a record to create on the other side: each create mapping's value, converted.

Only mappings whose rule writes into a blank record on the target side count (the
conflict-rule table with the target blank); text, phones and websites go over stripped, other
kinds through the mapping's conversion (options, owners, flags, numbers), memoised per
raw value; values that cannot be written are counted (``create_field_<problem>``) and
left out, like blanks (the connector's ``[not provided]`` placeholder is a blank).
"""

from __future__ import annotations

from itertools import compress, repeat
from operator import is_not
from typing import TYPE_CHECKING, Any

from .mapping import decide
from .plan_values import NOT_PROVIDED, TEXT_KINDS, norm_fast

if TYPE_CHECKING:
    from .mapping import FieldMap
    from .plan_build import Planner
    from .plan_load import Rec

__all__ = ["fields_for_create"]


def _create_maps(p: Planner, obj: str, sf_obj: str, to: str) -> list[FieldMap]:
    """Mappings whose rule writes into a blank record on side ``to`` (cached per plan)."""
    key = ("create_maps", obj, sf_obj, to)
    if key not in p.cache:
        out = []
        for fm in p.maps.get((obj, sf_obj), ()):
            if to == "salesforce":
                ok = not fm.derived and fm.to_salesforce
                ok = (
                    ok
                    and decide(fm.rule, hs_blank=False, sf_blank=True, equal=False).action
                    == "to_salesforce"
                )
            else:
                ok = fm.derived != "lifecycle" and fm.to_hubspot
                ok = (
                    ok
                    and decide(fm.rule, hs_blank=True, sf_blank=False, equal=False).action
                    == "to_hubspot"
                )
            if ok:
                out.append(fm)
        p.cache[key] = out
    result: list[FieldMap] = p.cache[key]
    return result


_ATOMS = (str, bool, int, float)
_SKIP = object()  # a cached conversion whose value normalises to blank
_MISSING = object()


def _field_plan(
    p: Planner, obj: str, sf_obj: str, to: str
) -> tuple[list[tuple[Any, ...]], list[str], list[tuple[int, Any]]]:
    """Per create mapping ``(fm, target name, text-like)``, the source names, and the
    positions of derived mappings (cached)."""
    key = ("field_plan", obj, sf_obj, to)
    if key not in p.cache:
        maps = _create_maps(p, obj, sf_obj, to)
        p.cache[key] = (
            [
                (fm, fm.salesforce if to == "salesforce" else fm.hubspot, fm.kind in TEXT_KINDS)
                for fm in maps
            ],
            [fm.hubspot if to == "salesforce" else fm.salesforce for fm in maps],
            [(k, fm) for k, fm in enumerate(maps) if fm.derived is not None],
        )
    result: tuple[list[tuple[Any, ...]], list[str], list[tuple[int, Any]]] = p.cache[key]
    return result


def fields_for_create(
    p: Planner,
    rec: Rec,
    obj: str,
    sf_obj: str,
    to: str,
    fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The mapped fields of a record to create on side ``to`` (blank values left out).

    ``fields``: ``rec.fields`` when the caller has them decoded already.
    """
    out: dict[str, Any] = {}
    if fields is None:
        fields = rec.fields
    plan, srcs, derived = _field_plan(p, obj, sf_obj, to)
    raws: list[Any] = list(map(fields.get, srcs))
    for k, dfm in derived:
        raws[k] = p.sf_value(rec, dfm, fields)
    conv: dict[Any, Any] = p.cache.setdefault(("conv", to), {})
    convert = p.to_sf if to == "salesforce" else p.to_hs
    # only the mappings with a value (picked in C: records leave many mapped fields empty)
    for (fm, dst, textlike), raw in compress(
        zip(plan, raws, strict=True), map(is_not, raws, repeat(None))
    ):
        tr = type(raw)
        if textlike and tr is str:
            # text, phones and websites go over stripped (what norm + convert give them); the
            # connector's "[not provided]" is no value (norm's blank), never copied over
            text = raw.strip()
            if text and text != NOT_PROVIDED:
                out.setdefault(dst, text)
            continue
        # options, owners, flags and numbers repeat: convert each raw value once per mapping
        # (a value that cannot be converted is not cached: each occurrence is counted)
        ckey = (id(fm), tr, raw) if tr in _ATOMS else None
        hit = conv.get(ckey, _MISSING) if ckey is not None else _MISSING
        if hit is _SKIP:
            continue
        if hit is not _MISSING:
            out.setdefault(dst, hit)
            continue
        normed = norm_fast(fm.kind, raw)
        if normed is None:
            if ckey is not None:
                conv[ckey] = _SKIP
            continue
        value, problem = convert(fm, normed)
        if problem:
            p.skipped[f"create_field_{problem}"] += 1
            continue
        if ckey is not None:
            conv[ckey] = value
        out.setdefault(dst, value)
    return out
