"""Presentation mode: larger text, the sidebar tucked away, and one click back.

The sidebar's "Presentation mode" toggle (key PRESENTATION_KEY) switches it on. The CSS targets the
few elements a projected page shows (the title, subheaders, metrics, markdown text) through their
data-testid attributes; the charts scale themselves (core.charts.style.scale_for_presentation). The
sidebar is hidden, not collapsed, so its toggle keeps its state; the way back is the button this
draws at the top of the main area.
"""

from __future__ import annotations

import streamlit as st

from ui.state import PRESENTATION_KEY, presentation_mode

LEAVE_BUTTON_KEY = "presentation_leave"
LEAVE_BUTTON_LABEL = "Leave presentation mode"

# Normal sizes in Streamlit 1.67 (Chromium, 16 px root): h1 44 px, h3 28 px, metric value 36 px,
# metric label 14 px, body text 16 px. Each rule here is larger.
PRESENTATION_CSS = """
<style>
section[data-testid="stSidebar"],
[data-testid="stSidebarCollapseButton"],
[data-testid="stExpandSidebarButton"],
[data-testid="stSidebarCollapsedControl"] { display: none !important; }
[data-testid="stMainBlockContainer"] h1 { font-size: 3.5rem !important; }
[data-testid="stMainBlockContainer"] h2 { font-size: 2.75rem !important; }
[data-testid="stMainBlockContainer"] h3 { font-size: 2.25rem !important; }
[data-testid="stMetricValue"],
[data-testid="stMetricValue"] p { font-size: 3rem !important; }
[data-testid="stMetricLabel"],
[data-testid="stMetricLabel"] p { font-size: 1.25rem !important; }
[data-testid="stMarkdown"] p,
[data-testid="stMarkdown"] li,
[data-testid="stCaptionContainer"] { font-size: 1.25rem !important; }
</style>
"""


def _leave() -> None:
    st.session_state[PRESENTATION_KEY] = False


def apply_presentation_mode() -> None:
    """In presentation mode: the larger-text CSS, the sidebar hidden, and a "Leave presentation
    mode" button at the top of the main area. Nothing in normal mode."""
    if not presentation_mode():
        return
    st.html(PRESENTATION_CSS)  # only a <style>: Streamlit applies it without taking room on the page
    st.button(LEAVE_BUTTON_LABEL, key=LEAVE_BUTTON_KEY, icon=":material/close_fullscreen:", on_click=_leave)
