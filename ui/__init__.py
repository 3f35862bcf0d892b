"""Streamlit-side helpers shared by app.py and the pages (layout only; all computing is in core)."""
