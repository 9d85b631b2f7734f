#!/usr/bin/env python3
"""Run a command N times and print one JSON line: median wall seconds, median CPU seconds
(user + sys of the command and the children it waited for) and the peak RSS in MB.

    python3 benches/measure.py --runs 5 [--before 'shell command'] -- COMMAND...

--before runs (untimed) before every run, e.g. to delete a cache. Output of COMMAND is
discarded; a run that dies from a signal or exits above 1 is an error (1 = changes pending).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def run_once(command):
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(command, stdout=null, stderr=null)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code < 0 or code > 1:
        sys.exit(f"{command}: exit status {code}")
    # ru_maxrss is in KiB on Linux.
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    walls, cpus, rss = [], [], []
    for _ in range(args.runs):
        if args.before:
            subprocess.run(args.before, shell=True, check=True)
        wall, cpu, peak = run_once(command)
        walls.append(wall)
        cpus.append(cpu)
        rss.append(peak)
    print(json.dumps({
        "wall": round(statistics.median(walls), 4),
        "cpu": round(statistics.median(cpus), 4),
        "rss_mb": round(max(rss), 1),
        "runs": args.runs,
    }))


if __name__ == "__main__":
    main()
