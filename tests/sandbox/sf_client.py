"""The simple-salesforce client the emulator tests use: the construction of crm_api.md §0.2.

simple-salesforce forces https://; recon's own PlainHTTPAdapter, mounted for exactly the
emulator's https://host:port prefix, sends those requests over http.
"""

from __future__ import annotations

import requests
from simple_salesforce import Salesforce

from recon.sources.sf_auth import PlainHTTPAdapter


def client(url: str, version: str = "59.0") -> Salesforce:
    """A real simple-salesforce client pointed at the emulator serving on ``url``."""
    session = requests.Session()
    session.mount(url.replace("http://", "https://") + "/", PlainHTTPAdapter())
    return Salesforce(
        instance_url=url, session_id="00Dxx!sandbox", session=session, version=version
    )
