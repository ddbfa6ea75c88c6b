"""``python -m sem_review.local up|down|status --dir DIR``: the whole review stack on 127.0.0.1 (``make serve``).

``up`` starts a throwaway PostgreSQL and SeaweedFS (:mod:`sem_stack`), migrates the database, makes an admin token
the first time (``DIR/admin.token``, mode 600), starts uvicorn in the background and waits until ``/api/health``
answers 200; every PID goes into ``DIR/stack.json``. ``down`` stops exactly those PIDs. Data persist in DIR between
``up``s (the PostgreSQL cluster lives in a world-traversable temp folder when DIR's ancestors are closed to the
postgres user, e.g. under /root; its path is recorded in the state file).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from sem_stack import StackError, pick_free_ports, start_postgres, start_seaweedfs
from sem_stack.ports import port_is_free
from sem_stack.process import pid_matches, terminate_pid
from sem_stack.state import load_state, save_state, state_path

BUCKET = "sem-review"
DATABASE = "review"


def _pg_root(stack_dir: Path, previous: dict | None) -> Path:
    if previous and previous.get("postgres") and Path(previous["postgres"].root).exists():
        return Path(previous["postgres"].root)
    candidate = stack_dir / "postgres"
    if os.geteuid() != 0:
        return candidate
    uid = pwd.getpwnam("postgres").pw_uid
    if all(p.stat().st_uid == uid or p.stat().st_mode & 0o001 for p in stack_dir.parents):
        return candidate
    tmp = Path(tempfile.mkdtemp(prefix="sem-serve-pg-"))
    tmp.chmod(0o755)
    return tmp


def _wait_healthy(url: str, pid: int, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not pid_matches(pid, "uvicorn"):
            raise StackError("uvicorn exited before it was healthy")
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.2)
    raise StackError(f"{url}/api/health not healthy within {timeout:.0f} s")


def up(stack_dir: Path, *, port: int, timeout: float = 120.0) -> dict:
    t0 = time.monotonic()
    stack_dir.mkdir(parents=True, exist_ok=True)
    previous = load_state(stack_dir)
    if previous and previous.get("uvicorn") and pid_matches(previous["uvicorn"]["pid"], "uvicorn"):
        return {"already": True, "url": previous["uvicorn"]["url"], "token_file": str(stack_dir / "admin.token")}
    if port == 0 or not port_is_free(port):
        port = pick_free_ports(1)[0]
    pg = s3 = None
    proc = None
    try:
        pg = start_postgres(_pg_root(stack_dir, previous), databases=[DATABASE])
        old_s3 = previous.get("seaweedfs") if previous else None
        s3 = start_seaweedfs(stack_dir / "seaweedfs", buckets=[BUCKET],
                             access_key=old_s3.access_key if old_s3 else None,
                             secret_key=old_s3.secret_key if old_s3 else None)
        save_state(stack_dir, postgres=pg, seaweedfs=s3)
        env = dict(os.environ, SEM_REVIEW_DATABASE_URL=pg.url(DATABASE), SEM_REVIEW_S3_ENDPOINT=s3.endpoint,
                   SEM_REVIEW_S3_ACCESS_KEY=s3.access_key, SEM_REVIEW_S3_SECRET_KEY=s3.secret_key,
                   SEM_REVIEW_S3_BUCKET=BUCKET)
        from sem_review import migrate

        migrate.upgrade(pg.url(DATABASE))
        token_file = stack_dir / "admin.token"
        if not token_file.exists():
            from sem_review.auth import create_token
            from sem_review.db import make_engine, make_sessionmaker

            engine = make_engine(pg.url(DATABASE))
            with make_sessionmaker(engine)() as session:
                token = create_token(session, role="admin", name="make-serve")
            engine.dispose()
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(token + "\n")
        url = f"http://127.0.0.1:{port}"
        with open(stack_dir / "uvicorn.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "sem_review.app:app_from_env", "--factory", "--host", "127.0.0.1",
                 "--port", str(port), "--log-level", "warning", "--no-access-log", "--no-server-header",
                 "--timeout-keep-alive", "30"],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        extra = {"uvicorn": {"pid": proc.pid, "url": url, "port": port}}
        save_state(stack_dir, postgres=pg, seaweedfs=s3, extra=extra)
        healthy_after = _wait_healthy(url, proc.pid, timeout)
    except BaseException:
        if proc is not None:
            terminate_pid(proc.pid, "uvicorn")
        for handle in (s3, pg):
            if handle is not None:
                handle.stop()
        raise
    return {"already": False, "url": url, "token_file": str(token_file),
            "seconds_to_healthy": round(time.monotonic() - t0, 2), "uvicorn_healthy_after_s": round(healthy_after, 2),
            "state": str(state_path(stack_dir))}


def down(stack_dir: Path) -> list[str]:
    state = load_state(stack_dir)
    if state is None:
        return [f"nothing to stop: no {state_path(stack_dir)}"]
    said = []
    uv = state.get("uvicorn")
    if uv:
        stopped = terminate_pid(uv["pid"], "uvicorn")
        said.append(f"uvicorn: {'stopped pid ' + str(uv['pid']) if stopped else 'not running'}")
    for name in ("seaweedfs", "postgres"):
        handle = state.get(name)
        if handle:
            was = handle.is_running()
            handle.stop()
            said.append(f"{name}: {'stopped pid ' + str(handle.pid) if was else 'not running'}")
    save_state(stack_dir, postgres=state.get("postgres"), seaweedfs=state.get("seaweedfs"))  # keep data paths/keys
    return said


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sem_review.local", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--dir", default=".serve")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SERVE_PORT", "8765")))
    args = parser.parse_args(argv)
    stack_dir = Path(args.dir).resolve()
    if args.command == "up":
        try:
            out = up(stack_dir, port=args.port)
        except (StackError, OSError) as exc:
            print(f"make serve failed: {exc}", file=sys.stderr)
            return 1
        if out["already"]:
            print(f"already serving at {out['url']}")
        else:
            print(f"review service healthy at {out['url']} after {out['seconds_to_healthy']} s "
                  f"(state {out['state']})")
        print(f"admin token in {out['token_file']} (export SEM_REVIEW_TOKEN=$(cat {out['token_file']}))")
        print(f"export SEM_REVIEW_URL={out['url']}")
        return 0
    if args.command == "down":
        print("\n".join(down(stack_dir)))
        return 0
    state = load_state(stack_dir)
    if not state or not state.get("uvicorn"):
        print(json.dumps({"up": False}))
        return 1
    alive = {"uvicorn": pid_matches(state["uvicorn"]["pid"], "uvicorn"),
             "postgres": bool(state["postgres"] and state["postgres"].is_running()),
             "seaweedfs": bool(state["seaweedfs"] and state["seaweedfs"].is_running())}
    print(json.dumps({"url": state["uvicorn"]["url"], **alive}))
    return 0 if all(alive.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
