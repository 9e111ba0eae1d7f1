"""Do Spindle's and Spark's feature outputs hold the same rows? (scripts/bench/spark.sh)

  compare_features.py SPINDLE_DIR SPARK_DIR [--rel 1e-9] [--abs 1e-9]

Reads both Parquet outputs with DuckDB (Spindle's Hive-partitioned history folder
`features/date=…/hour=…/*.parquet`, Spark's flat `part-*.parquet`; both store the window
bounds as UTC-adjusted Parquet TIMESTAMP(MICROS) — Spindle by default, Spark because the
benchmark sets spark.sql.parquet.outputTimestampType (its default is INT96) — compared here as
epoch milliseconds) and matches rows on (machine_id, window_start). Every other
column must agree: counts exactly, floats within max(abs, rel × |value|), NULL only against NULL.

A replay ends with the windows still open at the end of the topic: Spindle closes them at the
end of input (`--until-idle`), Spark's AvailableNow query only closes the windows its final
watermark (largest event time − 5 s) has passed. Rows Spindle has beyond the last window_start
Spark wrote are therefore counted apart ("open at end"), not as extra. Prints one line
`compare: spindle=N spark=M matched=K missing=A extra=B different=C open_at_end=D` and,
for the first few differences, the rows; exits 1 when missing, extra or different is not 0.
"""

import argparse
import sys

import duckdb

SENSORS = ["temperature", "vibration", "power", "load", "humidity", "noise_level", "rpm"]
FLOATS = [f"{s}_{k}" for s in SENSORS for k in ("avg", "min", "max", "stddev")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spindle")
    p.add_argument("spark")
    p.add_argument("--rel", type=float, default=1e-9)
    p.add_argument("--abs", type=float, default=1e-9)
    a = p.parse_args()

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cols = ", ".join(["machine_id", "epoch_ms(window_start) AS ws", "epoch_ms(window_end) AS we", "readings"] + FLOATS)
    con.execute(
        f"CREATE TABLE s AS SELECT {cols} FROM read_parquet('{a.spindle}/**/*.parquet', hive_partitioning = false)"
    )
    con.execute(f"CREATE TABLE k AS SELECT {cols} FROM read_parquet('{a.spark}/*.parquet')")
    n_s = con.execute("SELECT count(*) FROM s").fetchone()[0]
    n_k = con.execute("SELECT count(*) FROM k").fetchone()[0]
    dup = con.execute(
        "SELECT (SELECT count(*) - count(DISTINCT (machine_id, ws)) FROM s), "
        "(SELECT count(*) - count(DISTINCT (machine_id, ws)) FROM k)"
    ).fetchone()
    last = con.execute("SELECT max(ws) FROM k").fetchone()[0]

    def close(c: str) -> str:
        return (
            f"((s.{c} IS NULL AND k.{c} IS NULL) OR "
            f"abs(s.{c} - k.{c}) <= greatest({a.abs}, {a.rel} * greatest(abs(s.{c}), abs(k.{c}))))"
        )

    same = " AND ".join(["s.we = k.we", "s.readings = k.readings"] + [close(c) for c in FLOATS])
    con.execute(
        f"""CREATE TABLE j AS SELECT
              s.machine_id IS NOT NULL AS in_s, k.machine_id IS NOT NULL AS in_k,
              coalesce(s.ws, k.ws) AS ws, coalesce(s.machine_id, k.machine_id) AS machine_id,
              CASE WHEN s.machine_id IS NOT NULL AND k.machine_id IS NOT NULL THEN coalesce({same}, false) END AS same
            FROM s FULL OUTER JOIN k ON s.machine_id = k.machine_id AND s.ws = k.ws"""
    )
    matched, missing, extra, different, open_end = con.execute(
        f"""SELECT
              count(*) FILTER (WHERE in_s AND in_k AND same),
              count(*) FILTER (WHERE in_k AND NOT in_s),
              count(*) FILTER (WHERE in_s AND NOT in_k AND ws <= {last if last is not None else 0}),
              count(*) FILTER (WHERE in_s AND in_k AND NOT same),
              count(*) FILTER (WHERE in_s AND NOT in_k AND ws > {last if last is not None else 0})
            FROM j"""
    ).fetchone()
    print(
        f"compare: spindle={n_s} spark={n_k} matched={matched} missing={missing} extra={extra} "
        f"different={different} open_at_end={open_end} duplicates_spindle={dup[0]} duplicates_spark={dup[1]}",
        flush=True,
    )
    bad = missing + extra + different + dup[0] + dup[1]
    if bad:
        print("compare: OUTPUTS DIFFER; first rows (machine_id, window_start ms, in spindle, in spark):", file=sys.stderr)
        for row in con.execute(
            "SELECT machine_id, ws, in_s, in_k FROM j WHERE NOT coalesce(same, false) "
            f"AND NOT (in_s AND NOT in_k AND ws > {last if last is not None else 0}) ORDER BY ws, machine_id LIMIT 10"
        ).fetchall():
            print("  ", row, file=sys.stderr)
        diff = con.execute(
            f"SELECT s.*, k.* FROM s JOIN k USING (machine_id, ws) WHERE NOT coalesce({same}, false) LIMIT 3"
        ).fetchall()
        for row in diff:
            print("   spindle|spark:", row, file=sys.stderr)
        return 1
    if matched == 0:
        print("compare: no rows matched (empty outputs?)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
