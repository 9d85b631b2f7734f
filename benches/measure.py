#!/usr/bin/env python3
"""Time several commands N times each, taking turns (one run of every case per round), and
print one JSON object: for each case, median wall seconds, median CPU seconds (user + sys of
the command and the children it waited for) and the peak RSS in MB.

    python3 benches/measure.py --runs 5 CASES.json

CASES.json is a list of {"name", "command": [...], "before": "shell", "after": "shell"}
("before" and "after" optional, run untimed around every run, e.g. to delete a cache).
Taking turns spreads whatever else the machine does over all the cases alike, so their
ratios hold even when the absolute times drift. Output of a command is discarded; a run that
dies from a signal or exits above 1 is an error (1 = changes pending).
"""

import argparse
import json
import os
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
    parser.add_argument("cases")
    args = parser.parse_args()
    cases = json.load(open(args.cases))
    samples = {case["name"]: ([], [], []) for case in cases}
    for _ in range(args.runs):
        for case in cases:
            if case.get("before"):
                subprocess.run(case["before"], shell=True, check=True)
            measured = run_once(case["command"])
            if case.get("after"):
                subprocess.run(case["after"], shell=True, check=True)
            for values, value in zip(samples[case["name"]], measured):
                values.append(value)
    print(json.dumps({
        name: {
            "wall": round(statistics.median(walls), 4),
            "cpu": round(statistics.median(cpus), 4),
            "rss_mb": round(max(rss), 1),
            "runs": args.runs,
        }
        for name, (walls, cpus, rss) in samples.items()
    }))


if __name__ == "__main__":
    main()
