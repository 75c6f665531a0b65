"""recon: reconcile a company's HubSpot and Salesforce data.

Pull both CRMs (and CSV exports) into one local SQLite store, match records
across the two systems and find duplicates inside each, review in the browser,
apply approved changes back through audited writers.

The names below are recon's public API (notebooks use only these); everything
else is implementation.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .config import ReconConfig, Secret, load_config
from .errors import (
    ApplyError,
    AuditError,
    AuthError,
    BudgetExhausted,
    ConfigError,
    ErrorClass,
    ExitCode,
    FileFormatError,
    LockedError,
    MappingError,
    MatchError,
    MissingField,
    PartialFailure,
    PlanError,
    RateLimited,
    ReconError,
    ReviewerConflict,
    ReviewError,
    SourceError,
    StaleRecord,
    StoreError,
    UsageError,
)
from .lock import store_lock
from .models import Decision, Pair, Record, Tier
from .store import open_store, store_status, transaction

__all__ = [
    "ApplyError",
    "AuditError",
    "AuthError",
    "BudgetExhausted",
    "ConfigError",
    "Decision",
    "ErrorClass",
    "ExitCode",
    "FileFormatError",
    "LockedError",
    "MappingError",
    "MatchError",
    "MissingField",
    "Pair",
    "PartialFailure",
    "PlanError",
    "RateLimited",
    "ReconConfig",
    "ReconError",
    "Record",
    "ReviewError",
    "ReviewerConflict",
    "Secret",
    "SourceError",
    "StaleRecord",
    "StoreError",
    "Tier",
    "UsageError",
    "__version__",
    "load_config",
    "open_store",
    "store_lock",
    "store_status",
    "transaction",
]
