"""One look for every chart: large fonts and clear titles that stay readable on a projector."""

from __future__ import annotations

import plotly.graph_objects as go

BASE_FONT_SIZE = 16
PRESENTATION_FONT_SIZE = 22
# Colour-blind-safe palette (Okabe-Ito), in a fixed order so a technique keeps its colour everywhere.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def styled(figure: go.Figure, title: str, x_title: str | None = None, y_title: str | None = None, height: int = 420, font_size: int = BASE_FONT_SIZE) -> go.Figure:
    figure.update_layout(
        title={"text": title, "font": {"size": font_size + 4}, "yref": "container", "y": 1.0, "yanchor": "top", "pad": {"t": 20}},
        font={"size": font_size},
        height=height,
        margin={"l": 60, "r": 20, "t": 70, "b": 60},
        colorway=PALETTE,
        template="plotly_white",
        # The title hangs from the top edge, inside the top margin; the legend stands on the bottom
        # edge, below the x axis title, and Plotly reserves its rows there (the plot shrinks), so
        # however many entries wrap it never reaches the title or the mode bar's buttons.
        legend={"orientation": "h", "yref": "container", "y": 0.0, "yanchor": "bottom", "xanchor": "left", "x": 0.0},
    )
    if x_title is not None:
        figure.update_xaxes(title_text=x_title)
    if y_title is not None:
        figure.update_yaxes(title_text=y_title)
    return figure


def scale_for_presentation(figure: go.Figure, presentation: bool) -> go.Figure:
    """Bigger fonts and taller charts for projecting; a no-op otherwise."""
    if not presentation:
        return figure
    figure.update_layout(font={"size": PRESENTATION_FONT_SIZE}, height=int((figure.layout.height or 420) * 1.3), legend={"font": {"size": PRESENTATION_FONT_SIZE - 2}})
    # Streamlit's chart theme sets tick, axis-title and legend fonts of its own (12-14 px), which
    # win over layout.font; only sizes set on the axes and the legend themselves show on the page.
    figure.update_xaxes(tickfont={"size": PRESENTATION_FONT_SIZE - 2}, title_font={"size": PRESENTATION_FONT_SIZE})
    figure.update_yaxes(tickfont={"size": PRESENTATION_FONT_SIZE - 2}, title_font={"size": PRESENTATION_FONT_SIZE})
    if figure.layout.title and figure.layout.title.text:
        figure.update_layout(title={"font": {"size": PRESENTATION_FONT_SIZE + 6}})
    return figure
