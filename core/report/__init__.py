"""The self-contained HTML report and the CSV of the run table (html.py)."""
