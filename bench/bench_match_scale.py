"""How matching time and memory grow: 10k → 100k → 1M companies per system (generated).

Each size runs in its own process (so peak RSS is that size's own): generation is
not timed; ``match_records`` (normalise, block, fit weights, score, assign,
cluster duplicates) is. Pair throughput is measured separately on 1M random
candidate pairs with the default company comparisons (3 fuzzy + 3 exact fields).

    python bench/bench_match_scale.py                 # 10k, 100k, 1M
    python bench/bench_match_scale.py --size 100000   # one size, JSON on stdout
    python bench/run.py --only match_scale --smoke    # 2k
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

SYL = [
    "ka",
    "lo",
    "mi",
    "ren",
    "tor",
    "vex",
    "zu",
    "pan",
    "dri",
    "qua",
    "sol",
    "ber",
    "nix",
    "ota",
    "lum",
    "fay",
    "gor",
    "hal",
    "jin",
    "kep",
    "mor",
    "nel",
    "pry",
    "rast",
    "sen",
    "tul",
    "vor",
    "wex",
    "yan",
    "zel",
    "bru",
    "cai",
    "dov",
    "eth",
    "fim",
    "gla",
    "hox",
    "ilo",
    "jup",
]
WORDS = [
    "systems",
    "logistics",
    "foods",
    "labs",
    "capital",
    "media",
    "health",
    "energy",
    "motors",
    "partners",
    "solar",
    "consulting",
    "software",
    "pharma",
    "bakery",
    "farms",
    "kitchen",
    "transport",
    "studios",
    "holdings",
    "group",
]
FORMS = ["Inc", "Inc.", "LLC", "Ltd", "GmbH", "Corp", "", "", "S.A.", "Co., Ltd.", "AG", "BV"]
CC = [
    ("US", "com", "1"),
    ("DE", "de", "49"),
    ("FR", "fr", "33"),
    ("GB", "co.uk", "44"),
    ("JP", "co.jp", "81"),
]
CITIES = [
    "Springfield",
    "Berlin",
    "Lyon",
    "Leeds",
    "Osaka",
    "Austin",
    "Munich",
    "Paris",
    "Bristol",
    "Kyoto",
]


def generate(n: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """HubSpot and Salesforce company frames for ``n`` organisations (80% in each, 5% duplicated)."""
    rng = np.random.default_rng(seed)
    k = len(SYL)
    codes = rng.choice(k**3 * len(WORDS), size=int(n * 1.2), replace=False)[:n]
    s1, s2, s3, w = codes % k, (codes // k) % k, (codes // k**2) % k, codes // k**3
    syl = np.array(SYL)
    stem = np.char.add(np.char.add(syl[s1], syl[s2]), syl[s3])
    word = np.array(WORDS)[w]
    cc = rng.integers(0, len(CC), n)
    orgs = pl.DataFrame(
        {
            "entity": np.arange(n),
            "stem": stem,
            "word": word,
            "cc": np.array([c[0] for c in CC])[cc],
            "tld": np.array([c[1] for c in CC])[cc],
            "dial": np.array([c[2] for c in CC])[cc],
            "city": np.array(CITIES)[rng.integers(0, len(CITIES), n)],
            "num": rng.integers(100_000_000, 999_999_999, n).astype(str),
        }
    )

    def copies(source: str, share: float, seed2: int) -> pl.DataFrame:
        r = np.random.default_rng(seed2)
        keep = orgs.filter(pl.Series(r.random(n) < share))
        dup = keep.filter(pl.Series(r.random(keep.height) < 0.05))
        rows = pl.concat([keep, dup])
        m = rows.height
        form = np.array(FORMS)[r.integers(0, len(FORMS), m)]
        case = r.random(m)
        name = pl.Series(
            np.char.add(
                np.char.add(np.char.capitalize(rows["stem"].to_numpy().astype(str)), " "),
                np.char.capitalize(rows["word"].to_numpy().astype(str)),
            )
        )
        name = pl.select(
            pl.when(pl.Series(case < 0.15))
            .then(name.str.to_uppercase())
            .when(pl.Series(case < 0.3))
            .then(name.str.to_lowercase())
            .otherwise(name)
        ).to_series()
        typo = pl.Series(r.random(m) < 0.08)
        pos = pl.Series(r.integers(2, 6, m))
        name = pl.select(
            pl.when(typo).then(name.str.slice(0, pos) + name.str.slice(pos + 1)).otherwise(name)
        ).to_series()
        name = pl.select(
            pl.concat_str([name, pl.lit(" "), pl.Series(form)]).str.strip_chars()
        ).to_series()
        domain = rows["stem"] + rows["word"] + "." + rows["tld"]
        site_form = r.random(m)
        website = pl.select(
            pl.when(pl.Series(site_form < 0.2))
            .then(None)
            .when(pl.Series(site_form < 0.5))
            .then(domain)
            .when(pl.Series(site_form < 0.8))
            .then(pl.lit("https://www.") + domain + "/")
            .otherwise(pl.lit("http://") + domain + "/about")
        ).to_series()
        phone = pl.select(
            pl.when(pl.Series(r.random(m) < 0.6)).then(
                pl.lit("+") + rows["dial"] + " " + rows["num"]
            )
        ).to_series()
        prefix = "h" if source == "hubspot" else "001"
        return pl.DataFrame(
            {
                "source": source,
                "object": "companies" if source == "hubspot" else "Account",
                "record_id": [f"{prefix}{i:09d}" for i in range(m)],
                "name": name,
                "website": website,
                "phone": phone,
                "city": pl.select(
                    pl.when(pl.Series(r.random(m) < 0.8)).then(rows["city"])
                ).to_series(),
                "country": rows["cc"],
                "entity": rows["entity"],
            }
        )

    return copies("hubspot", 0.8, seed + 1), copies("salesforce", 0.8, seed + 2)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_size(n: int) -> dict:
    """Generate, match and measure one size (run in a fresh process)."""
    from recon.match import match_records

    hs, sf = generate(n)
    rss_before = _rss_mb()
    truth_h = dict(zip(hs["record_id"].to_list(), hs["entity"].to_list(), strict=True))
    truth_s = dict(zip(sf["record_id"].to_list(), sf["entity"].to_list(), strict=True))
    hs_in, sf_in = hs.drop("entity"), sf.drop("entity")
    started = time.perf_counter()
    cpu = time.process_time()
    result = match_records(hs_in, sf_in, entity="companies")
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu
    links = result.links.select("record_id_l", "record_id_r").rows()
    tp = sum(truth_h[a] == truth_s[b] for a, b in links)
    both = len(set(truth_h.values()) & set(truth_s.values()))
    truth = {"hubspot": truth_h, "salesforce": truth_s}
    dups = result.duplicates.select("source", "record_id_l", "record_id_r").rows()
    dup_tp = sum(truth[s][a] == truth[s][b] for s, a, b in dups)
    true_dups = sum(
        k * (k - 1) // 2 for t in (hs, sf) for k in t.group_by("entity").len()["len"].to_list()
    )
    return {
        "orgs": n,
        "records": [hs.height, sf.height],
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),  # all threads; wall time suffers on a shared machine
        "peak_rss_mb": round(_rss_mb(), 1),
        "rss_after_generation_mb": round(rss_before, 1),
        "links": len(links),
        "links_precision": round(tp / max(len(links), 1), 4),
        "links_recall": round(tp / max(both, 1), 4),
        "duplicate_pairs": result.duplicates.height,
        "duplicates_precision": round(dup_tp / max(len(dups), 1), 4),
        "duplicates_recall": round(dup_tp / max(true_dups, 1), 4),
        "candidates": result.counts.get("links_candidates", {}).get("total"),
        "timings": result.counts["timings"],
    }


def pair_throughput(n_pairs: int) -> dict:
    """Pairs scored per second (levels of all six default company comparisons, one core)."""
    import os

    from recon.match.blocking import features
    from recon.match.levels import compare
    from recon.match.scoring import add_token_columns, token_idf
    from recon.match.settings import default_settings

    hs, sf = generate(max(n_pairs // 20, 1000))
    fl = features(hs.drop("entity"), "companies")
    fr = features(sf.drop("entity"), "companies")
    idf = {"name_norm": token_idf([fl, fr], "name_norm")}
    fl = add_token_columns(fl, "name_norm", idf["name_norm"])
    fr = add_token_columns(fr, "name_norm", idf["name_norm"])
    rng = np.random.default_rng(0)
    il = rng.integers(0, fl.height, n_pairs).astype(np.uint32)
    ir = rng.integers(0, fr.height, n_pairs).astype(np.uint32)
    started = time.perf_counter()
    cpu = time.process_time()
    compare(fl, fr, il, ir, default_settings("companies"), idf)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu
    return {
        "pairs": n_pairs,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "pairs_per_second": int(n_pairs / seconds),
        "pairs_per_cpu_second": int(n_pairs / max(cpu_seconds, 1e-9)),
        "cpus": os.cpu_count(),
    }


def run(smoke: bool = False) -> dict:
    sizes = [2000] if smoke else [10_000, 100_000, 1_000_000]
    out: dict = {"sizes": []}
    for n in sizes:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--size", str(n)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            out["sizes"].append({"orgs": n, "error": proc.stderr[-2000:]})
            break
        out["sizes"].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    out["throughput"] = pair_throughput(20_000 if smoke else 1_000_000)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, help="one size only; print its JSON")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.size:
        print(json.dumps(one_size(args.size)))
    else:
        print(json.dumps(run(smoke=args.smoke), indent=1))
