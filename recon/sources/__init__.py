"""Sources of records: the CRM APIs and CRM export files, all mapped to the canonical columns.

Import the modules themselves (``recon.sources.files``...); this package stays light so that
reading a file does not import the CRM clients.
"""

from __future__ import annotations

from .base import RECORD_COLUMNS, Source, empty_records

__all__ = ["RECORD_COLUMNS", "Source", "empty_records"]
