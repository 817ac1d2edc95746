#!/usr/bin/env python3
"""Prints every figure of report.md from the files beside it: medians of per-round (paired)
ratios, with their range over the rounds."""
import collections
import json
import pathlib
import statistics as st

here = pathlib.Path(__file__).parent


def rows(name):
    lines = (here / name).read_text().splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"))) for line in lines[1:] if line]


def paired(by_round, num, den, key):
    ratios = [r[num][key] / r[den][key] for r in by_round.values() if num in r and den in r]
    return st.median(ratios), min(ratios), max(ratios)


def show(what, m):
    print(f"{what}: {m[0]:.3f} ({m[1]:.2f}-{m[2]:.2f})")


# 1. weir against the timely peer (runs.tsv): peer time / weir time, wall and CPU.
runs = collections.defaultdict(dict)
for r in rows("runs.tsv"):
    runs[r["round"]][r["config"]] = {"wall": float(r["wall_s"]), "cpu": float(r["cpu_s"])}
for config in ["before", "subtask", "slot", "before-ck", "subtask-ck", "slot-ck"]:
    show(f"peer / {config}, wall", paired(runs, "timely", config, "wall"))
    show(f"peer / {config}, CPU", paired(runs, "timely", config, "cpu"))
for a, b in [("subtask", "before"), ("slot", "before"), ("subtask-ck", "before-ck"), ("slot-ck", "before-ck")]:
    show(f"{a} / {b}, wall", paired(runs, a, b, "wall"))

# 2. punctuated against periodic (punctuated-ab.tsv): throughput = periodic wall / punctuated wall.
pa = collections.defaultdict(dict)
for r in rows("punctuated-ab.tsv"):
    pa[r["round"]][r["label"]] = {"wall": float(r["wall_s"]), "cpu": float(r["cpu_s"])}
for binary in ["before", "after"]:
    show(f"{binary}: punctuated / periodic throughput", paired(pa, f"{binary}-periodic", f"{binary}-punctuated", "wall"))
    show(f"{binary}: punctuated / periodic, CPU per record", paired(pa, f"{binary}-periodic", f"{binary}-punctuated", "cpu"))
show("punctuated after / before, wall", paired(pa, "after-punctuated", "before-punctuated", "wall"))
show("periodic after / before, wall", paired(pa, "after-periodic", "before-periodic", "wall"))

# 3. latency (latency-ab.tsv, latency-watermarks.tsv): medians of p99 and their ranges.
for name, label in [("latency-ab.tsv", "binary"), ("latency-watermarks.tsv", "watermarks")]:
    groups = collections.defaultdict(list)
    for r in rows(name):
        groups[(r[label], r["threads"])].append((float(r["p50_ms"]), float(r["p99_ms"])))
    for (what, threads), v in sorted(groups.items()):
        p99 = [x[1] for x in v]
        print(f"{name} {what} {threads}: p50 {st.median(x[0] for x in v):.2f} ms, p99 {st.median(p99):.2f} ({min(p99):.2f}-{max(p99):.2f})")
lat = collections.defaultdict(dict)
for r in rows("latency-ab.tsv"):
    lat[(r["round"], r["threads"])][r["binary"]] = {"p99": float(r["p99_ms"])}
for threads in ["per-subtask", "per-slot"]:
    show(f"latency p99 after / before, {threads}", paired({k: v for k, v in lat.items() if k[1] == threads}, "after", "before", "p99"))

# 4. q7 parallel / window-all (q7-ab.tsv).
q7 = collections.defaultdict(dict)
busy = collections.defaultdict(list)
for r in rows("q7-ab.tsv"):
    q7[(r["round"], r["binary"], r["threads"])][r["aggregation"]] = {"eps": float(r["events_per_s"])}
    if r["aggregation"] == "window-all":
        busy[(r["binary"], r["threads"])].append(float(r["window_all_busy_ms_per_s"]))
for binary in ["before", "after"]:
    for threads in ["per-subtask", "per-slot"]:
        sel = {k: v for k, v in q7.items() if k[1] == binary and k[2] == threads}
        show(f"q7 {binary} {threads}: parallel / window-all", paired(sel, "parallel", "window-all", "eps"))
        print(f"  window-all task busy {st.median(busy[(binary, threads)]):.0f} ms/s")

# 5. the event-time suite (event-time/*/runs.json): paired ratios from the raw runs.
for d in sorted((here / "event-time").iterdir()):
    r = json.loads((d / "runs.json").read_text())
    by = collections.defaultdict(dict)
    for run in r["runs"]:
        by[run["round"]][run["config"]] = {"thr": run["throughput_records_per_s"], "busy": run["window_busy_ms_per_s"]}
    show(f"suite {d.name}: punctuated / periodic", paired(by, "punctuated-5s", "periodic-5s", "thr"))
    show(f"suite {d.name}: parallel / window-all", paired(by, "parallel-large", "window-all-large", "thr"))
    print(f"  window-all task busy {st.median(v['window-all-large']['busy'] for v in by.values()):.0f} ms/s")
