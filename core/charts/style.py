"""One look for every chart: large fonts and clear titles that stay readable on a projector."""

from __future__ import annotations

from functools import lru_cache

import plotly.graph_objects as go
import plotly.io as pio

BASE_FONT_SIZE = 16
PRESENTATION_FONT_SIZE = 22
# Colour-blind-safe palette (Okabe-Ito), in a fixed order so a technique keeps its colour everywhere.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


# The trace types our charts draw that plotly_white styles (Image, Sunburst and Waterfall have no
# entries in it), and the layout parts of it we never use (no polar, ternary, 3-D or map plots).
TEMPLATE_TRACES = ("bar", "heatmap", "scatter")
UNUSED_LAYOUT_PARTS = ("polar", "ternary", "scene", "geo")


@lru_cache(maxsize=1)
def chart_template() -> go.layout.Template:
    """plotly_white, cut to what our charts use: every figure carries its template and Plotly
    validates (deep-copies) it per figure, so the full one (30 trace types) was a third of a
    Pruning slider move's server time. Our charts look the same with either."""
    full = pio.templates["plotly_white"]
    layout = {name: value for name, value in full.layout.to_plotly_json().items() if name not in UNUSED_LAYOUT_PARTS}
    data = {name: value for name, value in full.data.to_plotly_json().items() if name in TEMPLATE_TRACES}
    return go.layout.Template(layout=layout, data=data)


def style_layout(title: str, height: int = 420, font_size: int = BASE_FONT_SIZE) -> dict:
    """The layout every chart shares, as one dict: a builder that makes its figure in one step
    (go.Figure(data, layout)) validates it once, which is several times cheaper than a chain of
    update calls when a slider redraws a chart for thirty students."""
    return {
        "title": {"text": title, "font": {"size": font_size + 4}, "yref": "container", "y": 1.0, "yanchor": "top", "pad": {"t": 20}},
        "font": {"size": font_size},
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 70, "b": 60},
        "colorway": PALETTE,
        "template": chart_template(),
        # The title hangs from the top edge, inside the top margin; the legend stands on the bottom
        # edge, below the x axis title, and Plotly reserves its rows there (the plot shrinks), so
        # however many entries wrap it never reaches the title or the mode bar's buttons.
        "legend": {"orientation": "h", "yref": "container", "y": 0.0, "yanchor": "bottom", "xanchor": "left", "x": 0.0},
    }


def styled(figure: go.Figure, title: str, x_title: str | None = None, y_title: str | None = None, height: int = 420, font_size: int = BASE_FONT_SIZE) -> go.Figure:
    layout = style_layout(title, height, font_size)
    single_axes = "xaxis2" not in figure.layout and "yaxis2" not in figure.layout
    if single_axes:  # one layout update names the axis titles too
        if x_title is not None:
            layout["xaxis_title_text"] = x_title
        if y_title is not None:
            layout["yaxis_title_text"] = y_title
    figure.update_layout(**layout)
    if not single_axes and x_title is not None:
        figure.update_xaxes(title_text=x_title)
    if not single_axes and y_title is not None:
        figure.update_yaxes(title_text=y_title)
    return figure


def styled_figure(traces: list, title: str, x_title: str | None = None, y_title: str | None = None, height: int = 420, **layout) -> go.Figure:
    """A figure made in one step: the traces, the shared style and any further layout (Plotly's
    magic underscores work, e.g. xaxis_range), validated once."""
    merged = style_layout(title, height)
    if x_title is not None:
        merged["xaxis_title_text"] = x_title
    if y_title is not None:
        merged["yaxis_title_text"] = y_title
    merged.update(layout)
    return go.Figure(data=traces, layout=merged)


def grid_axes(rows: int, columns: int, titles: list[str], horizontal_spacing: float, vertical_spacing: float, title_font_size: int = BASE_FONT_SIZE) -> dict:
    """The layout entries of a rows x columns grid of plots (axes xaxis, xaxis2, ... with their
    domains, and one title annotation above each), as plotly.subplots.make_subplots lays them out,
    for builders that make their figure in one step."""
    width = (1.0 - horizontal_spacing * (columns - 1)) / columns
    height = (1.0 - vertical_spacing * (rows - 1)) / rows
    layout: dict = {"annotations": []}
    for index in range(rows * columns):
        row, column = divmod(index, columns)
        left = column * (width + horizontal_spacing)
        top = 1.0 - row * (height + vertical_spacing)
        suffix = "" if index == 0 else str(index + 1)
        layout[f"xaxis{suffix}"] = {"anchor": f"y{suffix}", "domain": [left, left + width]}
        layout[f"yaxis{suffix}"] = {"anchor": f"x{suffix}", "domain": [max(0.0, top - height), top]}
        if index < len(titles):
            layout["annotations"].append(
                {
                    "text": titles[index],
                    "font": {"size": title_font_size},
                    "showarrow": False,
                    "x": left + width / 2,
                    "xanchor": "center",
                    "xref": "paper",
                    "y": top,
                    "yanchor": "bottom",
                    "yref": "paper",
                }
            )
    return layout


def scale_for_presentation(figure: go.Figure, presentation: bool) -> go.Figure:
    """Bigger fonts and taller charts for projecting, on a copy (the figure may be one that every
    session's page shares from a cache); the figure itself otherwise."""
    if not presentation:
        return figure
    figure = go.Figure(figure)
    figure.update_layout(font={"size": PRESENTATION_FONT_SIZE}, height=int((figure.layout.height or 420) * 1.3), legend={"font": {"size": PRESENTATION_FONT_SIZE - 2}})
    # Streamlit's chart theme sets tick, axis-title and legend fonts of its own (12-14 px), which
    # win over layout.font; only sizes set on the axes and the legend themselves show on the page.
    figure.update_xaxes(tickfont={"size": PRESENTATION_FONT_SIZE - 2}, title_font={"size": PRESENTATION_FONT_SIZE})
    figure.update_yaxes(tickfont={"size": PRESENTATION_FONT_SIZE - 2}, title_font={"size": PRESENTATION_FONT_SIZE})
    if figure.layout.title and figure.layout.title.text:
        figure.update_layout(title={"font": {"size": PRESENTATION_FONT_SIZE + 6}})
    return figure
