#!/usr/bin/env python3
"""latsum.py TSV: medians per label of latency-paced.tsv (latcpu rows), and after / before paired."""
import statistics as st
import sys

rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
labels = list(dict.fromkeys(r[1] for r in rows))
for lab in labels:
    r = [x for x in rows if x[1] == lab]
    med = lambda i: st.median(float(x[i]) for x in r)
    p99 = sorted(float(x[3]) for x in r)
    print(f"{lab:7} p50 {med(2):.2f} ms  p99 {med(3):.2f} ms (quartiles {p99[len(p99)//4]:.2f}-{p99[3*len(p99)//4]:.2f})"
          f"  p99.9 {med(4):.2f} ms  CPU {med(6):.2f} s  wall {med(7):.2f} s  {med(8)/1e6:.1f} M records/s  n={len(r)}")
a = {x[0]: x for x in rows if x[1] == "before"}
b = {x[0]: x for x in rows if x[1] == "after"}
for name, i in [("p50", 2), ("p99", 3), ("p99.9", 4), ("CPU", 6)]:
    print(f"after / before {name}: {st.median(float(b[k][i]) / float(a[k][i]) for k in a):.3f} (paired)")
