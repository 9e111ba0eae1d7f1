"""Window-close-to-output latency of a live run, measured from outside (scripts/bench/spark.sh).

  file_latency.py watch DIR EVENTS.tsv --seconds S      poll DIR every 50 ms for S seconds;
                                                        write "first_seen_epoch_s<TAB>path"
  file_latency.py analyze KIND DIR EVENTS.tsv --from T0 --until T1 [--delay 5]

The same method for both contenders: a row (one machine's 10-second window) becomes visible
when the file holding it is visible to a reader of the output folder —
  spindle: the Parquet file appears (the sink completes its upload, then the file has its
           final name; files appear whole),
  spark:   the micro-batch's entry in `_spark_metadata/` appears (Spark's file sink writes the
           part files first and commits them by writing that log entry; readers that use the
           log — Spark itself — see the rows only then).
Event time is the wall clock in a `spindle simulate --realtime` stream, so a window
[start, end) can be closed at the earliest at end + the watermark delay (5 s); the latency of a
row is `visible − (window_end + delay)`. Rows of windows ending before --from (start-up: JVM
start, consumer group join) or made visible after --until (the shutdown) are left out. Prints
`latency: rows=N files=F p50=…ms p90=…ms p99=…ms max=…ms` (quantiles over rows).
"""

import argparse
import json
import os
import sys
import time
import urllib.parse

import duckdb


def watch(a: argparse.Namespace) -> int:
    seen: dict[str, float] = {}
    end = time.time() + a.seconds
    with open(a.events, "w", encoding="utf-8") as out:
        while time.time() < end:
            now = time.time()
            for root, _dirs, files in os.walk(a.dir):
                for f in files:
                    p = os.path.join(root, f)
                    if p not in seen:
                        seen[p] = now
                        out.write(f"{now:.3f}\t{p}\n")
            out.flush()
            time.sleep(0.05)
    return 0


def quantile(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[i]


def analyze(a: argparse.Namespace) -> int:
    seen: dict[str, float] = {}
    with open(a.events, encoding="utf-8") as f:
        for line in f:
            t, p = line.rstrip("\n").split("\t", 1)
            seen[os.path.realpath(p)] = float(t)
    visible: dict[str, float] = {}
    if a.kind == "spindle":
        for p, t in seen.items():
            if p.endswith(".parquet") and os.path.exists(p):
                visible[p] = t
    else:
        meta = os.path.join(os.path.realpath(a.dir), "_spark_metadata")
        for p, t in seen.items():
            if os.path.dirname(p) != meta or not os.path.basename(p).isdigit():
                continue
            with open(p, encoding="utf-8") as f:
                for line in f:
                    line = line.strip()
                    if not line.startswith("{"):
                        continue
                    path = urllib.parse.urlparse(json.loads(line)["path"]).path
                    visible[os.path.realpath(urllib.parse.unquote(path))] = t
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    lat: list[float] = []
    files = 0
    for p, t in visible.items():
        if t > a.until:
            continue
        ends = con.execute(f"SELECT epoch_ms(window_end) FROM read_parquet('{p}')").fetchall()
        used = [t * 1000 - (e + a.delay * 1000) for (e,) in ends if e / 1000 >= a.since]
        if used:
            files += 1
            lat.extend(used)
    lat.sort()
    if not lat:
        print("latency: no rows in the measured span", file=sys.stderr)
        return 1
    print(
        f"latency: rows={len(lat)} files={files} p50={quantile(lat, 0.5):.0f}ms p90={quantile(lat, 0.9):.0f}ms "
        f"p99={quantile(lat, 0.99):.0f}ms max={lat[-1]:.0f}ms min={lat[0]:.0f}ms"
    )
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("watch")
    w.add_argument("dir")
    w.add_argument("events")
    w.add_argument("--seconds", type=float, required=True)
    z = sub.add_parser("analyze")
    z.add_argument("kind", choices=["spindle", "spark"])
    z.add_argument("dir")
    z.add_argument("events")
    z.add_argument("--from", dest="since", type=float, required=True, help="epoch s: windows ending earlier are left out")
    z.add_argument("--until", type=float, required=True, help="epoch s: files visible later are left out")
    z.add_argument("--delay", type=float, default=5.0, help="the watermark delay, seconds")
    a = p.parse_args()
    return watch(a) if a.cmd == "watch" else analyze(a)


if __name__ == "__main__":
    sys.exit(main())
