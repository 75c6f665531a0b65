"""Splink 5 (DuckDB) company matcher, configured carefully, with recon match-files' file contract.

    python bench/peers/splink_companies.py HUBSPOT.csv SALESFORCE.csv --out DIR [--threshold P]

Reads the two export files with DuckDB, cleans them in SQL (lower case, accents stripped,
punctuation, ``&``/and, legal forms of many countries removed; domain from website or domain
column without scheme, ``www`` and path; the domain's stem; phone's last 9 digits; city; country
as an ISO code), then a ``link_and_dedupe`` Splink model:

- name: null / exact / Jaro-Winkler >= 0.95 / word subset (one name's words all in the other's) /
  Jaro-Winkler >= 0.88 / a shared word / else (six levels and null);
- domain: null / exact (term-frequency adjusted) / same stem, other suffix / else;
- phone, city (exact), country (ISO code, exact);
- prior from deterministic rules, u by random sampling, m by EM on domain and on name blocks;
- predictions blocked on name, domain, domain stem, phone, and first name word + country.

links.csv: cross-system pairs at or above ``--threshold`` (chosen on the devset's labels: 0.9),
one-to-one by descending probability; tier ``auto`` at >= 0.99, else ``review``.
duplicates.csv: within-system pairs of the clusters Splink builds at ``--dup-threshold``
(connected components over all pairs at that probability, as Splink's clustering does).
"""

from __future__ import annotations

import argparse
import csv
import logging
import time
from pathlib import Path

_FORMS = (
    "the inc incorporated corp corporation co company cos ltd limited llc plc llp lp gmbh mbh ag kg kgaa "
    "sa sas sarl spa srl bv nv oy oyj ab asa as aps kk pty pvt private ltda sl slu ooo oao zao ao pao ood "
    "eood ad ae epe se tbk bhd sdn pte holdings group intl international"
)
LEGAL_FORMS = _FORMS.split()
COUNTRY_ALIASES = {
    "united states": "US", "united states of america": "US", "usa": "US", "us": "US", "u s": "US",
    "u s a": "US", "america": "US", "united kingdom": "GB", "uk": "GB", "england": "GB",
    "great britain": "GB", "britain": "GB", "scotland": "GB", "wales": "GB", "germany": "DE",
    "deutschland": "DE", "deu": "DE", "france": "FR", "fra": "FR", "netherlands": "NL",
    "the netherlands": "NL", "holland": "NL", "switzerland": "CH", "schweiz": "CH", "japan": "JP",
    "jpn": "JP", "india": "IN", "ind": "IN", "canada": "CA", "australia": "AU", "china": "CN",
    "russia": "RU", "russian federation": "RU", "rus": "RU", "greece": "GR", "hellas": "GR",
    "grc": "GR", "bulgaria": "BG", "bgr": "BG", "brazil": "BR", "brasil": "BR", "bra": "BR",
    "spain": "ES", "espana": "ES", "esp": "ES", "italy": "IT", "korea": "KR", "south korea": "KR",
}  # fmt: skip
COLUMNS = {  # canonical -> header keys (lower case, letters and digits) of both export formats
    "unique_id": ("recordid", "hsobjectid", "id"),
    "name": ("companyname", "name"),
    "domain": ("companydomainname", "domain"),
    "website": ("websiteurl", "website"),
    "phone": ("phonenumber", "phone"),
    "city": ("city", "billingcity"),
    "country": ("countryregion", "country", "billingcountry"),
}


def _key(label: str) -> str:
    return "".join(ch for ch in label.lower() if ch.isalnum())


def _select(con, path: Path, source: str) -> str:  # type: ignore[no-untyped-def]
    header = con.execute(
        f"select * from read_csv('{path}', all_varchar=true, header=true) limit 0"
    ).description
    keys = {_key(d[0]): d[0] for d in header}
    cols = []
    for canon, aliases in COLUMNS.items():
        label = next((keys[a] for a in aliases if a in keys), None)
        cols.append(f'"{label}" as {canon}' if label else f"null as {canon}")
    return f"select '{source}' as source_dataset, {', '.join(cols)} from read_csv('{path}', all_varchar=true, header=true)"


def prepare(con, hubspot: Path, salesforce: Path) -> None:  # type: ignore[no-untyped-def]
    forms = "[" + ", ".join(f"'{f}'" for f in LEGAL_FORMS) + "]"
    con.execute("create table country_alias (alias varchar, iso varchar)")
    con.executemany("insert into country_alias values (?, ?)", list(COUNTRY_ALIASES.items()))
    con.execute(
        f"create table raw as {_select(con, hubspot, 'hubspot')} union all {_select(con, salesforce, 'salesforce')}"
    )
    con.execute(
        rf"""
        create table recs as
        with a as (
            select *,
              trim(regexp_replace(regexp_replace(regexp_replace(
                lower(strip_accents(coalesce(name, ''))), '&', ' and ', 'g'),
                '[^a-z0-9 ]+', ' ', 'g'), '\s+', ' ', 'g')) as name_ascii,
              regexp_replace(regexp_replace(regexp_replace(lower(trim(coalesce(nullif(domain, ''), website, ''))),
                '^[a-z]+://', ''), '^www[0-9]*\.', ''), '[/:?#].*$', '') as dom,
              regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g') as digits,
              lower(trim(regexp_replace(coalesce(country, ''), '[^A-Za-z ]', ' ', 'g'))) as country_key
            from raw
        ), b as (
            select *, array_to_string(list_filter(str_split(name_ascii, ' '),
                lambda x: x <> '' and not list_contains({forms}, x)), ' ') as name_stripped
            from a
        )
        select source_dataset, unique_id,
          nullif(coalesce(nullif(name_stripped, ''), name_ascii), '') as name_clean,
          list_filter(str_split(coalesce(nullif(name_stripped, ''), name_ascii), ' '), lambda x: x <> '') as name_tokens,
          nullif(split_part(coalesce(nullif(name_stripped, ''), name_ascii), ' ', 1), '') as name_tok1,
          nullif(dom, '') as domain,
          nullif(split_part(dom, '.', 1), '') as domain_stem,
          case when length(digits) >= 7 then right(digits, 9) end as phone_digits,
          nullif(lower(trim(city)), '') as city,
          coalesce(ca.iso, case when length(country_key) = 2 then upper(country_key) end) as country_iso
        from b left join country_alias ca on ca.alias = b.country_key
        """
    )


def settings():  # type: ignore[no-untyped-def]
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    name = cl.CustomComparison(
        output_column_name="name",
        comparison_levels=[
            cll.NullLevel("name_clean"),
            cll.ExactMatchLevel("name_clean"),
            cll.JaroWinklerLevel("name_clean", 0.95),
            cll.CustomLevel(
                "(list_has_all(name_tokens_l, name_tokens_r) or list_has_all(name_tokens_r, name_tokens_l))",
                label_for_charts="word subset",
            ),
            cll.JaroWinklerLevel("name_clean", 0.88),
            cll.ArrayIntersectLevel("name_tokens", 1),
            cll.ElseLevel(),
        ],
    )
    domain = cl.CustomComparison(
        output_column_name="domain",
        comparison_levels=[
            cll.NullLevel("domain"),
            cll.ExactMatchLevel("domain", term_frequency_adjustments=True),
            cll.ExactMatchLevel("domain_stem").configure(
                label_for_charts="same stem, other suffix"
            ),
            cll.ElseLevel(),
        ],
    )
    return SettingsCreator(
        link_type="link_and_dedupe",
        unique_id_column_name="unique_id",
        comparisons=[
            domain,
            name,
            cl.ExactMatch("phone_digits"),
            cl.ExactMatch("city"),
            cl.ExactMatch("country_iso"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("name_clean"),
            block_on("domain"),
            block_on("domain_stem"),
            block_on("phone_digits"),
            block_on("name_tok1", "country_iso"),
            block_on("name_tok1", "city"),
            block_on("substr(name_clean, 1, 4)", "substr(domain_stem, 1, 3)"),
        ],
        retain_intermediate_calculation_columns=False,
    )


def run(
    hubspot: Path,
    salesforce: Path,
    out: Path,
    *,
    threshold: float = 0.9,
    dup_threshold: float = 0.9,
) -> dict:
    import duckdb
    from splink import DuckDBAPI, Linker, block_on

    started = time.perf_counter()
    con = duckdb.connect()
    prepare(con, hubspot, salesforce)
    db_api = DuckDBAPI(connection=con)
    for src in ("hubspot", "salesforce"):
        con.execute(f"create table recs_{src} as select * from recs where source_dataset = '{src}'")
    hs = db_api.register("recs_hubspot", dataset_display_name="hubspot")
    sf = db_api.register("recs_salesforce", dataset_display_name="salesforce")
    linker = Linker([hs, sf], settings(), log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("name_clean"), block_on("domain")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("domain"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("name_clean"))
    predictions = linker.inference.predict(
        threshold_match_probability=min(threshold, dup_threshold)
    )
    pairs = predictions.physical_name
    out.mkdir(parents=True, exist_ok=True)
    links = con.execute(
        f"select unique_id_l, unique_id_r, source_dataset_l, match_probability from {pairs} "
        f"where source_dataset_l <> source_dataset_r and match_probability >= ? order by match_probability desc",
        [threshold],
    ).fetchall()
    used_h: set[str] = set()
    used_s: set[str] = set()
    n_links = 0
    with (out / "links.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["hubspot_id", "salesforce_id", "score", "tier"])
        for a, b, src_a, p in links:
            h, s = (a, b) if src_a == "hubspot" else (b, a)
            if h in used_h or s in used_s:
                continue
            used_h.add(h)
            used_s.add(s)
            w.writerow([h, s, round(p, 4), "auto" if p >= 0.99 else "review"])
            n_links += 1
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, dup_threshold
    )
    members = con.execute(
        f"select cluster_id, source_dataset, unique_id from {clusters.physical_name} order by cluster_id, source_dataset, unique_id"
    ).fetchall()
    n_dups = 0
    with (out / "duplicates.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["source", "record_id_l", "record_id_r", "score", "tier"])
        first: dict[tuple[str, str], str] = {}
        for cluster_id, source, uid in members:
            key = (cluster_id, source)
            if key in first:
                w.writerow([source, first[key], uid, dup_threshold, "review"])
                n_dups += 1
            else:
                first[key] = uid
    return {
        "links": n_links,
        "duplicates": n_dups,
        "seconds": round(time.perf_counter() - started, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("hubspot", type=Path)
    parser.add_argument("salesforce", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.2,
        help="link match probability (0.2: chosen on the devset labels)",
    )
    parser.add_argument(
        "--dup-threshold", type=float, default=0.9, help="duplicate clustering probability"
    )
    args = parser.parse_args(argv)
    print(
        run(
            args.hubspot,
            args.salesforce,
            args.out,
            threshold=args.threshold,
            dup_threshold=args.dup_threshold,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
