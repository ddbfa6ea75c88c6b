"""Free TCP ports on 127.0.0.1, optionally from a fixed range (``SEM_STACK_PORT_RANGE=15400-15499``)."""

from __future__ import annotations

import os
import random
import socket

from sem_stack.process import StackError

PORT_RANGE_ENV = "SEM_STACK_PORT_RANGE"


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Return True when nothing listens on ``host:port`` and it can be bound now."""
    if not 0 < port < 65536:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def parse_port_range(text: str) -> tuple[int, int]:
    """Parse ``"LO-HI"`` (inclusive) into a pair of ints; raise StackError naming the value otherwise."""
    try:
        lo_text, hi_text = text.split("-")
        lo, hi = int(lo_text), int(hi_text)
    except ValueError as exc:
        raise StackError(f"{PORT_RANGE_ENV}={text!r}: expected LO-HI, e.g. 15400-15499") from exc
    if not 1024 <= lo <= hi < 65536:
        raise StackError(f"{PORT_RANGE_ENV}={text!r}: need 1024 <= LO <= HI < 65536")
    return lo, hi


def pick_free_ports(
    count: int,
    *,
    port_range: tuple[int, int] | None = None,
    exclude: set[int] | None = None,
    also_free_offset: int | None = None,
) -> list[int]:
    """Pick ``count`` distinct free ports on 127.0.0.1.

    Parameters
    ----------
    count : int
        How many ports.
    port_range : (int, int), optional
        Inclusive range to pick from; default ``$SEM_STACK_PORT_RANGE`` if set, else the kernel's ephemeral ports.
    exclude : set of int, optional
        Ports never to return (already handed out).
    also_free_offset : int, optional
        Also require ``port + offset`` to be free (SeaweedFS's admin server derives its gRPC port that way).

    Returns
    -------
    list of int
        The ports. Nothing holds them: a race with another process is possible; starters retry.
    """
    exclude = set(exclude or ())
    if count <= 0:
        return []
    if port_range is None and os.environ.get(PORT_RANGE_ENV):
        port_range = parse_port_range(os.environ[PORT_RANGE_ENV])
    picked: list[int] = []
    for port in _candidate_ports(count, port_range):
        if port in exclude or port in picked:
            continue
        if also_free_offset is not None and not port_is_free(port + also_free_offset):
            continue
        picked.append(port)
        if len(picked) == count:
            return picked
    where = "" if port_range is None else f" in {port_range[0]}-{port_range[1]}"
    raise StackError(f"only {len(picked)} of {count} ports free{where} on 127.0.0.1")


def _candidate_ports(count: int, port_range: tuple[int, int] | None):
    """Ports to try: ``count * 50`` kernel-assigned ephemeral ports, or the free ones of the range, shuffled."""
    if port_range is None:
        for _ in range(count * 50):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            yield port  # released before the caller checks or uses it
        return
    lo, hi = port_range
    candidates = list(range(lo, hi + 1))
    random.SystemRandom().shuffle(candidates)
    yield from (port for port in candidates if port_is_free(port))
