#!/usr/bin/env python3
"""Medians of nexmark.tsv per query and binary, and the median of the paired after/before ratios."""
import csv, statistics as st, sys
rows = list(csv.DictReader(open(sys.argv[1] if len(sys.argv) > 1 else "nexmark.tsv"), delimiter="\t"))
cols = ["per_core_keps", "weir_over_flink", "generator_per_core_keps", "share_of_generator", "cpu_s"]
print("query\t" + "\t".join(f"{c}_before\t{c}_after\t{c}_ratio" for c in cols))
for q in ["q0", "q1", "q2", "q5", "q7", "q8"]:
    by = {(r["round"], r["binary"]): r for r in rows if r["query"] == q}
    rounds = sorted({k[0] for k in by})
    out = [q]
    for c in cols:
        b = [float(by[(n, "before")][c]) for n in rounds]
        a = [float(by[(n, "after")][c]) for n in rounds]
        out += [f"{st.median(b):.2f}", f"{st.median(a):.2f}", f"{st.median(x / y for x, y in zip(a, b)):.3f}"]
    print("\t".join(out))
