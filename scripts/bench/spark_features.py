"""jobs/factory_features.sql as a Spark Structured Streaming query (scripts/bench/spark.sh).

The same job as the reference SQL job: JSON readings from a Kafka topic, per machine and
10-second tumbling window on event time (watermark: 5 s behind the largest event time seen),
the reading count and each sensor's avg, min, max and sample standard deviation, appended to
Parquet. Run with spark-submit (local[*], the spark-sql-kafka-0-10 jars on --jars):

  replay: read the whole topic from the earliest offset with Trigger.AvailableNow and stop
  live:   read as readings arrive (default trigger: the next micro-batch starts as soon as the
          previous one ends) for --seconds, then stop the query

Timestamps are written as Parquet TIMESTAMP(MICROS), not Spark's default INT96. Prints one
summary line on stdout: `spark: records_in=N batches=B query_seconds=S rate=R/s`.
"""

import argparse
import sys
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

SENSORS = ["temperature", "vibration", "power", "load", "humidity", "noise_level", "rpm"]

# The sensors table of jobs/factory_features.sql.
SCHEMA = StructType(
    [
        StructField("machine_id", StringType()),
        StructField("seq", LongType()),
        StructField("line", StringType()),
        StructField("provider", StringType()),
        StructField("ts", TimestampType()),
    ]
    + [StructField(s, DoubleType()) for s in SENSORS]
)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--brokers", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--output", required=True, help="Parquet output folder")
    p.add_argument("--checkpoint", required=True, help="the query's checkpoint folder")
    p.add_argument("--mode", choices=["replay", "live"], default="replay")
    p.add_argument("--seconds", type=float, default=90, help="live: run this long")
    p.add_argument("--trigger", default="", help="live: processing-time trigger, e.g. '1 second' (default: none)")
    a = p.parse_args()

    spark = SparkSession.builder.appName("spindle-bench-features").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")

    readings = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", a.brokers)
        .option("subscribe", a.topic)
        .option("startingOffsets", "earliest")
        .option("failOnDataLoss", "false")
        .load()
        .select(F.from_json(F.col("value").cast("string"), SCHEMA).alias("r"))
        .select("r.*")
        .where(F.col("machine_id").isNotNull() & F.col("ts").isNotNull())
    )
    aggs = [F.count(F.lit(1)).alias("readings")]
    for s in SENSORS:
        aggs += [
            F.avg(s).alias(f"{s}_avg"),
            F.min(s).alias(f"{s}_min"),
            F.max(s).alias(f"{s}_max"),
            F.stddev_samp(s).alias(f"{s}_stddev"),
        ]
    features = (
        readings.withWatermark("ts", "5 seconds")
        .groupBy(F.window("ts", "10 seconds"), F.col("machine_id"))
        .agg(*aggs)
        .select(
            "machine_id",
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            *[c for c in ["readings"] + [f"{s}_{k}" for s in SENSORS for k in ("avg", "min", "max", "stddev")]],
        )
    )
    writer = (
        features.writeStream.format("parquet")
        .outputMode("append")
        .option("path", a.output)
        .option("checkpointLocation", a.checkpoint)
    )
    if a.mode == "replay":
        writer = writer.trigger(availableNow=True)
    elif a.trigger:
        writer = writer.trigger(processingTime=a.trigger)

    t0 = time.monotonic()
    query = writer.start()
    if a.mode == "replay":
        query.awaitTermination()
    else:
        query.awaitTermination(a.seconds)
        query.stop()
    secs = time.monotonic() - t0
    if query.exception() is not None:
        print(f"spark: query failed: {query.exception()}", file=sys.stderr)
        return 1
    progress = query.recentProgress
    n = sum(int(pr["numInputRows"]) for pr in progress)
    print(f"spark: records_in={n} batches={len(progress)} query_seconds={secs:.3f} rate={n / secs:.0f}/s", flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
