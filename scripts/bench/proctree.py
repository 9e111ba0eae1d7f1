"""Run a command and measure its whole process tree (scripts/bench/spark.sh).

  proctree.py OUT -- CMD [ARGS...]

Runs CMD, samples every 0.2 s the resident memory of CMD and all its descendants (the sum of
their VmRSS: Spark is a JVM with a Python child), and writes to OUT one line
`wall_s cpu_s peak_tree_rss_kb peak_single_rss_kb exit_code`. CPU is user+sys of CMD and every
descendant it waited for (wait4's rusage; spark-submit's JVM waits for its Python driver), so
nothing that ran is missed between samples. SIGINT and SIGTERM are passed on to CMD.
The exit code is CMD's.
"""

import os
import signal
import subprocess
import sys
import time


def tree_rss_kb(root: int) -> int:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
            with open(f"/proc/{d}/statm", encoding="ascii") as f:
                pages = int(f.read().split()[1])
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d))
        rss[int(d)] = pages * os.sysconf("SC_PAGE_SIZE") // 1024
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    out, cmd = sys.argv[1], sys.argv[3:]
    t0 = time.monotonic()
    child = subprocess.Popen(cmd)
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda sig, _f: child.send_signal(sig))
    peak = 0
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid == child.pid:
            break
        peak = max(peak, tree_rss_kb(child.pid))
        time.sleep(0.2)
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    single = usage.ru_maxrss
    with open(out, "w", encoding="ascii") as f:
        f.write(f"{wall:.2f} {cpu:.2f} {max(peak, single)} {single} {code}\n")
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
