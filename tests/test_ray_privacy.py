"""The lab's local Ray cluster is private to this machine: every TCP port its processes listen on is
on loopback, a client without the cluster's token is refused, the token file is its owner's only,
and the lab refuses to start a local cluster without token authentication, in one line.

Ray's TCP listeners and where they end up (Ray 2.60, `ss -ltnp`): the GCS, the raylet's node and
object managers and every core worker (the driver's and each worker's) on [::ffff:127.0.0.1], the
runtime-env agent on 127.0.0.1; the dashboard is off. The plasma store and the raylet's own socket
are Unix sockets in Ray's session folder, not network ports."""

from __future__ import annotations

import ipaddress
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from core.foundation.errors import UserError
from core.sweep import engine
from tests.conftest import REPO_ROOT

TOKEN_ENVS = ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


@pytest.fixture(scope="module")
def lab_cluster(tmp_path_factory):
    """The lab's own local cluster (engine.connect, as a sweep or the job queue starts it), with
    HOME a fresh folder: no token exists yet, so the one the lab makes is checked, and the
    machine's own ~/.ray/auth_token is left alone."""
    home = tmp_path_factory.mktemp("ray-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("RAY_AUTH_MODE", "token")
        for name in TOKEN_ENVS:
            patch.delenv(name, raising=False)
        engine.shutdown()
        try:
            yield engine.connect(None, local_cpus=1), home
        finally:
            engine.shutdown()


# ------------------------------------------------------------------------------ what listens where


def descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # a process that ended meanwhile
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in (Path("/proc") / str(pid) / "fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    except OSError:
        pass
    return inodes


def listening_tcp() -> dict[str, tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]]:
    """Every listening TCP socket of this network namespace: inode -> (address, port)."""
    listening = {}
    for table in ("tcp", "tcp6"):
        for line in (Path("/proc/net") / table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            address_hex, port_hex = fields[1].split(":")
            raw = b"".join(bytes.fromhex(address_hex[i : i + 8])[::-1] for i in range(0, len(address_hex), 8))  # kernel order: 32-bit words, little-endian
            address = ipaddress.ip_address(raw)
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            listening[fields[9]] = (address, int(port_hex, 16))
    return listening


@pytest.mark.slow
def test_the_local_cluster_listens_on_loopback_only(lab_cluster):
    info, _ = lab_cluster
    gcs_host, _, gcs_port = info.address.rpartition(":")
    assert info.local and gcs_host == "127.0.0.1"
    # The cluster's processes: this driver (its core worker serves gRPC too) and what it started.
    processes = {os.getpid(): "the driver (this test)"}
    processes.update({pid: command_line(pid) for pid in descendants(os.getpid()) if "ray" in command_line(pid)})
    listening = listening_tcp()
    sockets = [(listening[inode], name) for pid, name in processes.items() for inode in socket_inodes(pid) if inode in listening]
    described = "\n".join(f"{address}:{port}  {name[:100]}" for (address, port), name in sorted(sockets, key=lambda item: item[0][1]))
    assert int(gcs_port) in {port for (_, port), _ in sockets}, described  # the sockets found are the cluster's
    assert any("raylet" in name for _, name in sockets), described
    outside = [(str(address), port, name[:100]) for (address, port), name in sockets if not address.is_loopback]
    assert not outside, f"listening outside 127.0.0.0/8:\n{described}"


# ------------------------------------------------------------------------------ the token


PROBE = r"""
import os, sys
import ray
from ray._raylet import AuthenticationTokenLoader, GcsClient

address = sys.argv[1]
def refused(attempt):
    try:
        attempt()
    except Exception as error:
        return f"refused: {type(error).__name__}: {str(error).splitlines()[0][:160]}"
    return "ran"
if os.environ["RAY_AUTH_MODE"] == "token":
    # No token anywhere (no $RAY_AUTH_TOKEN, an empty HOME): Ray's own client will not connect.
    print(refused(lambda: ray.init(address=address, log_to_driver=False)))
    # A wrong token, sent to the GCS: the server says no.
    os.environ["RAY_AUTH_TOKEN"] = "0" * 64
    AuthenticationTokenLoader.instance().reset_cache()
    print(refused(lambda: GcsClient(address=address)))
else:
    # RAY_AUTH_MODE=disabled: a client that sends no token at all; the server says no.
    print(refused(lambda: GcsClient(address=address)))
"""


def probe(address: str, mode: str, home: Path) -> list[str]:
    env = {name: value for name, value in os.environ.items() if name not in TOKEN_ENVS}
    env.update(HOME=str(home), RAY_AUTH_MODE=mode)
    completed = subprocess.run([sys.executable, "-c", PROBE, address], env=env, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout.strip().splitlines()


@pytest.mark.slow
def test_a_client_without_the_token_is_refused(lab_cluster, tmp_path):
    info, _ = lab_cluster
    empty_home = tmp_path / "no-token-here"
    empty_home.mkdir()
    without_token, wrong_token = probe(info.address, "token", empty_home)
    assert without_token.startswith("refused: AuthenticationError") and "no authentication token" in without_token, without_token
    assert wrong_token.startswith("refused: AuthenticationError") and "InvalidAuthToken" in wrong_token, wrong_token
    (sends_none,) = probe(info.address, "disabled", empty_home)
    assert sends_none.startswith("refused: AuthenticationError") and "InvalidAuthToken" in sends_none, sends_none
    # ...while the lab's own driver, which has the token, runs tasks there.
    import ray

    assert ray.get(ray.remote(lambda: 42).options(num_cpus=1).remote(), timeout=120) == 42


@pytest.mark.slow
def test_the_token_the_lab_makes_is_readable_by_its_owner_only(lab_cluster):
    _, home = lab_cluster
    token = home / ".ray" / "auth_token"
    assert len(token.read_text().strip()) >= 32  # Ray's token, written into the file the lab made
    assert stat.S_IMODE(token.stat().st_mode) == 0o600


def test_a_token_file_others_can_read_is_made_its_owners_only(tmp_path, monkeypatch):
    token = tmp_path / ".ray" / "auth_token"
    token.parent.mkdir()
    token.write_text("f" * 64)
    token.chmod(0o644)  # what `ray start` or `ray get-auth-token --generate` leave
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in TOKEN_ENVS:
        monkeypatch.delenv(name, raising=False)
    engine._prepare_token_file()  # what connect() does before it starts a local cluster
    assert stat.S_IMODE(token.stat().st_mode) == 0o600 and token.read_text() == "f" * 64


# ------------------------------------------------------------------------------ no authentication, no cluster


def test_a_local_cluster_without_token_authentication_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(UserError, match="RAY_AUTH_MODE=disabled: the lab starts its local Ray cluster only with token authentication"):
        engine.check_local_auth(None)
    engine.check_local_auth("127.0.0.1:6379")  # a cluster by address is its owner's business
    env = {**os.environ, "MEL_HOME": str(tmp_path / "home"), "RAY_AUTH_MODE": "disabled"}
    completed = subprocess.run([sys.executable, "-m", "core", "sweep", "--grid", "prune.amount=0.3"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2, completed.stderr[-2000:]
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: RAY_AUTH_MODE=disabled: the lab starts its local Ray cluster only with token authentication"), completed.stderr
    assert "unset RAY_AUTH_MODE or set it to token" in lines[0]
    assert not (tmp_path / "home").exists()  # refused before a workspace, a baseline or Ray
