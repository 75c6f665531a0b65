"""Apply benchmark: the kill -9 soak of `recon apply` (see soak_apply.py).

``run(smoke=True)`` kills a tiny apply twice and checks the end state (CI: it must run);
``run(smoke=False)`` is the full soak: ≥ 50 SIGKILLs over a ~1,000-item plan.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak_apply import soak


def run(smoke: bool) -> dict[str, Any]:
    """Figures of the soak: kills, runs, lost, doubled creates, merges, controls changed, seconds."""
    if smoke:
        figures = soak(kills=2, scale=0.03, latency_ms=0, batch=5)
    else:
        figures = soak(kills=55, scale=1.0, latency_ms=40, batch=5)
    assert not (figures["lost"] or figures["doubled_creates"] or figures["merges_lost"]), figures
    return figures
