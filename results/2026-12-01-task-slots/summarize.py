#!/usr/bin/env python3
"""Medians per configuration of a runs.tsv from measure.sh, and the ratios the report quotes."""
import collections
import statistics
import sys

rows = collections.defaultdict(lambda: ([], []))
with open(sys.argv[1]) as f:
    next(f)
    for line in f:
        _, config, wall, cpu = line.split()
        rows[config][0].append(float(wall))
        rows[config][1].append(float(cpu))
med = {c: (statistics.median(w), statistics.median(u)) for c, (w, u) in rows.items()}
print("config\trounds\twall_s\tcpu_s")
for c, (w, u) in med.items():
    print(f"{c}\t{len(rows[c][0])}\t{w:.3f}\t{u:.3f}")
t = med["timely"]
for c in ("before", "subtask", "slot", "before-ck", "subtask-ck", "slot-ck"):
    if c in med:
        print(f"{c} / timely throughput: wall {t[0] / med[c][0]:.2f}, cpu {t[1] / med[c][1]:.2f}")
for a, b in (("subtask", "before"), ("slot", "subtask"), ("subtask-ck", "before-ck"), ("slot-ck", "subtask-ck")):
    if a in med and b in med:
        print(f"{a} / {b} time: wall {med[a][0] / med[b][0]:.2f}, cpu {med[a][1] / med[b][1]:.2f}")
