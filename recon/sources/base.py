"""What every source gives recon: records in the canonical shape.

A source (a CRM API, an export file) yields records as polars frames whose columns are
:data:`RECORD_COLUMNS`, the promoted columns of the ``snapshots`` table: pull stores them,
matching reads them. :class:`Source` is the small protocol every source implements.

Examples:
    >>> RECORD_COLUMNS[:3]
    ('source', 'object', 'record_id')
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..models import RECORD_COLUMNS

if TYPE_CHECKING:
    import polars as pl

__all__ = ["RECORD_COLUMNS", "Source", "empty_records"]


@runtime_checkable
class Source(Protocol):
    """A place records come from.

    Attributes:
        source: ``hubspot`` or ``salesforce``: the system the records belong to.
    """

    source: str

    def objects(self) -> tuple[str, ...]:
        """The objects this source can give (``companies``, ``Account``...)."""
        ...

    def pages(self, obj: str) -> Iterator[pl.DataFrame]:
        """The records of ``obj`` as frames with :data:`RECORD_COLUMNS`, page by page."""
        ...


def empty_records() -> pl.DataFrame:
    """An empty frame with the canonical record columns and types.

    Examples:
        >>> empty_records().columns == list(RECORD_COLUMNS)
        True
    """
    import polars as pl

    return pl.DataFrame(
        schema={c: (pl.Int8 if c == "archived" else pl.String) for c in RECORD_COLUMNS}
    )
