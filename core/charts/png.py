"""Optional PNG export of a chart, through Plotly's exporter (kaleido) driving a local Chromium.

Neither is a requirement of the app: when one is missing, `png_export_status` says which and how
to add it, and the page shows that sentence instead of a button.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass

import plotly.graph_objects as go

from core.foundation.errors import UserError

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
BROWSER_ENV = "BROWSER_PATH"  # where kaleido's browser finder (choreographer) looks first


@dataclass(frozen=True)
class PngExportStatus:
    available: bool
    reason: str  # why not, in one sentence ("" when available)
    browser: str = ""


def find_browser() -> str:
    configured = os.environ.get(BROWSER_ENV, "")
    if configured and os.path.isfile(configured) and os.access(configured, os.X_OK):
        return configured
    return next((path for path in (shutil.which(name) for name in BROWSER_NAMES) if path), "")


def png_export_status() -> PngExportStatus:
    if importlib.util.find_spec("kaleido") is None:
        return PngExportStatus(
            False,
            "PNG export is unavailable: Plotly's image exporter (the kaleido package) is not installed; `pip install kaleido` and a Chromium (e.g. `apt-get install chromium`) enable it. Every chart's camera button still saves a PNG from the browser.",
        )
    browser = find_browser()
    if not browser:
        return PngExportStatus(
            False,
            "PNG export is unavailable: kaleido is installed but no Chromium or Chrome was found on PATH (or in $BROWSER_PATH); install one (e.g. `apt-get install chromium`). Every chart's camera button still saves a PNG from the browser.",
        )
    return PngExportStatus(True, "", browser)


def figure_png(figure: go.Figure, width: int = 1400, height: int | None = None, scale: float = 2.0) -> bytes:
    """The chart as PNG bytes, or a UserError that says why it cannot be made here."""
    status = png_export_status()
    if not status.available:
        raise UserError(status.reason)
    os.environ.setdefault(BROWSER_ENV, status.browser)
    try:
        return figure.to_image(format="png", width=width, height=height or int(figure.layout.height or 480), scale=scale)
    except Exception as error:  # kaleido and the browser fail in many ways; each is reported, none is fatal
        raise UserError(f"PNG export failed: {type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else 'no detail'}") from None
