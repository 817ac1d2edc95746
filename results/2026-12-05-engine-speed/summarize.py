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


# 1. weir against the timely peer and the plain timely program (runs.tsv): their time over
#    weir's, wall and CPU, paired by round.
runs = collections.defaultdict(dict)
for r in rows("runs.tsv"):
    runs[r["round"]][r["config"]] = {"wall": float(r["wall_s"]), "cpu": float(r["cpu_s"])}
configs = ["before", "after", "after-subtask", "before-ck", "after-ck", "after-subtask-ck"]
for config in configs + ["timely", "plain"]:
    wall = [r[config]["wall"] for r in runs.values()]
    print(f"{config}: wall median {st.median(wall):.3f} s ({min(wall):.2f}-{max(wall):.2f})")
for peer in ["timely", "plain"]:
    for config in configs:
        show(f"{peer} / {config}, wall", paired(runs, peer, config, "wall"))
        show(f"{peer} / {config}, CPU", paired(runs, peer, config, "cpu"))
for a, b in [("before", "after"), ("before", "after-subtask"), ("before-ck", "after-ck"),
             ("before-ck", "after-subtask-ck"), ("after-subtask", "after"), ("after-ck", "after")]:
    show(f"{a} / {b}, wall", paired(runs, a, b, "wall"))
    show(f"{a} / {b}, CPU", paired(runs, a, b, "cpu"))

# 2. punctuated against periodic (punctuated-ab.tsv): throughput = periodic wall / punctuated wall.
pa = collections.defaultdict(dict)
for r in rows("punctuated-ab.tsv"):
    pa[r["round"]][r["label"]] = {"wall": float(r["wall_s"]), "cpu": float(r["cpu_s"])}
for binary in ["before", "after"]:
    show(f"{binary}: punctuated / periodic throughput", paired(pa, f"{binary}-periodic", f"{binary}-punctuated", "wall"))
    show(f"{binary}: punctuated / periodic, CPU", paired(pa, f"{binary}-periodic", f"{binary}-punctuated", "cpu"))
show("periodic before / after, wall", paired(pa, "before-periodic", "after-periodic", "wall"))
show("punctuated before / after, wall", paired(pa, "before-punctuated", "after-punctuated", "wall"))

# 3. latency (latency.tsv): p50 and p99 medians with their ranges; after / before paired.
groups = collections.defaultdict(list)
lat = collections.defaultdict(dict)
for r in rows("latency.tsv"):
    groups[(r["rate"], r["binary"], r["threads"])].append((float(r["p50_ms"]), float(r["p99_ms"])))
    lat[(r["round"], r["rate"], r["threads"])][r["binary"]] = {"p99": float(r["p99_ms"])}
for (rate, binary, threads), v in sorted(groups.items()):
    p99 = [x[1] for x in v]
    print(f"latency {int(rate) // 1_000_000} M/s {binary} {threads}: p50 {st.median(x[0] for x in v):.2f} ms, "
          f"p99 {st.median(p99):.2f} ({min(p99):.2f}-{max(p99):.2f})")
for rate in sorted({k[1] for k in lat}):
    for threads in ["per-subtask", "per-slot"]:
        sel = {k: v for k, v in lat.items() if k[1] == rate and k[2] == threads}
        show(f"latency {int(rate) // 1_000_000} M/s p99 after / before, {threads}", paired(sel, "after", "before", "p99"))

# 4. q7 parallel / window-all (q7-ab.tsv), each binary's default threads.
q7 = collections.defaultdict(dict)
busy = collections.defaultdict(list)
for r in rows("q7-ab.tsv"):
    q7[(r["round"], r["binary"])][r["aggregation"]] = {"eps": float(r["events_per_s"])}
    if r["aggregation"] == "window-all":
        busy[r["binary"]].append(float(r["window_all_busy_ms_per_s"]))
for binary in ["before", "after"]:
    sel = {k: v for k, v in q7.items() if k[1] == binary}
    show(f"q7 {binary}: parallel / window-all", paired(sel, "parallel", "window-all", "eps"))
    print(f"  window-all task busy {st.median(busy[binary]):.0f} ms/s")

# 5. punctuated against periodic with and without flush on idle (flush-on-idle-ab.tsv, AFTER
#    only, default threads, 7 rounds; labels per, pun, per-noidle, pun-noidle).
fi = collections.defaultdict(dict)
for r in rows("flush-on-idle-ab.tsv"):
    fi[r["round"]][r["label"]] = {"wall": float(r["wall_s"]), "cpu": float(r["cpu_s"])}
for suffix, what in [("", "flush on idle (default)"), ("-noidle", "--flush-on-idle off")]:
    show(f"punctuated / periodic throughput, {what}", paired(fi, f"per{suffix}", f"pun{suffix}", "wall"))
    show(f"punctuated / periodic CPU, {what}", paired(fi, f"per{suffix}", f"pun{suffix}", "cpu"))

# 6. the event-time suite (event-time/*/runs.json, `weir suite event-time --repeat 5`, each
#    binary's default threads, two runs each, interleaved): paired ratios from the raw runs.
for d in sorted((here / "event-time").iterdir()):
    r = json.loads((d / "runs.json").read_text())
    by = collections.defaultdict(dict)
    for run in r["runs"]:
        by[run["round"]][run["config"]] = {"thr": run["throughput_records_per_s"], "busy": run["window_busy_ms_per_s"]}
    show(f"suite {d.name}: punctuated / periodic", paired(by, "punctuated-5s", "periodic-5s", "thr"))
    show(f"suite {d.name}: parallel / window-all", paired(by, "parallel-large", "window-all-large", "thr"))
    busy = [v["window-all-large"]["busy"] for v in by.values() if "window-all-large" in v]
    print(f"  window-all task busy {st.median(busy):.0f} ms/s")

# 7. the last change, after the measurements above (hoist-ab.tsv: AFTER, the same with the
#    windows' extractors held per batch, the peer, and that with checkpoints; 9 rounds).
ho = collections.defaultdict(dict)
for r in rows("hoist-ab.tsv"):
    ho[r["round"]][r["label"]] = {"wall": float(r["wall_s"]), "cpu": float(r["cpu_s"])}
show("after / after + extractors per batch, wall", paired(ho, "after", "hoist", "wall"))
show("timely / after + extractors per batch, wall", paired(ho, "timely", "hoist", "wall"))
show("timely / after + extractors per batch, checkpoints, wall", paired(ho, "timely", "hoistck", "wall"))
