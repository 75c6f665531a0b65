"""Streamlit entry: `streamlit run app.py` serves the review page shipped inside the package."""

from recon.app.entry import run_page

run_page()
