"""Dry-run writer: records what would be sent, sends nothing, spends no API calls.

Examples:
    >>> from recon.writers import Op
    >>> w = DryRunWriter("hubspot")
    >>> [o.ok for o in w.write([Op("a", "update", "companies", "1", {"name": "x"})])]
    [True]
    >>> len(w.sent), w.budget.calls
    (1, 0)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from . import CallBudget, Op, Outcome, RecordState

__all__ = ["DryRunWriter"]


class DryRunWriter:
    """A writer for ``recon apply --dry-run``: every op succeeds on paper.

    Args:
        system: ``hubspot`` or ``salesforce``.
        batch_size: batch size to simulate (the real writer's maximum).
    """

    def __init__(self, system: str, *, batch_size: int = 100) -> None:
        self.system = system
        self.budget = CallBudget(system)
        self.batch_size = batch_size
        self.sent: list[Op] = []
        self.batches = 0

    def max_batch(self, kind: str) -> int:
        """Same batch sizes as the real writer, so the dry run shows the real call count."""
        return 1 if kind == "merge" else self.batch_size

    def prepare(self, objects: Iterable[str]) -> None:
        """Nothing to prepare."""

    def record_link(self, obj: str, record_id: str | None) -> str | None:
        """No links in a dry run."""
        return None

    def write(self, ops: Sequence[Op]) -> list[Outcome]:
        """Record the ops; each succeeds (creates get no id)."""
        self.sent.extend(ops)
        self.batches += 1
        return [Outcome(op.ref, True, op.record_id) for op in ops]

    def current(
        self, obj: str, record_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, RecordState]:
        """Nothing is read in a dry run."""
        return {}

    def find_created(self, obj: str, ops: Sequence[Op]) -> dict[str, str]:
        """Nothing was created."""
        return {}

    def merged_away(self, obj: str, record_ids: Sequence[str]) -> set[str]:
        """Nothing was merged."""
        return set()
