"""Describe answers of the Salesforce emulator: ``sobjects/{Object}/describe`` and
the global ``sobjects`` list, built from the object definitions in
:mod:`recon.sandbox.sf_objects` (re-exported here for the other modules).
"""

from __future__ import annotations

from typing import Any

from .sf_objects import (
    CHILD_RELATIONSHIPS,
    OBJECTS,
    TEXT_TYPES,
    FieldSpec,
    ObjectSpec,
    child_relationship,
    get_object,
    label_of,
    object_for_id,
)

__all__ = [
    "OBJECTS",
    "TEXT_TYPES",
    "FieldSpec",
    "ObjectSpec",
    "child_relationship",
    "describe_field",
    "describe_global",
    "describe_object",
    "get_object",
    "object_for_id",
]

#: SOAP type of each field type (describe's ``soapType``)
_SOAP = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}


def describe_field(f: FieldSpec) -> dict[str, Any]:
    """A field as a Salesforce ``DescribeFieldResult``.

    Examples:
        >>> describe_field(get_object("Account").field("Recon_Key__c"))["externalId"]
        True
    """
    t = f.type
    numeric = t in ("int", "double", "currency", "percent")
    label = f.label or label_of(f.name)
    return {
        "aggregatable": t not in ("textarea",),
        "autoNumber": False,
        "byteLength": f.length * 3 if t in TEXT_TYPES else 0,
        "calculated": "k" in f.flags and f.name != "Name",
        "calculatedFormula": None,
        "caseSensitive": False,
        "compoundFieldName": None,
        "controllerName": None,
        "createable": f.createable,
        "custom": f.custom,
        "defaultValue": f.default if t == "boolean" else None,
        "defaultValueFormula": None,
        "defaultedOnCreate": "d" in f.flags or f.default is not None,
        "dependentPicklist": False,
        "digits": 9 if t == "int" else 0,
        "externalId": f.external_id,
        "filterable": t != "textarea" or f.length <= 255,
        "groupable": t not in ("textarea", "double", "currency", "percent", "datetime"),
        "idLookup": "l" in f.flags or t == "id",
        "inlineHelpText": None,
        "label": label,
        "length": 0 if numeric or t in ("boolean", "date", "datetime") else f.length,
        "name": f.name,
        "nameField": "m" in f.flags,
        "nillable": f.nillable,
        "permissionable": f.nillable,
        "picklistValues": [
            {
                "active": True,
                "defaultValue": v == f.default,
                "label": v,
                "validFor": None,
                "value": v,
            }
            for v in f.picklist
        ],
        "precision": 18 if t in ("double", "currency", "percent") else 0,
        "referenceTo": [f.reference_to] if f.reference_to else [],
        "relationshipName": f.relationship,
        "restrictedPicklist": False,
        "scale": 2 if t in ("currency", "percent") else 0,
        "soapType": _SOAP.get(t, "xsd:string"),
        "sortable": t != "textarea" or f.length <= 255,
        "type": t,
        "unique": "q" in f.flags,
        "updateable": f.updateable,
    }


def _urls(name: str, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{name}"
    return {
        "compactLayouts": f"{base}/describe/compactLayouts",
        "rowTemplate": f"{base}/{{ID}}",
        "approvalLayouts": f"{base}/describe/approvalLayouts",
        "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
        "describe": f"{base}/describe",
        "quickActions": f"{base}/quickActions",
        "layouts": f"{base}/describe/layouts",
        "sobject": base,
    }


def _basic(spec: ObjectSpec, version: str) -> dict[str, Any]:
    cm = spec.name == "CampaignMember"
    user = spec.name == "User"
    return {
        "activateable": False,
        "createable": True,
        "custom": False,
        "customSetting": False,
        "deletable": not user,
        "deprecatedAndHidden": False,
        "feedEnabled": not cm,
        "hasSubtypes": False,
        "isSubtype": False,
        "keyPrefix": spec.key_prefix,
        "label": spec.name if not cm else "Campaign Member",
        "labelPlural": spec.label_plural,
        "layoutable": True,
        "mergeable": spec.mergeable,
        "mruEnabled": not cm,
        "name": spec.name,
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": not cm,
        "triggerable": True,
        "undeletable": not user,
        "updateable": True,
        "urls": _urls(spec.name, version),
    }


def _children(spec: ObjectSpec) -> list[dict[str, Any]]:
    out = []
    names = {v: k for k, v in CHILD_RELATIONSHIPS.get(spec.name, {}).items()}
    for other in OBJECTS.values():
        for f in other.fields:
            if f.reference_to == spec.name and f.name not in ("CreatedById", "LastModifiedById"):
                rel = names.get((other.name, f.name))
                out.append(
                    {
                        "cascadeDelete": f.name == "CampaignId",
                        "childSObject": other.name,
                        "deprecatedAndHidden": False,
                        "field": f.name,
                        "relationshipName": rel,
                        "restrictedDelete": False,
                    }
                )
    return out


def describe_object(name: str, version: str = "59.0") -> dict[str, Any]:
    """Salesforce's ``sobjects/{name}/describe`` answer.

    Examples:
        >>> d = describe_object("Account")
        >>> [f["externalId"] for f in d["fields"] if f["name"] == "Recon_Key__c"]
        [True]
    """
    spec = OBJECTS[name]
    out = _basic(spec, version)
    out |= {
        "actionOverrides": [],
        "childRelationships": _children(spec),
        "compactLayoutable": True,
        "fields": [describe_field(f) for f in spec.fields],
        "listviewable": None,
        "lookupLayoutable": None,
        "namedLayoutInfos": [],
        "networkScopeFieldName": None,
        "recordTypeInfos": [
            {
                "active": True,
                "available": True,
                "defaultRecordTypeMapping": True,
                "developerName": "Master",
                "master": True,
                "name": "Master",
                "recordTypeId": "012000000000000AAA",
                "urls": {},
            }
        ],
        "searchLayoutable": True,
        "supportedScopes": [{"label": "All", "name": "everything"}],
        "urls": _urls(spec.name, version),
    }
    return out


def describe_global(version: str = "59.0") -> dict[str, Any]:
    """Salesforce's global ``sobjects`` describe answer."""
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [_basic(o, version) for o in OBJECTS.values()],
    }
