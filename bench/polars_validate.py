#!/usr/bin/env python3
"""Reference implementation of the `emdp validate` rules in Polars.

Used by bench/validate_vs_polars.sh to compare speed, memory and results with
the Rust binary. Reads a CSV file and prints one JSON summary on stdout:

  {"total":N,"valid":N,"incomplete":N,"inconsistent":N,
   "duplicates":{"exact":N,"conflicting":N},
   "reasons":{"missing_building_id":N, ..., "malformed_row":N}}

Everything is vectorised (one lazy query, collected once); all columns are
read as strings and parsed by expressions.

Known gap: `malformed_row` (a record with more fields than the header) cannot
be detected with Polars' CSV reader: with `truncate_ragged_lines=True` the
extra fields are silently dropped. It is always reported as 0 here (the
benchmark data has no such rows).

Usage: polars_validate.py FILE [--today YYYY-MM-DD]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

import polars as pl

FIELDS = ["building_id", "date", "consumption", "temperature", "provider"]

DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
NUM_RE = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
CTRL_RE = r"[\x00-\x1f\x7f-\x9f]"
MAX_ID_CHARS = 128
CONSUMPTION_MAX = 1_000_000.0
TEMP_MIN, TEMP_MAX = -20.0, 55.0

REASONS = [
    "missing_building_id",
    "missing_date",
    "missing_consumption",
    "missing_temperature",
    "missing_provider",
    "unparsable_date",
    "unparsable_consumption",
    "unparsable_temperature",
    "consumption_non_positive",
    "consumption_too_high",
    "temperature_out_of_range",
    "date_in_future",
    "invalid_identifier",
    "malformed_row",
]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("file")
    p.add_argument(
        "--today",
        type=dt.date.fromisoformat,
        default=dt.datetime.now(dt.timezone.utc).date(),
        help="reference date for date_in_future (default: today, UTC)",
    )
    return p.parse_args(argv)


def load(path: str) -> pl.LazyFrame:
    lf = pl.scan_csv(
        path,
        has_header=True,
        infer_schema=False,  # every column is read as String
        truncate_ragged_lines=True,  # see module docstring: malformed_row
        encoding="utf8-lossy",
    )
    # Header names matched trimmed and case-insensitively, in any order;
    # extra columns are ignored, absent ones are all-missing.
    by_norm: dict[str, str] = {}
    for name in lf.collect_schema().names():
        norm = name.strip().lstrip("\ufeff").strip().lower()
        by_norm.setdefault(norm, name)
    cols = []
    for f in FIELDS:
        src = by_norm.get(f)
        e = pl.col(src) if src is not None else pl.lit(None, dtype=pl.String)
        # trimmed value; "" (empty / whitespace-only) becomes null = missing
        t = e.str.strip_chars()
        cols.append(pl.when(t != "").then(t).alias(f))
    return lf.select(cols)


def validate(lf: pl.LazyFrame, today: dt.date) -> dict:
    bid, date, cons, temp, prov = (pl.col(f) for f in FIELDS)

    def parse_num(e: pl.Expr) -> pl.Expr:
        # null unless it matches the grammar and is finite (1e999 -> inf -> null)
        v = e.cast(pl.Float64, strict=False)
        return pl.when(e.str.contains(NUM_RE) & v.is_finite()).then(v)

    def bad_ident(e: pl.Expr) -> pl.Expr:
        return (e.str.len_chars() > MAX_ID_CHARS) | e.str.contains(CTRL_RE)

    df = lf.with_columns(
        d=pl.when(date.str.contains(DATE_RE)).then(
            date.str.to_date("%Y-%m-%d", strict=False)
        ),
        c=parse_num(cons),
        t=parse_num(temp),
    )
    d, c, t = pl.col("d"), pl.col("c"), pl.col("t")

    reasons = {
        "missing_building_id": bid.is_null(),
        "missing_date": date.is_null(),
        "missing_consumption": cons.is_null(),
        "missing_temperature": temp.is_null(),
        "missing_provider": prov.is_null(),
        "unparsable_date": date.is_not_null() & d.is_null(),
        "unparsable_consumption": cons.is_not_null() & c.is_null(),
        "unparsable_temperature": temp.is_not_null() & t.is_null(),
        "consumption_non_positive": c <= 0.0,
        "consumption_too_high": c > CONSUMPTION_MAX,
        "temperature_out_of_range": (t < TEMP_MIN) | (t > TEMP_MAX),
        "date_in_future": d > pl.lit(today),
        "invalid_identifier": bad_ident(bid) | bad_ident(prov),
    }
    # comparisons with null give null: treat as "reason not present"
    reasons = {k: v.fill_null(False) for k, v in reasons.items()}
    missing_any = pl.any_horizontal(
        [v for k, v in reasons.items() if k.startswith("missing_")]
    )
    other_any = pl.any_horizontal(
        [v for k, v in reasons.items() if not k.startswith("missing_")]
    )

    # Duplicates, among rows whose key (building_id, parsed date, provider) is
    # complete. Value identity per number: the parsed value (-0 normalised to
    # +0) where it parses, else the trimmed text; missing = both null.
    # In file order a keyed row is a duplicate iff it is not the first row of
    # its key group, and exact iff it is not the first row of its
    # (key, values) group (then some earlier row has the same key and values).
    # Counting "not first" rows needs no row index:
    #   duplicates = keyed - n_unique(key),  exact = keyed - n_unique(key+values)
    # (same result as `idx != idx.min().over(...)`, several times faster).
    has_key = bid.is_not_null() & d.is_not_null() & prov.is_not_null()
    key = pl.struct(bid, d, prov)
    key_vals = pl.struct(
        bid,
        d,
        prov,
        c + 0.0,
        pl.when(c.is_null()).then(cons).alias("c_text"),
        t + 0.0,
        pl.when(t.is_null()).then(temp).alias("t_text"),
    )
    keyed = has_key.sum()

    out = df.select(
        total=pl.len(),
        incomplete=missing_any.sum(),
        inconsistent=(~missing_any & other_any).sum(),
        dup_total=keyed - key.filter(has_key).n_unique(),
        dup_exact=keyed - key_vals.filter(has_key).n_unique(),
        **{k: v.sum() for k, v in reasons.items()},
    ).collect()
    r = out.row(0, named=True)
    total = int(r["total"])
    return {
        "total": total,
        "valid": total - int(r["incomplete"]) - int(r["inconsistent"]),
        "incomplete": int(r["incomplete"]),
        "inconsistent": int(r["inconsistent"]),
        "duplicates": {
            "exact": int(r["dup_exact"]),
            "conflicting": int(r["dup_total"]) - int(r["dup_exact"]),
        },
        "reasons": {k: int(r.get(k) or 0) for k in REASONS},  # malformed_row: 0
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    summary = validate(load(args.file), args.today)
    json.dump(summary, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
