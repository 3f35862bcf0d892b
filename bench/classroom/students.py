"""The simulated students: protocol clients (bench/streamlit_client.py) that open the Overview, move the
Pruning slider and press Train baseline as a person would, and the class that brings them in over the
ramp with the Chromium observer beside them."""

from __future__ import annotations

import asyncio
import random
import time

from bench.classroom.observer import observer
from bench.classroom.scenario import EPOCHS_KEY, METRIC, SEED_KEY, SHARED_SEED, SLIDER_KEY, TRAIN_KEY, Log
from bench.streamlit_client import ProtocolError, StreamlitClient, number_state, slider_state, trigger_state


class Student:
    def __init__(self, index: int, url: str, log: Log, args, train_seed: int | None, shared: bool):
        self.index, self.log, self.args = index, log, args
        self.name = f"student-{index}"
        self.client = StreamlitClient(url, self.name, timeout_s=args.timeout)
        self.think = random.Random(args.seed * 1000 + index)
        self.train_seed, self.shared = train_seed, shared
        self.amount: float | None = None
        self.reached_pruning = False
        self.trained = False
        self.train_outcome: str | None = None
        self.skipped_moves = 0

    async def timed(self, name: str, **rerun):
        """One rerun, logged; errors (exceptions shown, compile errors) logged with it."""
        at = time.time()
        result = await self.client.rerun(**rerun)
        self.log.add("protocol", name, at, result.seconds, who=self.name, superseded=result.superseded)
        for text in result.exceptions:
            self.log.error(self.name, name, f"exception shown: {text}")
        if result.status != "FINISHED_SUCCESSFULLY":
            self.log.error(self.name, name, f"script finished {result.status}")
        return result

    async def run(self, start_at: float) -> None:
        await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
        step = "connect"
        try:
            at = time.perf_counter()
            await self.client.connect()
            self.log.add("protocol", "connect", time.time(), time.perf_counter() - at, who=self.name)
            step = "open overview"
            await self.timed(step)
            if self.client.metric("Test accuracy") is None:
                self.log.error(self.name, step, "the Overview shows no test accuracy metric")
            await asyncio.sleep(self.think.uniform(1.0, 3.0))
            step = "switch to pruning"
            await self.timed(step, page="Pruning")
            if self.client.widget(key=SLIDER_KEY) is None:
                raise ProtocolError("the Pruning page shows no amount slider")
            self.reached_pruning = True
            end = time.perf_counter() + self.args.duration
            moves = 0
            while time.perf_counter() < end:
                await asyncio.sleep(self.think.uniform(self.args.think_min, self.args.think_max))
                if time.perf_counter() >= end:
                    break
                slider = self.client.widget(key=SLIDER_KEY)
                if slider is None:  # a trainer whose new baseline is not there yet: nothing to move
                    self.skipped_moves += 1
                    self.amount = None  # the slider comes back at its default, a new widget
                    continue
                step = "slider move"
                await self.move(slider)
                moves += 1
                if self.train_seed is not None and not self.trained and moves >= 1:
                    step = "train press"
                    await self.press_train()
            await self.client.close()
        except ProtocolError as error:
            self.log.error(self.name, step, str(error))
        except Exception as error:  # the bench counts a broken session, it does not stop the class
            self.log.error(self.name, step, f"{type(error).__name__}: {error}")
        finally:
            if not self.client.disconnected:
                await self.client.close()

    async def move(self, slider) -> None:
        steps = round((slider.max - slider.min) / slider.step)
        current = self.amount if self.amount is not None else (slider.value[0] if slider.value else slider.default[0])
        value = current
        while abs(value - current) < slider.step / 2:
            value = round(slider.min + self.think.randint(0, steps) * slider.step, 6)
        before = self.client.metric(METRIC)
        await self.timed("slider move", widget_states=[slider_state(slider.id, value)])
        self.amount = value
        after = self.client.metric(METRIC)
        if after is None:
            self.log.error(self.name, "slider move", f"no {METRIC} metric after moving to {value}")
        elif after == before:
            self.log.error(self.name, "slider move", f"{METRIC} stayed {after} after moving to {value}")

    async def press_train(self) -> None:
        """Seed into the sidebar, then the Train baseline button (queued on a classroom server)."""
        self.trained = True
        seed_widget = self.client.widget(key=SEED_KEY)
        if seed_widget is None:
            raise ProtocolError("the sidebar shows no seed input")
        # The slider keeps its value while it stays on the page (a baseline already trained); if it
        # leaves while the new baseline trains, the move loop notes that it comes back at its default.
        settings = [number_state(seed_widget.id, self.train_seed)]
        if self.args.train_epochs is not None:
            epochs_widget = self.client.widget(key=EPOCHS_KEY)
            if epochs_widget is None:
                raise ProtocolError("the sidebar shows no epochs input")
            settings.append(number_state(epochs_widget.id, self.args.train_epochs))
        await self.timed("set seed", widget_states=settings)
        if self.client.widget(key=SLIDER_KEY) is None:
            self.amount = None
        button = self.client.widget(key=TRAIN_KEY)
        if button is not None:
            await self.timed("train press", widget_states=[trigger_state(button.id)])
            self.train_outcome = "pressed"
        elif self.client.count("progress"):
            # Someone asked for these settings already: the sidebar follows that job, as the queue
            # promises (the job is found by its configuration), and there is nothing to press.
            self.train_outcome = "joined a queued or running job"
        elif self.client.widget(key=SLIDER_KEY) is not None:
            self.train_outcome = "already trained"
        else:
            raise ProtocolError(f"seed {self.train_seed}: neither a Train baseline button, nor a job, nor a baseline")


async def classroom(url: str, log: Log, args) -> tuple[list[Student], dict]:
    chooser = random.Random(args.seed)
    trainers = chooser.sample(range(args.students), min(args.students, args.own_seed_trainers + args.shared_trainers))
    own, shared = trainers[: args.own_seed_trainers], trainers[args.own_seed_trainers :]
    students = [Student(i, url, log, args, train_seed=(own.index(i) + 1 if i in own else SHARED_SEED if i in shared else None), shared=i in shared) for i in range(args.students)]
    start = time.perf_counter()
    tasks = [student.run(start + args.ramp * i / max(1, args.students)) for i, student in enumerate(students)]
    watching = observer(url, log, args, start + args.ramp / 2) if args.observer else asyncio.sleep(0, result={})
    results = await asyncio.gather(watching, *tasks)
    return students, results[0]
