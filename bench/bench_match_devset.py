"""Accuracy and time of recon's matching on ../shared/devset (companies), scored with its score.py.

    python bench/bench_match_devset.py [OUT_DIR]      # full run, prints the scores
    python bench/run.py --only match_devset --smoke   # smoke: a 300-record slice, still scored

The export files are read with ``recon.sources.files`` when available, else
with a small column mapping here. Default settings, no labels.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
DEVSET = Path(os.environ.get("RECON_DEVSET", ROOT.parent / "shared" / "devset"))

HS_MAP = {
    "Record ID": "record_id",
    "Company name": "name",
    "Company Domain Name": "domain",
    "Website URL": "website",
    "Phone Number": "phone",
    "City": "city",
    "Country/Region": "country",
    "Create Date": "created_at",
    "Last Modified Date": "modified_at",
}
SF_MAP = {
    "ID": "record_id",
    "NAME": "name",
    "WEBSITE": "website",
    "PHONE": "phone",
    "BILLINGCITY": "city",
    "BILLINGCOUNTRY": "country",
    "CREATEDDATE": "created_at",
    "LASTMODIFIEDDATE": "modified_at",
}


def read_export(path: Path, source: str, obj: str) -> pl.DataFrame:
    """A CRM export as a canonical record frame (bench-local mapping)."""
    raw = pl.read_csv(path, infer_schema=False)
    mapping = HS_MAP if source == "hubspot" else SF_MAP
    cols = [pl.col(k).alias(v) for k, v in mapping.items() if k in raw.columns]
    return raw.select(cols).with_columns(source=pl.lit(source), object=pl.lit(obj))


def write_outputs(result, out: Path) -> None:  # type: ignore[no-untyped-def]
    out.mkdir(parents=True, exist_ok=True)
    result.links.select(
        pl.col("record_id_l").alias("hubspot_id"),
        pl.col("record_id_r").alias("salesforce_id"),
        "score",
        "tier",
    ).write_csv(out / "links.csv")
    result.duplicates.select("source", "record_id_l", "record_id_r", "score", "tier").write_csv(
        out / "duplicates.csv"
    )


def _score_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("devset_score", DEVSET / "score.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(smoke: bool = False, out: Path | None = None) -> dict:
    from recon.match import match_records

    if not (DEVSET / "score.py").exists():
        return {"skipped": f"no devset at {DEVSET}"}
    hs = read_export(DEVSET / "companies_hubspot.csv", "hubspot", "companies")
    sf = read_export(DEVSET / "companies_salesforce.csv", "salesforce", "Account")
    if smoke:
        hs, sf = hs.head(300), sf.head(300)
    started = time.perf_counter()
    result = match_records(hs, sf, entity="companies")
    elapsed = time.perf_counter() - started
    out = out or Path(tempfile.mkdtemp(prefix="recon-devset-"))
    write_outputs(result, out)
    scores = _score_module().score(out, DEVSET)
    return {
        "smoke": smoke,
        "records": [hs.height, sf.height],
        "seconds": round(elapsed, 3),
        "scores": scores,
        "counts": result.counts,
        "out": str(out),
    }


if __name__ == "__main__":
    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    print(json.dumps(run(smoke=False, out=dest), indent=1, default=str))
