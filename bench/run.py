"""Run recon's benchmarks and write their results as JSON, comparable across commits.

Each ``bench/bench_*.py`` module exposes ``run(smoke: bool) -> dict``; its result
lands under its name in one JSON file per invocation, with the commit, the
machine and the time. ``--smoke`` runs every benchmark on tiny inputs (what CI
does: it checks the benchmarks still run, it measures nothing).

    python bench/run.py                      # full run -> bench/results/<commit>-<time>.json
    python bench/run.py --only match         # benchmarks whose name contains "match"
    python bench/run.py --smoke --out DIR    # CI smoke run
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def discover(only: str | None) -> list[Path]:
    """Benchmark modules, sorted by name."""
    mods = sorted(HERE.glob("bench_*.py"))
    return [m for m in mods if not only or only in m.stem]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny inputs: check that benchmarks run"
    )
    parser.add_argument("--only", help="run only benchmarks whose module name contains this")
    parser.add_argument(
        "--out", type=Path, default=HERE / "results", help="folder for the JSON result"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    results: dict[str, object] = {}
    failed = []
    for path in discover(args.only):
        name = path.stem.removeprefix("bench_")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        started = time.perf_counter()
        try:
            spec.loader.exec_module(module)
            results[name] = module.run(smoke=args.smoke)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            results[name] = {"error": traceback.format_exc(limit=3)}
        print(f"bench {name}: {time.perf_counter() - started:.1f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    commit = _commit()
    doc = {
        "commit": commit,
        "time": stamp,
        "smoke": args.smoke,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "results": results,
    }
    out = args.out / f"{commit}-{stamp}{'-smoke' if args.smoke else ''}.json"
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
