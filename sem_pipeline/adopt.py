"""Put outputs the Prefect route wrote into DVC's cache when they are exactly what ``dvc.lock`` records.

``dvc repro`` reruns a stage whose outputs are "not in cache" even when they are byte-identical to the
lock. After ``make run`` (the Prefect route), this adopts every stage whose only difference from
``dvc.lock`` is that: same deps, params and output hashes, outputs missing from the cache
(``dvc commit -f`` on exactly those stages). Any other difference is left for ``dvc repro``.

``python -m sem_pipeline.adopt`` (the last step of ``make run``).
"""

from __future__ import annotations

import json
import subprocess
import sys

__all__ = ["adoptable_stages", "main"]


def adoptable_stages(status: dict) -> list[str]:
    """Stages of ``dvc status --json`` whose every change is an output "not in cache"."""
    out = []
    for stage, changes in status.items():
        if not isinstance(changes, list) or not changes:
            continue
        only_cache = all(isinstance(c, dict) and set(c) == {"changed outs"}
                         and set(c["changed outs"].values()) == {"not in cache"} for c in changes)
        if only_cache:
            out.append(stage)
    return out


def main() -> int:
    proc = subprocess.run(["dvc", "status", "--json"], capture_output=True, text=True)
    if proc.returncode:
        print(f"dvc status failed: {proc.stderr.strip()}", file=sys.stderr)
        return 1
    stages = adoptable_stages(json.loads(proc.stdout or "{}"))
    if stages:
        done = subprocess.run(["dvc", "commit", "-f", "-q", *stages])
        if done.returncode:
            return done.returncode
    print(f"DVC cache: adopted {len(stages)} stage(s) identical to dvc.lock: {', '.join(stages) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
