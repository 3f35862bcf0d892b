"""What long work gets besides its inputs: where to keep things, whom to tell how far it is, and a
flag that asks it to stop. The same for every technique, so an engine (a pipeline, a sweep, a job
queue) can run any of them."""

from __future__ import annotations

from dataclasses import dataclass

from core.foundation.progress import ProgressCallback, StopFlag, no_progress
from core.foundation.workspace import Workspace


@dataclass
class RunContext:
    workspace: Workspace
    progress: ProgressCallback = no_progress
    stop: StopFlag | None = None
