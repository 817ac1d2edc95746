"""Per label: marker p99 median (range), p50, p99 paired per round against BASE, result
latency p99. Usage: latsum.py TSV BASE"""
import statistics as st, sys

rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
base = sys.argv[2]
by, rounds = {}, {}
for r in rows:
    by.setdefault(r[1], []).append(r)
    rounds.setdefault(r[0], {})[r[1]] = float(r[3])
for label, rs in by.items():
    p99 = [float(x[3]) for x in rs]
    pair = [v[label] / v[base] for v in rounds.values() if label in v and base in v]
    print(f"{label:10s} p99 {st.median(p99):.2f} ({min(p99):.2f}-{max(p99):.2f}) "
          f"p50 {st.median(float(x[2]) for x in rs):.2f} paired/{base} {st.median(pair):.2f} "
          f"({min(pair):.2f}-{max(pair):.2f}) result p99 {st.median(float(x[8]) for x in rs):.0f} ms n={len(rs)}")
