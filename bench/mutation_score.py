"""Mutation score of the tests guarding sem_core/denoise, sem_core/metrics and the stage table (cosmic-ray).

A mutant is the code with one small change (an operator swapped, a constant moved, a condition
negated, ...). It is *killed* when the tests that guard that module fail on it, *survives*
otherwise; the mutation score is killed / (killed + survived). Surviving mutants are printed
(module, line, operator) so a developer can read them: each is either a missing test or an
equivalent mutant (a change that does not change behaviour).

How it runs (the working tree is never touched):

1. the tracked files are copied to a temporary folder; cosmic-ray edits files there only;
2. per target (a group of modules + the pytest files that guard them) a cosmic-ray session is
   initialised with every mutation of those modules; a seeded, bounded sample is kept per module
   (``--per-module``; ``--per-module 0`` keeps all), the rest is marked skipped;
3. a baseline run checks the guarding tests pass unmutated and times them (the mutant timeout is
   3x that; a timed-out mutant counts as killed and is reported apart);
4. ``cosmic-ray exec`` runs each sampled mutant against the target's tests (``pytest -x``).

Usage::

    nice python bench/mutation_score.py                      # default sample (~10-20 min on 2 idle cores)
    python bench/mutation_score.py --targets metrics --per-module 10 --seed 1
    python bench/mutation_score.py --per-module 0           # every mutant (hours)

Prints one line per target and the total score; exit status 0 (it measures, it does not gate).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Target:
    name: str
    modules: tuple[str, ...]
    tests: tuple[str, ...]


TARGETS = (
    Target("denoise", ("sem_core/denoise/base.py", "sem_core/denoise/classical.py", "sem_core/denoise/tiled.py"),
           ("tests/test_denoise_tiled.py", "tests/test_denoise_classical.py::test_registry_lists_every_method_and_rejects_unknown_names_and_params",
            "tests/test_denoise_classical.py::test_tiled_output_equals_whole_image_output_exactly",
            "tests/test_denoise_classical.py::test_one_pixel_short_halo_shows_at_the_seams",
            "tests/test_denoise_classical.py::test_the_mutated_gaussian_halo_of_issue_16_is_caught",
            "tests/test_denoise_classical.py::test_unet_tiled_equals_whole_image_with_a_tiny_random_network")),
    Target("bm3d", ("sem_core/denoise/bm3d_coloured.py",), ("tests/test_denoise_classical.py -k bm3d_or_gat_or_acf",)),
    Target("metrics", ("sem_core/metrics/full_reference.py", "sem_core/metrics/task.py", "sem_core/metrics/aligned.py",
                       "sem_core/metrics/fsim.py"), ("tests/test_metrics.py", "tests/test_fsim.py")),
    Target("stages", ("sem_pipeline/stages.py", "sem_pipeline/keys.py"), ("tests/test_stage_keys.py", "tests/test_dvc_yaml.py")),
)


def _cosmic_ray() -> str:
    exe = Path(sys.executable).with_name("cosmic-ray")
    if not exe.exists():
        sys.exit("cosmic-ray is not installed: pip install -e '.[dev]' (it pins cosmic-ray)")
    return str(exe)


def _copy_tree(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


def _test_command(target: Target) -> str:
    args = []
    for spec in target.tests:
        path, _, select = spec.partition(" -k ")
        args.append(path)
        if select:
            args += ["-k", "'" + select.replace("_or_", " or ") + "'"]
    return f"{sys.executable} -m pytest -x -q -p no:cacheprovider -W ignore " + " ".join(args)


def _write_config(path: Path, target: Target, timeout: float) -> None:
    modules = ", ".join(json.dumps(m) for m in target.modules)
    path.write_text(
        "[cosmic-ray]\n"
        f"module-path = [{modules}]\n"
        f"timeout = {timeout:.0f}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(_test_command(target))}\n\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
    )


def _sample(session: Path, *, per_module: int, seed: int) -> int:
    """Keep ``per_module`` random mutants of each module (seeded); mark the others skipped."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    with use_db(str(session), WorkDB.Mode.open) as db:
        items = sorted(db.pending_work_items, key=lambda w: (str(w.mutations[0].module_path),
                                                             w.mutations[0].operator_name, w.mutations[0].occurrence))
        if per_module <= 0:
            return len(items)
        rng = random.Random(seed)
        by_module: dict[str, list] = {}
        for item in items:
            by_module.setdefault(str(item.mutations[0].module_path), []).append(item)
        keep = set()
        for group in by_module.values():
            keep |= {w.job_id for w in rng.sample(group, min(per_module, len(group)))}
        db.set_multiple_results([w.job_id for w in items if w.job_id not in keep],
                                WorkResult(output="not sampled", worker_outcome=WorkerOutcome.SKIPPED))
        return len(keep)


def _results(session: Path) -> dict:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    out = {"killed": 0, "timeout": 0, "survived": 0, "incompetent": 0, "survivors": []}
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                continue
            m = item.mutations[0]
            if result.test_outcome == TestOutcome.SURVIVED:
                out["survived"] += 1
                out["survivors"].append(f"{m.module_path}:{m.start_pos[0]} {m.operator_name} #{m.occurrence}")
            elif result.test_outcome == TestOutcome.INCOMPETENT or result.worker_outcome != WorkerOutcome.NORMAL:
                out["incompetent"] += 1
            elif (result.output or "").strip() == "timeout":
                out["timeout"] += 1
            else:
                out["killed"] += 1
    return out


def run_target(target: Target, work: Path, *, per_module: int, seed: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(work), "DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    cfg, session = work / f"cr-{target.name}.toml", work / f"cr-{target.name}.sqlite"
    t0 = time.perf_counter()
    base = subprocess.run(_test_command(target), shell=True, cwd=work, env=env, capture_output=True, text=True)
    baseline_s = time.perf_counter() - t0
    if base.returncode != 0:
        raise SystemExit(f"{target.name}: the guarding tests fail without any mutation:\n{base.stdout[-3000:]}")
    _write_config(cfg, target, timeout=max(60.0, 3 * baseline_s))
    subprocess.run([_cosmic_ray(), "init", str(cfg), str(session)], cwd=work, env=env, check=True)
    n = _sample(session, per_module=per_module, seed=seed)
    t0 = time.perf_counter()
    subprocess.run([_cosmic_ray(), "exec", str(cfg), str(session)], cwd=work, env=env, check=True)
    res = _results(session)
    res.update(target=target.name, sampled=n, baseline_s=round(baseline_s, 1), seconds=round(time.perf_counter() - t0))
    return res


def _score(r: dict) -> float:
    caught = r["killed"] + r["timeout"]
    return 100.0 * caught / max(1, caught + r["survived"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", nargs="*", default=[t.name for t in TARGETS], choices=[t.name for t in TARGETS])
    ap.add_argument("--per-module", type=int, default=4, help="mutants sampled per module (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    _cosmic_ray()
    results = []
    with tempfile.TemporaryDirectory(prefix="sem-mutation-") as tmp:
        work = Path(tmp)
        _copy_tree(work)
        for target in (t for t in TARGETS if t.name in args.targets):
            r = run_target(target, work, per_module=args.per_module, seed=args.seed)
            results.append(r)
            print(f"{r['target']:8s} mutants {r['sampled']:3d}  killed {r['killed']:3d}  timeout {r['timeout']:2d}  "
                  f"survived {r['survived']:3d}  incompetent {r['incompetent']:2d}  score {_score(r):5.1f} %  "
                  f"(baseline {r['baseline_s']} s, mutants {r['seconds']} s)", flush=True)
            for s in r["survivors"]:
                print(f"    survived: {s}", flush=True)
    total = {k: sum(r[k] for r in results) for k in ("killed", "timeout", "survived", "incompetent")}
    print(f"TOTAL    killed {total['killed']}  timeout {total['timeout']}  survived {total['survived']}  "
          f"incompetent {total['incompetent']}  mutation score {_score(total):.1f} %")
    if args.json:
        args.json.write_text(json.dumps({"per_target": results, "total": total, "score": _score(total),
                                         "per_module": args.per_module, "seed": args.seed}, indent=2))


if __name__ == "__main__":
    main()
