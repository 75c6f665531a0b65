"""One reader of schema picklists: the mapping checks and the export-file reading agree."""

from __future__ import annotations

from typing import Any

import pytest

from recon.plan_schema import field_info
from recon.sources.file_labels import option_fields
from recon.sources.picklists import picklist

HS_CHECKBOXES = {
    "name": "products",
    "type": "enumeration",
    "fieldType": "checkbox",
    "options": [
        {"value": "p_a", "label": "Mower"},
        {"value": "p_b", "label": "Hedge Trimmer", "hidden": True},  # off forms, still a value
        {"label": "No value"},  # names nothing a record could hold
        "junk",
    ],
}
SF_PICKLIST = {
    "name": "Status",
    "type": "picklist",
    "updateable": True,
    "picklistValues": [
        {"value": "Open", "label": "Offen", "active": True},
        {"value": "Key", "label": "Großkunde"},  # no "active": active
        {"value": "Old", "label": "Veraltet", "active": False},
        {"value": "Blank", "label": None},
    ],
}


@pytest.mark.parametrize(
    ("source", "obj", "spec"),
    [("hubspot", "contacts", HS_CHECKBOXES), ("salesforce", "Lead", SF_PICKLIST)],
)
def test_mapping_checks_and_files_read_the_same_options(
    source: str, obj: str, spec: dict[str, Any]
) -> None:
    info = field_info(source, spec)
    read = option_fields(source, obj, {obj: [spec]})[spec["name"]]
    picks = picklist(source, spec)
    assert picks is not None
    # files read every option a record may hold; mappings only those that can be written
    assert read.values == picks.values()
    assert info.options == picks.values(active_only=True)
    assert info.options <= read.values and "None" not in read.values
    # labels case folded on both sides (files: lower case too, as polars writes ß)
    assert info.option_labels == picks.by_label(active_only=True)
    assert all(read.by_label[label] == value for label, value in info.option_labels.items())
    assert "" not in read.by_label and "" not in info.option_labels
    assert read.multi == (info.kind == "multi")


def test_hidden_hubspot_options_are_options_and_valueless_ones_are_not() -> None:
    info = field_info("hubspot", HS_CHECKBOXES)
    assert info.options == {"p_a", "p_b"}
    assert info.option_labels == {"mower": "p_a", "hedge trimmer": "p_b"}
    assert info.label_of == {"p_a": "Mower", "p_b": "Hedge Trimmer"}


def test_inactive_salesforce_values_are_read_from_files_but_not_written() -> None:
    read = option_fields("salesforce", "Lead", {"Lead": [SF_PICKLIST]})["Status"]
    assert read.by_label["veraltet"] == "Old" and "Old" in read.values
    assert read.by_label["großkunde"] == read.by_label["grosskunde"] == "Key"
    info = field_info("salesforce", SF_PICKLIST)
    assert info.options == {"Open", "Key", "Blank"}
    assert "veraltet" not in info.option_labels


@pytest.mark.parametrize(
    ("source", "spec"),
    [
        ("hubspot", {"type": "enumeration", "fieldType": "booleancheckbox",
                     "options": [{"value": "true", "label": "Yes"}]}),
        ("hubspot", {"type": "bool", "fieldType": "booleancheckbox"}),
        ("hubspot", {"type": "string", "fieldType": "text"}),
        ("salesforce", {"type": "combobox", "picklistValues": [{"value": "a", "label": "A"}]}),
        ("salesforce", {"type": "boolean"}),
    ],
)  # fmt: skip
def test_checkboxes_and_text_are_no_picklists(source: str, spec: dict[str, Any]) -> None:
    assert picklist(source, spec) is None
    assert field_info(source, {"name": "x", **spec}).options is None
    obj = "contacts" if source == "hubspot" else "Lead"
    assert "x" not in option_fields(source, obj, {obj: [{"name": "x", **spec}]})
