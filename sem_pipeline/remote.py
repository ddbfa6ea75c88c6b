"""The shared DVC remote on S3-compatible object storage (SeaweedFS here; MinIO, AWS or Ceph in production).

The committed ``.dvc/config`` names the remote ``storage`` (``s3://sem-dvc/cache``) and makes it the
default. Where it lives and the credentials are machine-local: this module writes them into
``.dvc/config.local`` (not committed) with ``dvc remote modify --local``, or DVC takes them from the
environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``).

``python -m sem_pipeline.remote --stack DIR`` configures the remote for the SeaweedFS that
``python -m sem_stack up --dir DIR`` started (``make remote``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

__all__ = ["REMOTE", "BUCKET", "configure_dvc_remote", "main"]

REMOTE = "storage"
BUCKET = "sem-dvc"


def _dvc(repo: Path, *args: str) -> None:
    proc = subprocess.run(["dvc", *args], cwd=repo, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"dvc {' '.join(args[:3])} failed in {repo}: {proc.stderr.strip() or proc.stdout.strip()}")


def configure_dvc_remote(repo: str | Path, *, endpoint: str, access_key: str, secret_key: str,
                         name: str = REMOTE) -> None:
    """Point remote ``name`` of the DVC project at ``endpoint`` with these credentials, in ``.dvc/config.local``."""
    repo = Path(repo)
    for key, value in (("endpointurl", endpoint), ("access_key_id", access_key), ("secret_access_key", secret_key),
                       ("region", "us-east-1")):
        _dvc(repo, "remote", "modify", "--local", name, key, value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sem_pipeline.remote", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="folder of a `python -m sem_stack up` stack")
    parser.add_argument("--repo", default=".", help="the DVC project (default: .)")
    args = parser.parse_args(argv)
    from sem_stack.state import load_state

    state = load_state(args.stack)
    s3 = state and state.get("seaweedfs")
    if not s3 or not s3.is_running():
        print(f"error: no running SeaweedFS recorded in {args.stack}/stack.json (make remote)", file=sys.stderr)
        return 1
    configure_dvc_remote(args.repo, endpoint=s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key)
    print(f"DVC remote {REMOTE!r} -> {s3.endpoint} (s3://{BUCKET}/cache); credentials in .dvc/config.local")
    return 0


if __name__ == "__main__":
    sys.exit(main())
