"""``python -m sem_stack up|down|status --dir DIR``: a local PostgreSQL + SeaweedFS stack recorded in DIR/stack.json."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sem_stack.postgres import start_postgres
from sem_stack.process import StackError
from sem_stack.seaweedfs import start_seaweedfs
from sem_stack.state import load_state, save_state, state_path


def _csv(text: str) -> list[str]:
    return [t for t in (s.strip() for s in text.split(",")) if t]


def summarize(state: dict) -> dict:
    """Public view of the state (no secret key) with liveness."""
    pg, s3 = state.get("postgres"), state.get("seaweedfs")
    out: dict = {}
    if pg:
        out["postgres"] = {"running": pg.is_running(), "pid": pg.pid, "port": pg.port, "url": pg.url()}
    if s3:
        out["seaweedfs"] = {"running": s3.is_running(), "pid": s3.pid, "endpoint": s3.endpoint,
                            "access_key": s3.access_key, "buckets": s3.buckets}
    return out


def cmd_up(args) -> int:
    stack_dir = Path(args.dir).resolve()
    stack_dir.mkdir(parents=True, exist_ok=True)
    state = load_state(stack_dir)
    if state and any(h and h.is_running() for h in (state["postgres"], state["seaweedfs"])):
        print(f"already up (state {state_path(stack_dir)}); run 'down' first", file=sys.stderr)
        print(json.dumps(summarize(state), indent=2))
        return 0
    t0 = time.monotonic()
    pg = s3 = None
    try:
        if not args.no_postgres:
            pg = start_postgres(stack_dir / "postgres", port=args.pg_port, databases=_csv(args.databases))
            save_state(stack_dir, postgres=pg, seaweedfs=None)
        if not args.no_seaweedfs:
            s3 = start_seaweedfs(stack_dir / "seaweedfs", s3_port=args.s3_port, buckets=_csv(args.buckets))
        save_state(stack_dir, postgres=pg, seaweedfs=s3)
    except StackError as exc:
        for handle in (s3, pg):
            if handle:
                handle.stop()
        print(f"sem_stack up failed: {exc}", file=sys.stderr)
        return 1
    state = load_state(stack_dir)
    summary = summarize(state)
    summary["seconds"] = round(time.monotonic() - t0, 2)
    summary["state_file"] = str(state_path(stack_dir))
    print(json.dumps(summary, indent=2))
    return 0


def cmd_down(args) -> int:
    stack_dir = Path(args.dir).resolve()
    state = load_state(stack_dir)
    if state is None:
        print(f"nothing to stop: no {state_path(stack_dir)}")
        return 0
    for name in ("seaweedfs", "postgres"):
        handle = state[name]
        if handle:
            was = handle.is_running()
            handle.stop()
            print(f"{name}: {'stopped pid ' + str(handle.pid) if was else 'was not running'}")
    state_path(stack_dir).unlink()
    return 0


def cmd_status(args) -> int:
    state = load_state(Path(args.dir).resolve())
    if state is None:
        print(json.dumps({"up": False}))
        return 1
    summary = summarize(state)
    print(json.dumps(summary, indent=2))
    return 0 if all(v["running"] for v in summary.values()) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sem_stack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start PostgreSQL and SeaweedFS on 127.0.0.1, write DIR/stack.json")
    down = sub.add_parser("down", help="stop exactly the processes recorded in DIR/stack.json")
    status = sub.add_parser("status", help="print what is recorded and whether it runs (exit 1 if not all up)")
    for p in (up, down, status):
        p.add_argument("--dir", required=True, help="stack folder (data, logs, stack.json)")
    up.add_argument("--pg-port", type=int, default=None)
    up.add_argument("--s3-port", type=int, default=None)
    up.add_argument("--databases", default="", help="comma-separated databases to create")
    up.add_argument("--buckets", default="", help="comma-separated buckets to create")
    up.add_argument("--no-postgres", action="store_true")
    up.add_argument("--no-seaweedfs", action="store_true")
    up.set_defaults(func=cmd_up)
    down.set_defaults(func=cmd_down)
    status.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
