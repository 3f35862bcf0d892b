"""The class's shared terms: the widgets the students use, the metric both kinds of client watch, the
identical trainings' seed, the targets, and the Log every client writes its timed interactions and errors to."""

from __future__ import annotations

import time

SLIDER_KEY, SEED_KEY, EPOCHS_KEY, TRAIN_KEY = "prune_amount", "sidebar_seed", "sidebar_epochs", "sidebar_train"
METRIC = "Zero weights"
SHARED_SEED = 100  # the identical trainings' seed (bench_jobs.py's)
TARGETS = {"sessions": 30, "errors": 0, "slider_p95_s": 2.0, "server_rss_mb": 2048}


class Log:
    """Every timed interaction (who, what, when, how long) and every error, shared by all sessions."""

    def __init__(self):
        self.rows: list[dict] = []
        self.errors: list[dict] = []
        self.started = time.time()

    def add(self, client: str, name: str, started_at: float, seconds: float, **extra) -> None:
        self.rows.append({"client": client, "interaction": name, "at": started_at, "seconds": seconds, **extra})

    def error(self, who: str, what: str, text: str) -> None:
        self.errors.append({"who": who, "interaction": what, "at_s": round(time.time() - self.started, 1), "error": text[:300]})
