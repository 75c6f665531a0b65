"""The review app: a thin Streamlit page over :mod:`recon.review`.

``recon review`` serves :data:`PAGE` (the page file inside the installed
package) with ``streamlit run``; ``app.py`` in a checkout runs the same page.
Only this package imports streamlit; the logic lives in :mod:`recon.review`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PAGE"]

#: the script ``streamlit run`` serves
PAGE = Path(__file__).resolve().parent / "page.py"
