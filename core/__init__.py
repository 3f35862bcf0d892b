"""Model Efficiency Lab core: every computation the dashboard and the CLI share.

This package never imports streamlit, so each function runs from the CLI, a test or a notebook.
"""

__version__ = "0.1.0"
