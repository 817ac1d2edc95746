"""Medians (and ranges) of latency per label, and paired per-round p99 ratios.
Usage: latsum.py TSV [a/b ...]"""
import collections, statistics as st, sys

rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
d = collections.defaultdict(dict)
for r, label, p50, p99, p999, mx, n in rows:
    d[label][r] = (float(p50), float(p99), float(p999))
for label, v in d.items():
    p50 = st.median(x[0] for x in v.values())
    p99 = [x[1] for x in v.values()]
    print(f"{label:15s} p50 {p50:.2f}  p99 {st.median(p99):.2f} ({min(p99):.2f}-{max(p99):.2f})  p99.9 {st.median(x[2] for x in v.values()):.2f}  n={len(v)}")
for pair in sys.argv[2:]:
    a, b = pair.split("/")
    q = [d[a][r][1] / d[b][r][1] for r in d[a] if r in d[b]]
    print(f"{pair}: p99 {st.median(q):.2f} ({min(q):.2f}-{max(q):.2f}) n={len(q)}")
