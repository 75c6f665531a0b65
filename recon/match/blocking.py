"""Features and blocking: normalised columns per record, candidate pairs per named rule.

:func:`features` turns canonical record frames into the columns comparisons
and blocking rules name (``name_norm``, ``domain``, ``phone``...), normalising
each distinct value once. :func:`candidates` applies the blocking rules and
counts the pairs each rule produced *before* scoring.

Examples:
    >>> import polars as pl
    >>> from recon.match.settings import default_settings
    >>> f = features(pl.DataFrame({"record_id": ["1", "2"], "name": ["Acme Inc", "ACME"]}), "companies")
    >>> pairs, counts = candidates(f, None, default_settings("companies").blocking_rules)
    >>> counts["name"], pairs.height
    (1, 1)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np
import polars as pl

from .. import normalize as N
from ..models import RECORD_COLUMNS
from .levels import column_codes
from .settings import BlockingRule

__all__ = ["CANONICAL_COLUMNS", "candidates", "features"]

#: the record columns matching reads (the canonical ones but owner, archived flag and raw data)
CANONICAL_COLUMNS: tuple[str, ...] = tuple(
    c for c in RECORD_COLUMNS if c not in ("owner_id", "archived", "data")
)


def _distinct(fn: Callable[[pl.Series], pl.Series], s: pl.Series) -> pl.Series:
    """Apply a column normaliser once per distinct value."""
    s = s.cast(pl.String)
    uniq = s.unique()
    if uniq.len() > 0.8 * s.len():
        return fn(s).alias(s.name)
    mapped = fn(uniq)
    table = pl.DataFrame({"k": uniq, "v": mapped})
    return (
        pl.DataFrame({"k": s})
        .join(table, on="k", how="left", nulls_equal=True, maintain_order="left")["v"]
        .alias(s.name)
    )


def _nonlatin(names: pl.Series) -> pl.Series:
    """Whether each name holds letters of a script other than Latin (false when blank).

    Examples:
        >>> _nonlatin(pl.Series(["Société Générale", "Москва", "ゼボ KK", None])).to_list()
        [False, True, True, False]
    """
    other = names.cast(pl.String).str.contains(r"[^\p{Latin}\p{Common}\p{Inherited}]")
    return other.fill_null(False)


def _other_id(ext: pl.Series, source: pl.Series) -> pl.Series:
    """The stored id of the record in the other system, from ``external_ids`` JSON."""
    text = ext.cast(pl.String)
    sf = text.str.extract(r'"salesforce_id"\s*:\s*"([^"]+)"')
    hs = text.str.extract(r'"hubspot_id"\s*:\s*"?([0-9A-Za-z]+)"?')
    return pl.select(
        pl.when(source == "salesforce").then(hs).otherwise(_sf15(sf)).alias("xid")
    ).to_series()


def _sf15(ids: pl.Series | pl.Expr) -> pl.Expr:
    """Salesforce ids as their case-sensitive 15-character form (an 18-character id is that
    plus a checksum: a report export writes 15, the API 18; both name one record)."""
    expr = ids if isinstance(ids, pl.Expr) else pl.lit(ids)
    return (
        pl.when(expr.str.contains(r"^[0-9A-Za-z]{18}$")).then(expr.str.slice(0, 15)).otherwise(expr)
    )


def _id_key(record_id: pl.Series, source: pl.Series) -> pl.Series:
    """The id other records name this one by: a Salesforce id in its 15-character form."""
    return pl.select(
        pl.when(source == "salesforce").then(_sf15(record_id)).otherwise(record_id).alias("id_key")
    ).to_series()


def features(frame: pl.DataFrame, entity: str) -> pl.DataFrame:
    """Normalised feature columns for matching, one row per record (``_i`` = row number).

    Missing canonical columns are treated as all-null.
    """
    n = frame.height
    cols = {}
    for c in CANONICAL_COLUMNS:
        cols[c] = (
            frame[c].cast(pl.String) if c in frame.columns else pl.Series(c, [None] * n, pl.String)
        )
    source = cols["source"].fill_null("hubspot")
    obj = cols["object"]
    country = _distinct(N.countries, cols["country"])
    site = _distinct(N.domains, cols["website"])
    # a website that is a page on a platform ("facebook.com/joespizza") names no domain, and
    # the host a pull or an export keeps of it as the domain ("facebook.com") names the
    # platform: two businesses with Facebook pages do not share a domain
    stored = _distinct(N.domains, cols["domain"])
    # (only a website that keys no domain can be a page; read only where a domain is stored)
    maybe = (site.is_null() & stored.is_not_null() & cols["website"].is_not_null()).fill_null(False)
    if maybe.any():
        platform = pl.Series("p", [None] * n, pl.String).scatter(
            maybe.arg_true(), N.page_platforms(cols["website"].filter(maybe))
        )
        stored = pl.select(pl.when(stored == platform).then(None).otherwise(stored)).to_series()
    dom = pl.select(pl.coalesce(stored, site)).to_series()
    out: dict[str, pl.Series] = {
        "_i": pl.Series("_i", range(n), pl.UInt32),
        "source": source,
        "object": obj,
        "record_id": cols["record_id"],
        "xid": _other_id(cols["external_ids"], source),
        "id_key": _id_key(cols["record_id"], source),
        "phone": N.phones(cols["phone"], country),
        "city": _distinct(N.cities, cols["city"]),
        "country": country,
    }
    if entity == "companies":
        name = _distinct(N.company_names, cols["name"])
        out["name_norm"] = name
        # the e-mail addresses of the company's contacts, space-separated (null: none known)
        out["contact_emails"] = (
            frame["contact_emails"].cast(pl.String)
            if "contact_emails" in frame.columns
            else pl.Series("contact_emails", [None] * n, pl.String)
        )
        out["domain"] = dom
        # a host under the registered domain ("hn.sgcc.com.cn"): tells two arms of a group apart
        hosts = pl.select(
            pl.coalesce(
                _distinct(N.subhosts, cols["website"]), _distinct(N.subhosts, cols["domain"])
            )
        ).to_series()
        out["domain_host"] = (
            pl.DataFrame({"h": hosts, "d": dom})
            .select(
                pl.when(pl.col("h").str.ends_with(pl.lit(".") + pl.col("d")).fill_null(False))
                .then(pl.col("h"))
                .alias("domain_host")
            )
            .to_series()
        )
    else:
        email = _distinct(N.emails, cols["email"])
        # a placeholder part ("[not provided]", what a Lead create fills in) is no name
        first, last_part = (
            pl.select(pl.when(N.person_names(c, part=True).is_not_null()).then(c)).to_series()
            for c in (cols["first_name"], cols["last_name"])
        )
        # the whole name is read only where the record has no name parts at all: parts that
        # are all placeholders ("N/A", "N/A") say there is no name, whatever the Name reads
        typed = [c.cast(pl.String).str.strip_chars().fill_null("") != "" for c in
                 (cols["first_name"], cols["last_name"])]  # fmt: skip
        full = pl.select(
            pl.when(first.is_not_null() | last_part.is_not_null())
            .then(pl.concat_str([first, last_part], separator=" ", ignore_nulls=True))
            .when(~typed[0] & ~typed[1])
            .then(cols["name"])
        ).to_series()
        person = N.person_names(full)
        company = _distinct(N.company_names, cols["company"])
        # a role or placeholder address (info@, sales@, noreply@, test@test.com) is a mailbox
        # many people share, no person's key; its domain still names the company
        out["email"] = pl.select(pl.when(~N.role_addresses(email)).then(email)).to_series()
        out["name_norm"] = person
        out["person_norm"] = person
        out["company_norm"] = company
        out["domain"] = pl.select(pl.coalesce(N.domains(email), dom)).to_series()
        last = N.person_names(cols["last_name"], part=True)
        # no name (placeholder words only, "Null Null"): no surname key either
        last = pl.select(
            pl.when(person.is_not_null()).then(pl.coalesce(last, person.str.split(" ").list.last()))
        ).to_series()
        out["last_company_key"] = pl.select(
            pl.when(last.is_not_null() & company.is_not_null()).then(
                last + "|" + company.str.split(" ").list.first()
            )
        ).to_series()
    # a stale copy ("DO NOT USE - Acme", "Acme (old)"): its marks are stripped for comparing,
    # and the mark makes it lose a link to its live twin
    out["stale"] = N.stale_marks(cols["name"] if entity == "companies" else full)
    # names written in another script than Latin: not compared letter by letter with Latin ones
    out["name_nonlatin"] = _nonlatin(cols["name"] if entity == "companies" else full)
    if entity != "companies":
        out["company_norm_nonlatin"] = _nonlatin(cols["company"])
    df = pl.DataFrame({k: v.alias(k) for k, v in out.items()})
    df = df.with_columns(name_script=_distinct(N.script_keys, df["name_norm"]))
    if "company_norm" in df.columns:
        df = df.with_columns(company_norm_script=_distinct(N.script_keys, df["company_norm"]))
    compact = df["name_norm"].str.replace_all(" ", "")
    acr = N.acronyms(df["name_norm"])
    df = df.with_columns(
        name_key=pl.col("name_norm"),
        name_compact=compact,
        # a short one-word name is its own acronym key; a longer name offers its initials
        acronym_key=pl.when(
            compact.str.len_chars().is_between(2, 6) & ~pl.col("name_norm").str.contains(" ")
        )
        .then(compact)
        .otherwise(pl.when(acr.str.len_chars() >= 2).then(acr)),
        acronym=acr,
        # typos sit in the head or the tail of a name, rarely in both
        name_prefix=pl.when(compact.str.len_chars() >= 7).then(compact.str.slice(0, 6)),
        name_suffix=pl.when(compact.str.len_chars() >= 7).then(compact.str.slice(-6)),
        domain_stem=pl.col("domain").str.split(".").list.first(),
    )
    return _passthrough(df, frame)


#: input columns never passed through to matching (raw JSON, bookkeeping)
_NOT_PASSED = frozenset({"data", "archived", "owner_id"})


def _passthrough(df: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """Other input columns (a date of birth, a postcode), stripped and lower-cased, for
    generic comparisons and blocking rules; a name already used by a feature is not replaced."""
    extra = [
        c
        for c in frame.columns
        if c not in CANONICAL_COLUMNS and c not in _NOT_PASSED and c not in df.columns
    ]
    if not extra:
        return df
    vals = frame.select(
        pl.col(c).cast(pl.String).str.strip_chars().str.to_lowercase().replace("", None)
        for c in extra
    )
    return pl.concat([df, vals], how="horizontal")


def _key_pairs(
    left: pl.DataFrame,
    right: pl.DataFrame,
    key: str,
    max_block: int,
    dedupe: bool,
    min_shared: int = 1,
    *,
    multi: bool = False,
    star: bool = False,
) -> pl.DataFrame:
    """Pairs of records sharing a value of ``key``. A key held by more than ``max_block``
    records on a side forms no block; with ``star`` (one key per record, an identifying one)
    it pairs as a star instead (:func:`_star_pairs`). ``multi``: a record holds several keys
    (one row each, no repeats), so a pair may meet more than once (words, n-grams)."""
    lk0 = left.lazy().select("_i", key).drop_nulls()
    rk = lk0 if dedupe else right.lazy().select("_i", key).drop_nulls()
    lk = lk0
    for side in (lk0,) if dedupe else (lk0, rk):
        small = side.group_by(key).agg(pl.len().alias("_n")).filter(pl.col("_n") <= max_block)
        lk = lk.join(small.select(key), on=key, how="semi")
    pairs = lk.join(rk, on=key, how="inner", suffix="_r").select(
        pl.col("_i").alias("_il"), pl.col("_i_r").alias("_ir")
    )
    if star and not multi and min_shared == 1:  # one key per record: crowded keys as stars
        codes = (
            pl.concat([lk0.select(key), rk.select(key)] if not dedupe else [lk0.select(key)])
            .unique()
            .collect()[key]
        )
        book = {v: k for k, v in enumerate(codes.to_list())}

        def coded(frame: pl.LazyFrame, n: int) -> np.ndarray:
            got = frame.collect()
            out = np.full(n, -1, dtype=np.int64)
            out[got["_i"].to_numpy()] = [book[v] for v in got[key].to_list()]
            return out

        n_l = left.height
        cl = coded(lk0, n_l)
        cr = cl if dedupe else coded(rk, right.height)
        count_l = np.bincount(cl[cl >= 0], minlength=len(book))
        count_r = count_l if dedupe else np.bincount(cr[cr >= 0], minlength=len(book))
        sl, sr = _star_pairs(cl, cr, count_l, count_r, max_block, dedupe)
        if len(sl):
            stars = pl.DataFrame({"_il": sl.astype(np.uint32), "_ir": sr.astype(np.uint32)})
            pairs = pl.concat([pairs, stars.lazy().cast(pairs.collect_schema())])
    if dedupe:
        pairs = pairs.filter(pl.col("_il") < pl.col("_ir"))
    if min_shared > 1:  # pairs meet once per shared key
        pairs = (
            pairs.group_by("_il", "_ir")
            .len()
            .filter(pl.col("len") >= min_shared)
            .select("_il", "_ir")
        )
    elif multi:
        pairs = pairs.unique()
    return pairs.collect()


def _code_pairs(
    cl: np.ndarray, cr: np.ndarray, max_block: int, dedupe: bool, star: bool = False
) -> pl.DataFrame:
    """:func:`_key_pairs` of one key column given as integer codes (one code book for both
    sides, null -1): the records of each code, paired by sorting, without a join. With
    ``star``, a code held by more than ``max_block`` records on a side pairs as a star
    (:func:`_star_pairs`); else it forms no block.

    Examples:
        >>> _code_pairs(np.array([0, 1, -1]), np.array([1, 0, 0]), 5, False).sort("_il", "_ir").rows()
        [(0, 1), (0, 2), (1, 0)]
        >>> _code_pairs(np.array([0, 1, -1]), np.array([1, 0, 0]), 1, False).rows()
        [(1, 0)]
        >>> _code_pairs(np.array([0, 1, -1]), np.array([1, 0, 0]), 1, False, star=True).rows()
        [(1, 0), (0, 1)]
    """
    empty = pl.DataFrame(schema={"_il": pl.UInt32, "_ir": pl.UInt32})
    cl = cl.astype(np.int64)
    cr = cl if dedupe else cr.astype(np.int64)
    books = int(max(cl.max(initial=-1), cr.max(initial=-1))) + 1
    if books == 0:
        return empty
    count_l = np.bincount(cl[cl >= 0], minlength=books)
    count_r = count_l if dedupe else np.bincount(cr[cr >= 0], minlength=books)
    # a key held by more than max_block records on either side forms no block
    ok = (count_l <= max_block) & (count_r <= max_block) & (count_r > 0)
    order_r = np.argsort(cr, kind="stable")  # nulls (-1) first, then each code's records
    start_r = np.cumsum(count_r) - count_r + int((cr < 0).sum())
    left = np.flatnonzero(cl >= 0)
    left = left[ok[cl[left]]]
    code = cl[left]
    reps = count_r[code]
    total = int(reps.sum())
    il = np.repeat(left, reps)
    offset = np.arange(total) - np.repeat(np.cumsum(reps) - reps, reps)
    ir = order_r[np.repeat(start_r[code], reps) + offset]
    if dedupe:
        keep = il < ir
        il, ir = il[keep], ir[keep]
    if star:
        sl, sr = _star_pairs(cl, cr, count_l, count_r, max_block, dedupe)
        if len(sl):
            il, ir = np.concatenate([il, sl]), np.concatenate([ir, sr])
    return pl.DataFrame({"_il": il.astype(np.uint32), "_ir": ir.astype(np.uint32)})


def _star_pairs(
    cl: np.ndarray,
    cr: np.ndarray,
    count_l: np.ndarray,
    count_r: np.ndarray,
    max_block: int,
    dedupe: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs for a key held by more than ``max_block`` records on one side: each record of the
    crowd with the crowd's first record (inside one system), or the other side's records with
    it (across). Linear, not quadratic: a shared switchboard number costs a candidate pair per
    record, and many copies of one record (an import run twice, fifty times) are still found.

    Examples:
        >>> cl = np.array([0, 0, 0, 1]); counts = np.bincount(cl)
        >>> [p.tolist() for p in _star_pairs(cl, cl, counts, counts, 2, True)]
        [[0, 0], [1, 2]]
    """
    none = np.empty(0, dtype=np.int64)
    first_l = np.full(len(count_l), -1, dtype=np.int64)
    valid = np.flatnonzero(cl >= 0)
    first_l[cl[valid][::-1]] = valid[::-1]  # the lowest row of each code
    if dedupe:
        crowd = valid[count_l[cl[valid]] > max_block]
        rep = first_l[cl[crowd]]
        keep = crowd != rep
        return rep[keep], crowd[keep]
    # across: one crowded side and a side within the cap (both crowded: a generic key)
    out_l, out_r = [none], [none]
    valid_r = np.flatnonzero(cr >= 0)
    crowded_l = (count_l > max_block) & (count_r <= max_block)
    right = valid_r[crowded_l[cr[valid_r]]] if len(crowded_l) else none
    if len(right):
        out_l.append(first_l[cr[right]])
        out_r.append(right)
    first_r = np.full(len(count_r), -1, dtype=np.int64)
    first_r[cr[valid_r][::-1]] = valid_r[::-1]
    crowded_r = (count_r > max_block) & (count_l <= max_block) & (count_l > 0)
    left = valid[crowded_r[cl[valid]]] if len(crowded_r) else none
    if len(left):
        out_l.append(left)
        out_r.append(first_r[cl[left]])
    return np.concatenate(out_l), np.concatenate(out_r)


def _rarest(frame: pl.DataFrame, col: str, keep: int, freq: pl.DataFrame) -> pl.DataFrame:
    """Each record's ``keep`` rarest values of the exploded column ``col``."""
    return (
        frame.join(freq, on=col, how="inner")
        .sort(["_i", "df", col])
        .group_by("_i", maintain_order=True)
        .head(keep)
        .select("_i", col)
    )


def _grams(frame: pl.DataFrame, column: str, kind: str, n: int) -> pl.DataFrame:
    """Distinct (record ``_i``, gram ``g``) rows: words (``tokens``) or ``n``-grams."""
    base = frame.select("_i", pl.col(column).alias("s")).drop_nulls()
    if kind == "tokens":
        out = base.select("_i", pl.col("s").str.split(" ").alias("g")).explode("g")
        return out.filter(pl.col("g").str.len_chars() >= 2).unique()
    if n <= 7 and (base["s"].str.len_bytes() == base["s"].str.len_chars()).all():
        return _packed_grams(base, n)
    length = pl.col("s").str.len_chars().cast(pl.Int32)
    # lazily, so the exploded (record, offset) rows are never held next to their grams
    return (
        base.lazy()
        .with_columns(off=pl.int_ranges(0, pl.max_horizontal(length - n + 1, 1), dtype=pl.Int32))
        .explode("off")
        .select("_i", pl.col("s").str.slice(pl.col("off"), n).alias("g"))
        .unique()
        .collect()
    )


def sorted_distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted: a sort and a neighbour test (numpy's own ``unique`` hashes,
    which is many times slower on wide integers).

    Examples:
        >>> sorted_distinct(np.array([5, 1, 5, 3], dtype=np.uint64)).tolist()
        [1, 3, 5]
    """
    out = np.sort(values)
    return out[np.concatenate([[True], out[1:] != out[:-1]])] if len(out) else out


def _packed_grams(base: pl.DataFrame, n: int) -> pl.DataFrame:
    """``n``-grams of ASCII values as integers: the gram's bytes big-endian (so integers
    order as the strings do), a value shorter than ``n`` as itself with its length above.

    Examples:
        >>> g = _packed_grams(pl.DataFrame({"_i": [0, 1], "s": ["abcde", "ab"]}), 4)
        >>> sorted(g.rows())
        [(0, 1633837924), (0, 1650680933), (1, 12884926818)]
    """
    values = base["s"]
    lengths = values.str.len_bytes().to_numpy().astype(np.int64)
    buf = np.frombuffer("".join(values.to_list()).encode("ascii"), dtype=np.uint8)
    buf = np.concatenate([buf, np.zeros(n, dtype=np.uint8)]).astype(np.uint64)
    starts = np.cumsum(lengths) - lengths
    count = np.maximum(lengths - n + 1, 1)
    first = np.cumsum(count) - count
    pos = np.repeat(starts, count) + (np.arange(int(count.sum())) - np.repeat(first, count))
    size = np.repeat(lengths, count)
    gram = np.zeros(len(pos), dtype=np.uint64)
    for k in range(n):
        byte = np.where(size > k, buf[pos + k], 0).astype(np.uint64)
        gram |= byte << np.uint64(8 * (n - 1 - k))
    short = size < n
    gram[short] = (gram[short] >> (np.uint64(8) * (n - size[short]).astype(np.uint64))) | (
        (size[short].astype(np.uint64) + np.uint64(1)) << np.uint64(8 * n)
    )
    rec = np.repeat(base["_i"].to_numpy().astype(np.uint64), count)
    width = 8 * n + 4  # gram bits, the short-value length marker included
    if int(rec.max(initial=0)) < 1 << (64 - width):  # one integer per (record, gram)
        key = sorted_distinct((rec << np.uint64(width)) | gram)
        rec, gram = key >> np.uint64(width), key & np.uint64((1 << width) - 1)
        return pl.DataFrame({"_i": rec.astype(np.uint32), "g": gram})
    return pl.DataFrame({"_i": rec.astype(np.uint32), "g": gram}).unique()


def _gram_pairs(
    left: pl.DataFrame, right: pl.DataFrame, rule: BlockingRule, dedupe: bool
) -> pl.DataFrame:
    gl = _grams(left, rule.column, rule.kind, rule.n)
    gr = gl if dedupe else _grams(right, rule.column, rule.kind, rule.n)
    both = pl.concat([gl.select("g"), gr.select("g")]) if not dedupe else gl.select("g")
    # a gram held by more than twice the block cap can never form a block under the cap
    # on both sides: dropping it first is lossless and keeps the sort below small
    freq = both.group_by("g").agg(pl.len().alias("df")).filter(pl.col("df") <= 2 * rule.max_block)
    rl = _rarest(gl, "g", rule.keep, freq).rename({"g": "k"})
    rr = rl if dedupe else _rarest(gr, "g", rule.keep, freq).rename({"g": "k"})
    shared = (rule.dedupe_min_shared or rule.min_shared) if dedupe else rule.min_shared
    return _key_pairs(rl, rr, "k", rule.max_block, dedupe, shared, multi=True)


def _id_pairs(left: pl.DataFrame, right: pl.DataFrame, dedupe: bool) -> pl.DataFrame:
    if dedupe:
        return pl.DataFrame(schema={"_il": pl.UInt32, "_ir": pl.UInt32})
    a = (
        left.select(pl.col("_i").alias("_il"), pl.col("xid"))
        .drop_nulls()
        .join(right.select(pl.col("_i").alias("_ir"), pl.col("id_key").alias("xid")), on="xid")
    )
    b = (
        right.select(pl.col("_i").alias("_ir"), pl.col("xid"))
        .drop_nulls()
        .join(left.select(pl.col("_i").alias("_il"), pl.col("id_key").alias("xid")), on="xid")
    )
    return pl.concat([a.select("_il", "_ir"), b.select("_il", "_ir")]).unique()


def candidates(
    left: pl.DataFrame,
    right: pl.DataFrame | None,
    rules: Sequence[BlockingRule],
    *,
    kept: dict[str, pl.DataFrame] | None = None,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Candidate pairs (``_il``, ``_ir`` row numbers) from every blocking rule, deduplicated.

    With ``right`` None, pairs are inside ``left`` (``_il < _ir``). Returns the
    pairs and the number of pairs each rule produced before deduplication. The
    pairs of each rule whose name is a key of ``kept`` are stored there too (the
    EM blocks reuse them instead of blocking again).
    """
    dedupe = right is None
    r = left if right is None else right
    parts = []
    counts: dict[str, int] = {}
    for rule in rules:
        if rule.columns or rule.prefix:  # composite / first-n-chars key on any columns
            if not all(c in left.columns for c in rule.key_columns()):
                continue
            kl = left.select("_i", rule.key_expr())
            kr = kl if right is None else r.select("_i", rule.key_expr())
            p = _key_pairs(kl, kr, rule.key_name(), rule.max_block, dedupe, star=rule.star)
            counts[rule.name] = p.height
            parts.append(p)
            continue
        if rule.column not in left.columns and rule.kind != "ids":
            continue
        if rule.kind == "exact":
            # codes from the record cache the levels read too (equal values compared once)
            cl, cr = column_codes(left, r, rule.column)
            p = _code_pairs(cl, cr, rule.max_block, dedupe, rule.star)
        elif rule.kind == "ids":
            p = _id_pairs(left, r, dedupe)
        else:
            p = _gram_pairs(left, r, rule, dedupe)
        counts[rule.name] = p.height
        parts.append(p)
        if kept is not None and rule.name in kept:
            kept[rule.name] = p
    if not parts:
        return pl.DataFrame(schema={"_il": pl.UInt32, "_ir": pl.UInt32}), counts
    # one 64-bit key per pair: a sort and a neighbour test give the distinct pairs in order
    key = np.concatenate(
        [
            (p["_il"].cast(pl.UInt64).to_numpy() << np.uint64(32))
            | p["_ir"].cast(pl.UInt64).to_numpy()
            for p in parts
        ]
    )
    key = sorted_distinct(key)
    pairs = pl.DataFrame(
        {
            "_il": (key >> np.uint64(32)).astype(np.uint32),
            "_ir": (key & np.uint64(0xFFFFFFFF)).astype(np.uint32),
        }
    )
    counts["total"] = pairs.height
    return pairs, counts


def external_ids_json(value: dict[str, str]) -> str:
    """The ``external_ids`` JSON form of a mapping (for tests and sources)."""
    return json.dumps(value, sort_keys=True)
