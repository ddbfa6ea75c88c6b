"""Process helpers: identify, wait for and stop exactly the processes the stack started (by PID)."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path


class StackError(RuntimeError):
    """A local service could not be started, reached or stopped."""


def read_cmdline(pid: int) -> str:
    """Return ``/proc/PID/cmdline`` with NULs as spaces, or "" when the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def pid_matches(pid: int | None, *needles: str) -> bool:
    """True when ``pid`` is alive, not a zombie, and its command line contains every needle.

    Guards against stopping a recycled PID that now belongs to someone else.
    """
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    cmdline = read_cmdline(pid)
    return bool(cmdline) and all(n in cmdline for n in needles)


def wait_port(port: int, *, host: str = "127.0.0.1", timeout: float, alive=None, what: str = "service") -> None:
    """Wait until ``host:port`` accepts TCP connections.

    ``alive`` is a callable returning False when the server process died (then fail at once).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if alive is not None and not alive():
            raise StackError(f"{what} exited before listening on {host}:{port}")
        if time.monotonic() > deadline:
            raise StackError(f"{what} did not listen on {host}:{port} within {timeout:.0f} s")
        time.sleep(0.05)


def terminate_pid(pid: int, *needles: str, timeout: float = 15.0, sig: int = signal.SIGTERM) -> bool:
    """Send ``sig`` to ``pid`` (only if its command line contains ``needles``), wait, then SIGKILL.

    Returns True when a matching process was found and is now gone; False when none matched.
    """
    if not pid_matches(pid, *needles):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_matches(pid, *needles):
            return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    for _ in range(100):
        _reap(pid)
        if not pid_matches(pid, *needles):
            return True
        time.sleep(0.05)
    raise StackError(f"process {pid} ({read_cmdline(pid)[:80]}) did not stop")


def _reap(pid: int) -> None:
    """Collect our own exited child so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
