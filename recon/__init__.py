"""recon: reconcile a company's HubSpot and Salesforce data.

Pull both CRMs (and CSV exports) into one local SQLite store, match records
across the two systems and find duplicates inside each, review in the browser,
apply approved changes back through audited writers.

The names below are recon's public API (notebooks use only these); everything
else is implementation.
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING

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
    OutputError,
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
    WritesHeld,
)

if TYPE_CHECKING:
    from .audit import export as export_audit
    from .audit import verify as verify_audit
    from .config import ReconConfig, Secret, load_config
    from .insights import (
        audit_report,
        cluster_counts,
        domain_coverage,
        duplicate_estimate,
        fill_rates,
        label_counts,
        records_frame,
        runs_frame,
        status_report,
        threshold_curve,
    )
    from .lock import store_lock
    from .models import Decision, Pair, Record, Tier
    from .pipeline import run_pipeline
    from .plan import approved_items, build_plan
    from .pull import run_pull
    from .store import open_store, store_status, transaction

# everything but the errors loads on first use (pydantic, sqlite-utils with pandas,
# polars, the normalisers), so commands that need little start fast:
# `recon.fill_rates` imports recon.insights when first touched
_LAZY = {
    "ReconConfig": ("config", "ReconConfig"),
    "Secret": ("config", "Secret"),
    "load_config": ("config", "load_config"),
    "store_lock": ("lock", "store_lock"),
    "Decision": ("models", "Decision"),
    "Pair": ("models", "Pair"),
    "Record": ("models", "Record"),
    "Tier": ("models", "Tier"),
    "open_store": ("store", "open_store"),
    "store_status": ("store", "store_status"),
    "transaction": ("store", "transaction"),
    "audit_report": ("insights", "audit_report"),
    "cluster_counts": ("insights", "cluster_counts"),
    "label_counts": ("insights", "label_counts"),
    "runs_frame": ("insights", "runs_frame"),
    "domain_coverage": ("insights", "domain_coverage"),
    "duplicate_estimate": ("insights", "duplicate_estimate"),
    "fill_rates": ("insights", "fill_rates"),
    "records_frame": ("insights", "records_frame"),
    "status_report": ("insights", "status_report"),
    "threshold_curve": ("insights", "threshold_curve"),
    "verify_audit": ("audit", "verify"),
    "export_audit": ("audit", "export"),
    "run_pipeline": ("pipeline", "run_pipeline"),
    "run_pull": ("pull", "run_pull"),
    "build_plan": ("plan", "build_plan"),
    "approved_items": ("plan", "approved_items"),
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'recon' has no attribute {name!r}")


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
    "OutputError",
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
    "WritesHeld",
    "__version__",
    "approved_items",
    "audit_report",
    "build_plan",
    "cluster_counts",
    "domain_coverage",
    "duplicate_estimate",
    "export_audit",
    "fill_rates",
    "label_counts",
    "load_config",
    "open_store",
    "records_frame",
    "run_pipeline",
    "run_pull",
    "runs_frame",
    "status_report",
    "store_lock",
    "store_status",
    "threshold_curve",
    "transaction",
    "verify_audit",
]
