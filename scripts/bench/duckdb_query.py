"""DuckDB's side of the history-query benchmark, and the result check (scripts/bench/queries.sh).

  duckdb_query.py run HISTORY SQL OUT.csv
      A view per table folder under HISTORY (read_parquet('HISTORY/NAME/**/*.parquet',
      hive_partitioning = true), as `spindle query` registers them), TimeZone UTC, then SQL;
      writes the rows as CSV to OUT.csv and prints `duckdb: rows=N query_ms=T` (T: execute and
      fetch, in this process, view binding and Parquet metadata reads included).
  duckdb_query.py compare A.csv B.csv
      Same rows in the same order? Numbers equal within 1e-6 relative (DataFusion 55's
      percentile_cont quantises its interpolation weight to 1e-6: 92.2459999 where DuckDB
      gives 92.24599999999991 for the exact 92.246), timestamps compared
      after normalising their text (Arrow's `2026-01-01T00:00:00Z` vs DuckDB's
      `2026-01-01 00:00:00+00`). Prints `same: rows=N` or `differ: …`, exit 1 when they differ.
"""

import csv
import math
import os
import re
import sys
import time

import duckdb


def run(history: str, sql: str, out: str) -> int:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name in sorted(os.listdir(history)):
        path = os.path.join(history, name)
        if os.path.isdir(path) and not name.startswith((".", "_")):
            con.execute(
                f"CREATE VIEW \"{name}\" AS SELECT * FROM read_parquet('{path}/**/*.parquet', hive_partitioning = true)"
            )
    t0 = time.perf_counter()
    cur = con.execute(sql)
    rows = cur.fetchall()
    ms = (time.perf_counter() - t0) * 1000
    cols = [d[0] for d in cur.description]
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow(["" if v is None else v for v in r])
    print(f"duckdb: rows={len(rows)} query_ms={ms:.1f}")
    return 0


TS = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}(:?\d{2})?)?$")


def norm(v: str):
    v = v.strip()
    m = TS.match(v)
    if m:
        frac = (m.group(3) or "").rstrip("0").rstrip(".")
        return f"{m.group(1)} {m.group(2)}{frac}"
    try:
        return float(v)
    except ValueError:
        return v


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True
        return abs(a - b) <= max(1e-9, 1e-6 * max(abs(a), abs(b)))
    return a == b


def compare(pa: str, pb: str) -> int:
    with open(pa, newline="", encoding="utf-8") as f:
        ra = list(csv.reader(f))[1:]
    with open(pb, newline="", encoding="utf-8") as f:
        rb = list(csv.reader(f))[1:]
    if len(ra) != len(rb):
        print(f"differ: rows {len(ra)} vs {len(rb)}")
        return 1
    for i, (x, y) in enumerate(zip(ra, rb)):
        if len(x) != len(y) or not all(same(norm(u), norm(v)) for u, v in zip(x, y)):
            print(f"differ: row {i + 1}: {x} vs {y}")
            return 1
    print(f"same: rows={len(ra)}")
    return 0


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "run":
        return run(sys.argv[2], sys.argv[3], sys.argv[4])
    if len(sys.argv) == 4 and sys.argv[1] == "compare":
        return compare(sys.argv[2], sys.argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
