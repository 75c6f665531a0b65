"""How review words things for people: scores.

Part of :mod:`recon.review` (import from there). One score format for every place
the app shows a score.
"""

from __future__ import annotations

#: the one printf-style format of a score (``st.column_config`` formats take it as it is)
SCORE_FORMAT = "%.3f"


def format_score(score: float | None) -> str:
    """A match score as review shows it everywhere: three decimals, "—" when there is none.

    Examples:
        >>> format_score(1), format_score(0.87041), format_score(0.9), format_score(None)
        ('1.000', '0.870', '0.900', '—')
    """
    return "—" if score is None else SCORE_FORMAT % float(score)
