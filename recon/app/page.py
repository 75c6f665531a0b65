"""Streamlit script served by ``recon review``: runs the review page shipped in the package."""

from recon.app.entry import run_page

run_page()
