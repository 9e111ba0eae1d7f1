"""A counting librdkafka consumer: the raw-consume ceiling next to kafka-consumer-perf-test.

  rdkafka_count.py BROKERS TOPIC COUNT GROUP

confluent-kafka (Python bindings over librdkafka, from PyPI) with a fresh consumer group from
the earliest offset, default settings otherwise; reads in batches (`consume(10000)`), touches
every message's value (its length) and counts until COUNT records have come. Prints
`rdkafka: records=N bytes=B seconds=S rate=R/s fetch_seconds=F fetch_rate=FR/s`: seconds from
subscribe to the last record (group join included, like perf-test's nMsg.sec), fetch_seconds
from the first record to the last. The Python loop costs per batch, not per record, but each
record still becomes a Python object: a native consumer would be somewhat faster.
"""

import sys
import time

from confluent_kafka import Consumer


def main() -> int:
    brokers, topic, count, group = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    c = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    t0 = time.monotonic()
    c.subscribe([topic])
    n = nbytes = 0
    first = None
    deadline = t0 + 300
    while n < count and time.monotonic() < deadline:
        msgs = c.consume(10000, 1.0)
        for m in msgs:
            if m.error() is None:
                if first is None:
                    first = time.monotonic()
                n += 1
                nbytes += len(m.value())
    t1 = time.monotonic()
    c.close()
    secs, fsecs = t1 - t0, t1 - (first or t0)
    print(
        f"rdkafka: records={n} bytes={nbytes} seconds={secs:.3f} rate={n / secs:.0f}/s "
        f"fetch_seconds={fsecs:.3f} fetch_rate={n / fsecs if fsecs > 0 else 0:.0f}/s",
        flush=True,
    )
    return 0 if n >= count else 1


if __name__ == "__main__":
    sys.exit(main())
