"""AppTest of presentation mode: its CSS and one button back, in the main area; nothing otherwise."""

from streamlit.testing.v1 import AppTest

from tests.conftest import REPO_ROOT
from ui.presentation import LEAVE_BUTTON_KEY, LEAVE_BUTTON_LABEL
from ui.state import PRESENTATION_KEY


def leave_buttons(at: AppTest) -> list:
    return [button for button in at.main.button if button.key == LEAVE_BUTTON_KEY]


def presentation_css(at: AppTest) -> list[str]:
    return [html.proto.body for html in at.get("html") if 'data-testid="stSidebar"' in html.proto.body]


def test_presentation_mode_offers_one_button_back_that_turns_it_off(session_workspace):
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=180)
    at.run()
    assert not at.exception
    assert not leave_buttons(at) and not presentation_css(at)  # normal mode
    at.toggle(key=PRESENTATION_KEY).set_value(True).run()
    assert not at.exception
    [leave] = leave_buttons(at)
    assert leave.label == LEAVE_BUTTON_LABEL
    [css] = presentation_css(at)
    assert "[class*='st-']" not in css and 'data-testid="stMetricValue"' in css
    leave.click().run()
    assert not at.exception
    assert at.session_state[PRESENTATION_KEY] is False
    assert at.toggle(key=PRESENTATION_KEY).value is False
    assert not leave_buttons(at) and not presentation_css(at)


def test_presentation_charts_set_their_own_tick_and_legend_fonts():
    """Streamlit's chart theme draws ticks at 12 px whatever layout.font says; presentation mode
    sets the axes' and the legend's fonts themselves (the browser test measures them drawn)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from core.charts.style import scale_for_presentation, styled

    figure = styled(make_subplots(rows=1, cols=2), "Two panels")
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1]), row=1, col=1)
    figure.add_trace(go.Scatter(x=[0, 1], y=[1, 0]), row=1, col=2)
    assert figure.layout.xaxis.tickfont.size is None  # normal mode: left to the theme
    scaled = scale_for_presentation(figure, True)
    for axis in (scaled.layout.xaxis, scaled.layout.xaxis2, scaled.layout.yaxis, scaled.layout.yaxis2):
        assert axis.tickfont.size >= 18 and axis.title.font.size >= 18
    assert scaled.layout.legend.font.size >= 18
    assert figure.layout.xaxis.tickfont.size is None  # a copy: a figure cached for every session stays as it was
