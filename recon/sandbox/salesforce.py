"""The Salesforce REST emulator (plus the SOAP ``merge`` call) of ``recon.sandbox``.

What the state and the server use: :func:`init_schema` (tables, called by
:class:`~recon.sandbox.state.SandboxState`), :func:`load_records` (bulk seeding by
the demo generator and tests), :func:`admin_edit` (a CRM user's edit) and
:func:`routes` (the Starlette routes the server mounts).

Implementation modules: ``sf_objects`` (the sObject types as data) and ``sf_describe``
(describe answers), ``soql`` + ``soql.lark`` + ``sf_soql_ast`` (the SOQL parser),
``sf_query`` (SOQL to SQL), ``sf_store`` (tables, ids, timestamps), ``sf_write``
(validated writes and SaveResults), ``sf_rest`` (REST plumbing, query, describe,
limits), ``sf_sobjects`` (sObject rows and collections), ``sf_bulk`` and ``sf_ingest``
(Bulk API 2.0 query and ingest jobs), ``sf_soap`` (OAuth token, identity, SOAP merge),
``sf_common`` (errors, ids, timestamps, date literals).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .sf_store import API_USER_ID, DEFAULT_USERS, admin_edit, init_schema, load_records

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from .state import SandboxState

__all__ = ["API_USER_ID", "DEFAULT_USERS", "admin_edit", "init_schema", "load_records", "routes"]


def routes(state: SandboxState) -> list[BaseRoute]:
    """The Starlette routes of the Salesforce emulator, mounted by the sandbox server.

    Examples:
        >>> from recon.sandbox.state import SandboxState
        >>> len(routes(SandboxState(":memory:"))) > 20
        True
    """
    from .sf_rest import routes as _routes

    return _routes(state)
