"""A lightweight Streamlit client: the browser's side of the WebSocket protocol, with no rendering.

    client = StreamlitClient("http://127.0.0.1:8501")
    await client.connect()
    run = await client.rerun()                                   # the default page, as a browser's first load
    await client.rerun(page="Pruning")                           # a page switch (its page_script_hash)
    slider = client.widget(key="prune_amount")                   # the Element proto, e.g. slider.value
    await client.rerun(widget_states=[slider_state(slider.id, 0.6)])
    client.metric("Zero weights")                                # the metric's body, e.g. "59.8%"
    await client.close()

What it speaks (Streamlit 1.67, streamlit/web/server/starlette/starlette_websocket.py and
runtime/app_session.py): a WebSocket on /_stcore/stream with the subprotocol "streamlit"; every
frame is a binary protobuf. The client sends BackMsg(rerun_script=ClientState(...)) with the widget
states it has set, the page's page_script_hash and the URL's query string; the server answers with
ForwardMsgs: new_session when a run starts (the app's pages and this run's page_script_hash),
deltas (new_element / add_block, each at a delta_path), page_info_changed (the query string the
app wrote into st.query_params), auto_rerun (a fragment with run_every), and script_finished when
the run ends. A browser reports the hashes of the large messages it has cached and the server then
sends a ref_hash instead; this client reports none, so every message arrives whole.

Like the browser, the client keeps the widget values it has set and sends all of them on every
rerun (a button's trigger only once), forgetting those of widgets a finished run no longer drew;
widgets it never touched keep the value the server holds.
It also sends a fragment's auto-reruns (st.fragment(run_every=...)) every interval, as the browser
does, until the next full run or page switch.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

# Element types that are widgets (their proto has an id and a label).
WIDGET_TYPES = ("slider", "number_input", "button", "selectbox", "radio", "checkbox", "multiselect", "text_input", "toggle", "download_button", "button_group", "text_area")
FINISHED = ForwardMsg.ScriptFinishedStatus


class ProtocolError(Exception):
    """The server closed the connection, a run did not finish in time, or it ended with a compile error."""


@dataclass
class RunResult:
    """One rerun the client asked for: from sending the BackMsg to the script_finished that ended it."""

    seconds: float
    status: str  # FINISHED_SUCCESSFULLY or FINISHED_WITH_COMPILE_ERROR
    superseded: int  # runs that ended early for a rerun on the way (st.rerun, or a newer request)
    exceptions: list[str] = field(default_factory=list)  # exception elements shown during the run


def slider_state(widget_id: str, value: float) -> WidgetState:
    return WidgetState(id=widget_id, double_array_value={"data": [value]})


def number_state(widget_id: str, value: float) -> WidgetState:
    return WidgetState(id=widget_id, double_value=value)


def trigger_state(widget_id: str) -> WidgetState:
    """A button press: sent with one rerun, then forgotten (the browser resets triggers the same way)."""
    return WidgetState(id=widget_id, trigger_value=True)


class StreamlitClient:
    def __init__(self, base_url: str, name: str = "client", timeout_s: float = 60.0):
        parsed = urlparse(base_url)
        self.stream_url = f"ws://{parsed.netloc}{parsed.path.rstrip('/')}/_stcore/stream"
        self.name, self.timeout_s = name, timeout_s
        self.pages: dict[str, str] = {}  # page name and URL path -> page_script_hash
        self.page_script_hash = ""  # the page the last run ran
        self.query_string = ""
        self.elements: dict[tuple, object] = {}  # delta_path -> Element proto: what a browser shows now
        self.exceptions: list[str] = []  # every exception element seen (full and fragment runs)
        self.disconnected = False
        self._states: dict[str, WidgetState] = {}  # widget id -> the value this client set
        self._pending: dict[tuple, object] = {}  # the elements of the full run in progress
        self._waiter: asyncio.Future | None = None
        self._run_started = False
        self._superseded = 0
        self._run_exceptions: list[str] = []
        self._auto_reruns: dict[str, asyncio.Task] = {}
        self._socket = None
        self._reader: asyncio.Task | None = None

    # ------------------------------------------------------------------------------ connection

    async def connect(self) -> None:
        from websockets.asyncio.client import connect

        self._socket = await asyncio.wait_for(
            connect(self.stream_url, subprotocols=["streamlit"], max_size=None, open_timeout=self.timeout_s, ping_interval=20, ping_timeout=self.timeout_s), self.timeout_s
        )
        self._reader = asyncio.create_task(self._read(), name=f"{self.name}-reader")

    async def close(self) -> None:
        self._stop_auto_reruns()
        if self._socket is not None:
            await self._socket.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass

    # ------------------------------------------------------------------------------ reruns

    async def rerun(self, page: str | None = None, widget_states: list[WidgetState] = (), timeout_s: float | None = None) -> RunResult:
        """Send one rerun (on `page` when given: a page switch) and wait until that run has finished.
        `widget_states` join the values set before; triggers among them are sent this once."""
        if self._waiter is not None:
            raise RuntimeError("one rerun at a time: wait for the last one to finish")
        client_state_kwargs = {}
        if page is not None:
            page_hash = self.pages.get(page)
            if page_hash is None:
                raise KeyError(f"no page {page!r}; the app has {sorted(self.pages)}")
            if page_hash != self.page_script_hash:
                self.query_string = ""  # the browser drops the query parameters on a page switch
                self._stop_auto_reruns()
            client_state_kwargs["page_script_hash"] = page_hash
        elif self.page_script_hash:
            client_state_kwargs["page_script_hash"] = self.page_script_hash
        triggers = []
        for state in widget_states:
            if state.WhichOneof("value") == "trigger_value":
                triggers.append(state)
            else:
                self._states[state.id] = state
        loop = asyncio.get_running_loop()
        self._waiter, self._run_started, self._superseded, self._run_exceptions = loop.create_future(), False, 0, []
        started = time.perf_counter()
        try:
            await self._send_rerun(list(self._states.values()) + triggers, **client_state_kwargs)
            status = await asyncio.wait_for(asyncio.shield(self._waiter), timeout_s or self.timeout_s)
        except TimeoutError:
            raise ProtocolError(f"{self.name}: the run did not finish within {timeout_s or self.timeout_s:.0f} s") from None
        finally:
            self._waiter = None
        return RunResult(time.perf_counter() - started, FINISHED.Name(status), self._superseded, list(self._run_exceptions))

    async def _send_rerun(self, states: list[WidgetState], fragment_id: str = "", is_auto_rerun: bool = False, page_script_hash: str = "") -> None:
        if self.disconnected:
            raise ProtocolError(f"{self.name}: disconnected")
        message = BackMsg()
        client_state = message.rerun_script
        client_state.query_string = self.query_string
        client_state.page_script_hash = page_script_hash
        client_state.widget_states.widgets.extend(states)
        if fragment_id:
            client_state.fragment_id = fragment_id
            client_state.is_auto_rerun = is_auto_rerun
        try:
            await self._socket.send(message.SerializeToString())
        except Exception as error:
            self.disconnected = True
            raise ProtocolError(f"{self.name}: disconnected ({type(error).__name__})") from error

    # ------------------------------------------------------------------------------ what the page shows

    def widget(self, key: str | None = None, label: str | None = None, kind: str | None = None):
        """The widget's Element proto (its oneof: .slider, .button, ...) by widget key or label; None if absent."""
        for element in self.elements.values():
            kind_here = element.WhichOneof("type")
            if kind_here not in WIDGET_TYPES or (kind and kind_here != kind):
                continue
            proto = getattr(element, kind_here)
            if (key is not None and proto.id.endswith(f"-{key}")) or (label is not None and proto.label == label):
                return proto
        return None

    def metric(self, label: str) -> str | None:
        """The body of the metric whose label starts with `label` (e.g. "Zero weights")."""
        for element in self.elements.values():
            if element.WhichOneof("type") == "metric" and element.metric.label.startswith(label):
                return element.metric.body
        return None

    def texts(self) -> list[str]:
        """The markdown bodies shown (st.write of a string, st.markdown, captions)."""
        return [element.markdown.body for element in self.elements.values() if element.WhichOneof("type") == "markdown"]

    def count(self, kind: str) -> int:
        return sum(element.WhichOneof("type") == kind for element in self.elements.values())

    # ------------------------------------------------------------------------------ incoming

    async def _read(self) -> None:
        try:
            async for frame in self._socket:
                message = ForwardMsg()
                message.ParseFromString(frame)
                self._handle(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            pass
        self.disconnected = True
        self._stop_auto_reruns()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ProtocolError(f"{self.name}: the server closed the connection"))

    def _handle(self, message: ForwardMsg) -> None:
        kind = message.WhichOneof("type")
        fragment_run = bool(message.metadata.run.fragment_ids)
        if kind == "new_session":
            session = message.new_session
            for page in session.app_pages:
                self.pages[page.page_name] = page.page_script_hash
                self.pages[page.url_pathname] = page.page_script_hash
            self.page_script_hash = session.page_script_hash
            if not fragment_run:
                self._pending = {}
                self._stop_auto_reruns()
                if self._waiter is not None:
                    self._run_started = True
        elif kind == "navigation":
            for page in message.navigation.app_pages:
                self.pages[page.page_name] = page.page_script_hash
                self.pages[page.url_pathname] = page.page_script_hash
            if message.navigation.page_script_hash:
                self.page_script_hash = message.navigation.page_script_hash
        elif kind == "delta":
            delta = message.delta
            if delta.WhichOneof("type") != "new_element":
                return
            element = delta.new_element
            if element.WhichOneof("type") == "exception":
                text = f"{element.exception.type}: {element.exception.message}"[:300]
                self.exceptions.append(text)
                self._run_exceptions.append(text)
            # A full run draws the whole page anew (its fragments too); a fragment run redraws its part in place.
            path = tuple(message.metadata.delta_path)
            (self.elements if fragment_run else self._pending)[path] = element
        elif kind == "page_info_changed":
            self.query_string = message.page_info_changed.query_string
        elif kind == "auto_rerun":
            self._start_auto_rerun(message.auto_rerun.fragment_id, message.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fragment_id in message.stop_auto_rerun.fragment_ids:
                task = self._auto_reruns.pop(fragment_id, None)
                if task:
                    task.cancel()
        elif kind == "ref_hash":
            self._run_exceptions.append("the server sent a cached-message reference this client never asked for")
        elif kind == "script_finished":
            status = message.script_finished
            if status == FINISHED.FINISHED_FRAGMENT_RUN_SUCCESSFULLY or fragment_run:
                return
            if status == FINISHED.FINISHED_EARLY_FOR_RERUN:
                self._superseded += 1
                return
            # A finished full run: what it drew replaces what the page showed, and, as the browser
            # does, the values of widgets no longer on the page are forgotten (one that comes back
            # is a new widget, at its default).
            if self._pending:
                self.elements = self._pending
                self._forget_absent_widgets()
            self._pending = {}
            if self._waiter is not None and self._run_started and not self._waiter.done():
                self._waiter.set_result(status)

    def _forget_absent_widgets(self) -> None:
        shown = {getattr(element, element.WhichOneof("type")).id for element in self.elements.values() if element.WhichOneof("type") in WIDGET_TYPES}
        self._states = {widget_id: state for widget_id, state in self._states.items() if widget_id in shown}

    def _start_auto_rerun(self, fragment_id: str, interval: float) -> None:
        if not fragment_id or fragment_id in self._auto_reruns:
            return

        async def every_interval() -> None:
            while not self.disconnected:
                await asyncio.sleep(interval)
                try:
                    await self._send_rerun(list(self._states.values()), fragment_id=fragment_id, is_auto_rerun=True, page_script_hash=self.page_script_hash)
                except ProtocolError:
                    return

        self._auto_reruns[fragment_id] = asyncio.create_task(every_interval(), name=f"{self.name}-auto-rerun")

    def _stop_auto_reruns(self) -> None:
        for task in self._auto_reruns.values():
            task.cancel()
        self._auto_reruns.clear()
