"""The sweep's engine: Ray. A local cluster on this machine by default (`ray.init()`: no setup,
works offline), or an existing cluster by address (`--address`, the page's field, or RAY_ADDRESS).

We only ask Ray for what each trial needs (its CPUs, and a GPU when the cluster has one) and wait
for results; Ray schedules. The dataset goes into Ray's object store once per sweep and each
worker process unpacks it once (workers are reused across trials).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from core.foundation.errors import UserError

ADDRESS_ENV = "RAY_ADDRESS"
AUTH_MODE_ENV = "RAY_AUTH_MODE"
REACHABLE_TIMEOUT_SECONDS = 5.0
LOCAL_OBJECT_STORE_BYTES = 1 << 30  # holds one dataset (CIFAR-10 as uint8 is 184 MB) and the trials' results


@dataclass(frozen=True)
class ClusterInfo:
    address: str  # the GCS address we are connected to
    local: bool  # a cluster this process started (ray.init() with no address)
    cpus: int
    gpus: int
    startup_seconds: float  # how long connecting (or starting) took; 0 when already connected

    def as_dict(self) -> dict:
        return {"address": self.address, "local": self.local, "cpus": self.cpus, "gpus": self.gpus, "startup_seconds": self.startup_seconds}


_connected_to: str | None = None  # the address asked for ("local" for our own cluster)
_owner_stop: threading.Event | None = None  # ends the thread that started the current cluster
_connect_lock = threading.Lock()  # a classroom server connects from its warmup thread and from sessions at once


def resolve_address(address: str | None) -> str | None:
    """The cluster to use: the one given, else $RAY_ADDRESS, else None (a local cluster)."""
    chosen = (address or "").strip() or os.environ.get(ADDRESS_ENV, "").strip()
    return chosen or None


def connect(address: str | None = None, local_cpus: int | None = None) -> ClusterInfo:
    """Connect to (or start) the cluster; reused while the address stays the same."""
    with _connect_lock:
        return _connect(address, local_cpus)


def _connect(address: str | None, local_cpus: int | None) -> ClusterInfo:
    global _connected_to
    import ray

    if inside_ray_task():
        # A queued sweep (core.jobs, kind "sweep") drives its trials from a Ray task: they go to the
        # cluster that runs it, whose CPUs also bound the queue's jobs.
        resources = ray.cluster_resources()
        return ClusterInfo(ray.get_runtime_context().gcs_address, False, int(resources.get("CPU", 0)), int(resources.get("GPU", 0)), 0.0)
    target = resolve_address(address) or "local"
    started = time.perf_counter()
    if ray.is_initialized() and _connected_to != target:
        shutdown()
    if not ray.is_initialized():
        options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)
        try:
            if target == "local":
                _init_in_lasting_thread(address="local", num_cpus=local_cpus or os.cpu_count() or 1, object_store_memory=LOCAL_OBJECT_STORE_BYTES, **options)
            else:
                _check_reachable(target)
                _use_cluster_token()
                # The cluster's workers may be other machines: ship this package to them.
                _init_in_lasting_thread(address=target, runtime_env={"py_modules": [str(Path(__file__).resolve().parents[1])]}, **options)
        except (ConnectionError, RuntimeError, ValueError) as error:
            if ray.is_initialized():
                ray.shutdown()
            raise UserError(f"cannot reach the Ray cluster at {target}: {_first_line(error)}") from None
        _connected_to = target
        startup = time.perf_counter() - started
    else:
        startup = 0.0
    resources = ray.cluster_resources()
    return ClusterInfo(ray.get_runtime_context().gcs_address, target == "local", int(resources.get("CPU", 0)), int(resources.get("GPU", 0)), startup)


def inside_ray_task() -> bool:
    """True in a Ray worker process (a task), where Ray is already connected to its cluster; a
    driver (this server, the CLI) runs in SCRIPT_MODE."""
    import ray

    return ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE


def _init_in_lasting_thread(**options) -> None:
    """ray.init from a thread that lives until shutdown(). The local cluster's processes get a
    parent-death signal tied to the *thread* that started them (Linux PR_SET_PDEATHSIG), so a
    cluster started inside a Streamlit script run, or a sweep's worker thread, died when that
    thread ended, and the server with it a minute later (measured: bench/bench_classroom.py)."""
    global _owner_stop
    import ray

    ready, stop, failure = threading.Event(), threading.Event(), []

    def own_the_cluster() -> None:
        try:
            ray.init(**options)
        except BaseException as error:  # handed to the caller below
            failure.append(error)
        ready.set()
        if not failure:
            stop.wait()

    threading.Thread(target=own_the_cluster, name="ray-cluster-owner", daemon=True).start()
    ready.wait()
    if failure:
        raise failure[0]
    _owner_stop = stop


def shutdown() -> None:
    global _connected_to, _owner_stop
    import ray

    if ray.is_initialized():
        ray.shutdown()
    if _owner_stop is not None:
        _owner_stop.set()
        _owner_stop = None
    _connected_to = None


def _check_reachable(address: str) -> None:
    """Fail in seconds, not minutes: Ray's own connect keeps retrying an address nobody listens on."""
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    if address == "auto" or not host or not port.isdigit():
        return  # "auto" or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=REACHABLE_TIMEOUT_SECONDS).close()
    except OSError as error:
        raise UserError(
            f"cannot reach the Ray cluster at {address}: {error.strerror or error}; start one with `ray start --head --port {port}` or leave the address empty for a local cluster"
        ) from None


def _use_cluster_token() -> None:
    """A cluster started with `ray start` uses token authentication when a token exists (Ray's own
    ~/.ray/auth_token, or $RAY_AUTH_TOKEN); a driver connecting by address must then send it."""
    if AUTH_MODE_ENV not in os.environ and (os.environ.get("RAY_AUTH_TOKEN") or (Path.home() / ".ray" / "auth_token").is_file()):
        os.environ[AUTH_MODE_ENV] = "token"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


# ------------------------------------------------------------------------------------- the task

_datasets: dict[str, object] = {}  # per worker process: the sweep's dataset by object id


def _trial_task(payload, dataset_box: list):
    """Runs in a worker: the dataset once per process, then the trial."""
    import ray

    from core.sweep.worker import run_trial

    reference = dataset_box[0]  # boxed so Ray hands over the reference, not a fresh copy per task
    key = reference.hex()
    if key not in _datasets:
        _datasets.clear()
        _datasets[key] = _dataset_from_store(ray.get(reference))
    return run_trial(payload, _datasets[key])


def put_dataset(dataset):
    """The dataset into the object store with its images as NumPy arrays, which Ray's workers read
    in place from shared memory (zero-copy) instead of each unpickling a private copy: for
    CIFAR-10 that is 184 MB less per worker."""
    import ray

    fields = {name: getattr(dataset, name) for name in ("name", "class_names", "mean", "std", "skipped_files")}
    splits = {split: (getattr(dataset, split).images.numpy(), getattr(dataset, split).labels.numpy()) for split in ("train", "test")}
    return ray.put({"fields": fields, "splits": splits})


def _dataset_from_store(stored: dict):
    import warnings

    import torch

    from core.foundation.data.datasets import Dataset, ImageSplit

    with warnings.catch_warnings():
        # The arrays are read-only views of shared memory; nothing here writes into a dataset's images.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        splits = {split: ImageSplit(torch.from_numpy(images), torch.from_numpy(labels)) for split, (images, labels) in stored["splits"].items()}
    return Dataset(train=splits["train"], test=splits["test"], **stored["fields"])


_remote_trial = None


def submit_trial(payload, dataset_reference, cpus: int, gpus: int):
    global _remote_trial
    import ray

    if _remote_trial is None:
        _remote_trial = ray.remote(_trial_task)
    return _remote_trial.options(num_cpus=cpus, num_gpus=gpus, max_retries=0).remote(payload, [dataset_reference])


def wait(references: list, timeout_seconds: float) -> list:
    """The references that have finished, waiting at most `timeout_seconds` for the first."""
    import ray

    done, _ = ray.wait(references, num_returns=1, timeout=timeout_seconds)
    if done:  # and whatever else is ready by now
        done, _ = ray.wait(references, num_returns=len(references), timeout=0)
    return done


def get(reference):
    import ray

    return ray.get(reference)


def cancel(references: list) -> None:
    import ray

    for reference in references:
        ray.cancel(reference, force=True)


def failure_reason(error: BaseException) -> str:
    """One line for a trial that raised: the technique's own message, not Ray's wrapping."""
    import ray

    if isinstance(error, ray.exceptions.RayTaskError):
        cause = error.cause if getattr(error, "cause", None) is not None else None
        if isinstance(cause, UserError):
            return str(cause)
        if cause is not None:
            return f"{type(cause).__name__}: {_first_line(cause)}"
    if isinstance(error, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)):
        return "the trial's worker process died (out of memory?)"
    if isinstance(error, ray.exceptions.OutOfMemoryError):
        return "Ray stopped the trial: the machine ran low on memory"
    return f"{type(error).__name__}: {_first_line(error)}"
