"""The sweep's engine: Ray. A local cluster on this machine by default (`ray.init()`: no setup,
works offline), or an existing cluster by address (`--address`, the page's field, or RAY_ADDRESS).
The one place the lab starts or reaches Ray (the job queue connects through `connect` too).

The local cluster is private to this machine, on purpose: token authentication is required (a
local cluster with RAY_AUTH_MODE anything but `token` is refused in one line), the token file is
readable by its owner only, and the node's address is 127.0.0.1, so Ray's TCP listeners (the GCS,
the raylet's node and object managers, every core worker, the runtime-env agent) bind loopback
only; `core/foundation/ray_environment.py` sets what Ray reads at import for that. A cluster by
address gets the token of `ray start` from Ray's usual places ($RAY_AUTH_TOKEN,
$RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token); a missing or refused token is one line naming the file
to copy.

We only ask Ray for what each trial needs (its CPUs, and a GPU when the cluster has one) and wait
for results; Ray schedules. The dataset goes into Ray's object store once per sweep and each
worker process unpacks it once (workers are reused across trials).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from core.foundation.errors import UserError
from core.foundation.ray_environment import AUTH_MODE_ENV, LOOPBACK, TOKEN_ENV, TOKEN_PATH_ENV, auth_mode, default_token_file, has_token, token_file, token_source

ADDRESS_ENV = "RAY_ADDRESS"
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
    if not (ray.is_initialized() and _connected_to == target):
        # Checked before the current cluster is let go: a refused address leaves it serving.
        if target == "local":
            check_local_auth(None)
        else:
            _check_reachable(target)
            _check_cluster_token(target)
    if ray.is_initialized() and _connected_to != target:
        shutdown()
    if not ray.is_initialized():
        options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)
        try:
            if target == "local":
                _prepare_token_file()
                # 127.0.0.1 as the node's address: the GCS, the raylet and the workers listen on loopback
                # (Ray keeps it only with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, set in core/foundation/ray_environment.py).
                _init_in_lasting_thread(address="local", _node_ip_address=LOOPBACK, num_cpus=local_cpus or os.cpu_count() or 1, object_store_memory=LOCAL_OBJECT_STORE_BYTES, **options)
                _keep_token_private()
            else:
                # The cluster's workers may be other machines: ship this package to them.
                _init_in_lasting_thread(address=target, runtime_env={"py_modules": [str(Path(__file__).resolve().parents[1])]}, **options)
        except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as error:
            if ray.is_initialized():
                ray.shutdown()
            if target != "local" and _refused_for_its_token(error):
                raise UserError(_token_refused_line(target)) from None
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


def _host_and_port(address: str) -> tuple[str, int] | None:
    """HOST:PORT (or a scheme's address), None for "auto" or a form Ray resolves itself."""
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    if address == "auto" or not host or not port.isdigit():
        return None
    return host, int(port)


def _check_reachable(address: str) -> None:
    """Fail in seconds, not minutes: Ray's own connect keeps retrying an address nobody listens on."""
    host_port = _host_and_port(address)
    if host_port is None:
        return  # "auto" or a form Ray resolves itself
    host, port = host_port
    try:
        socket.create_connection((host, port), timeout=REACHABLE_TIMEOUT_SECONDS).close()
    except OSError as error:
        raise UserError(
            f"cannot reach the Ray cluster at {address}: {error.strerror or error}; start one with `ray start --head --port {port}` or leave the address empty for a local cluster"
        ) from None


def check_local_auth(address: str | None) -> None:
    """A local cluster runs with token authentication or not at all: without it, any process that
    reaches one of its ports runs any Python as this user (Ray's security page; CVE-2023-48022).
    A cluster by address is left to its owner (RAY_AUTH_MODE=disabled for one started without)."""
    if resolve_address(address) is None and auth_mode() != "token":
        raise UserError(
            f"{AUTH_MODE_ENV}={os.environ.get(AUTH_MODE_ENV)}: the lab starts its local Ray cluster only with token authentication "
            f"(without it any process that reaches the cluster's ports runs code as you); unset {AUTH_MODE_ENV} or set it to token"
        )


def _use_ray_auth_mode() -> None:
    """Ray reads RAY_AUTH_MODE once, when it is imported; core/__init__.py sets it before that. Where
    Ray was imported first anyway (a notebook that imported ray, then the lab), refresh Ray's copy
    the way ray.init() does for its own clusters (authentication_token_setup._enable_token_auth),
    and drop its cached token, so a token copied in while a server runs is the one sent."""
    from ray._raylet import AuthenticationMode, AuthenticationTokenLoader, Config, get_authentication_mode

    if (get_authentication_mode() == AuthenticationMode.TOKEN) != (auth_mode() == "token"):
        Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _prepare_token_file() -> None:
    """The token file readable by its owner only, from its first byte: with no token anywhere, an
    empty 0600 file that Ray fills (Ray writes it with open(path, "w"), which keeps the mode; a file
    it made itself would be 0644, readable by every account on the machine)."""
    _use_ray_auth_mode()
    path = token_file()
    if path == default_token_file() and not has_token():
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError:
            pass  # an empty file already there (chmodded below), or Ray makes it, and it is chmodded after
    _keep_token_private()


def _keep_token_private() -> None:
    path = token_file()
    try:
        if path is not None and path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
            path.chmod(0o600)
    except OSError:
        pass  # no file (the token is in $RAY_AUTH_TOKEN), or not ours to change


# Ray's own GCS client, in a process of its own: it answers a refused token at once (ray.init()
# retries for about 20 s first), its C++ log lines stay out of this process's stderr, and an address
# that is not a Ray GCS costs at most the timeout.
_TOKEN_PROBE = """
import sys
from ray._raylet import GcsClient
from ray.exceptions import AuthenticationError
try:
    GcsClient(address=sys.argv[1])
except AuthenticationError:
    sys.exit(3)
except Exception:
    sys.exit(4)
"""
TOKEN_REFUSED_EXIT = 3
TOKEN_PROBE_TIMEOUT_SECONDS = 20.0


def _check_cluster_token(address: str) -> None:
    """Fail in a second, not after Ray's retries, when the cluster at `address` would refuse us:
    no token here, or one it refuses. Anything else the probe meets is left to ray.init()."""
    from ray._raylet import AuthenticationTokenLoader

    _use_ray_auth_mode()
    if auth_mode() == "token":
        # Ray's own look-up ($RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token); Ray's GCS
        # client aborts its process when token mode has no token, so this comes first.
        if not AuthenticationTokenLoader.instance().has_token(ignore_auth_mode=True):
            raise UserError(_token_missing_line(address))
        _keep_token_private()
    if _host_and_port(address) is None or "://" in address:
        return  # "auto", or a Ray Client address (ray://): ray.init() resolves and reports it
    try:
        probe = subprocess.run([sys.executable, "-c", _TOKEN_PROBE, address], capture_output=True, timeout=TOKEN_PROBE_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired):
        return
    if probe.returncode == TOKEN_REFUSED_EXIT:
        raise UserError(_token_refused_line(address))


def _token_missing_line(address: str) -> str:
    return (
        f"the Ray cluster at {address} needs the token of the machine that ran `ray start` and there is none here ({token_source()}): "
        f"copy ~/.ray/auth_token from that machine to {token_file() or default_token_file()}, or set {TOKEN_PATH_ENV} to the copy's path"
    )


def _token_refused_line(address: str) -> str:
    if auth_mode() != "token":
        return (
            f"the Ray cluster at {address} requires token authentication and {AUTH_MODE_ENV}={os.environ.get(AUTH_MODE_ENV)} here sends no token: "
            f"unset {AUTH_MODE_ENV} and copy ~/.ray/auth_token from the machine that ran `ray start` to {default_token_file()}"
        )
    if token_file() is None:
        return f"the Ray cluster at {address} refused the token in ${TOKEN_ENV}: set it to the contents of ~/.ray/auth_token on the machine that ran `ray start`"
    return (
        f"the Ray cluster at {address} refused the token in {token_source()}: copy ~/.ray/auth_token from the machine that ran `ray start` "
        f"to {token_file()}, or set {TOKEN_PATH_ENV} to the copy's path"
    )


def _refused_for_its_token(error: BaseException) -> bool:
    """Ray's connect, once its retries are spent, wraps the GCS's refusal in a ConnectionError."""
    import ray

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ray.exceptions.AuthenticationError) or "InvalidAuthToken" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


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
