#!/usr/bin/env python3
"""Writes the traffic job's CSV input for the speed runs: RECORDS lines over PARTS files.

Mirrors benches/src/traffic/generator.rs in shape, not bit for bit: a header, a fleet of
plates per partition (60% 浙A, 25% other 浙 cities, 15% other provinces, popularity u^3),
250 000 records a day spread evenly, 10% up to 8 s out of order, 0.5% 1-3 h late, 0.01%
malformed lines. Usage: gen_csv.py DIR [RECORDS] [PARTS]
"""
import os
import random
import sys

out = sys.argv[1]
records = int(sys.argv[2]) if len(sys.argv) > 2 else 4_000_000
parts = int(sys.argv[3]) if len(sys.argv) > 3 else 4
start_ms = 1_772_409_600_000
per_day = 250_000
alphabet = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
others = "京沪苏粤皖闽赣鲁豫湘"
os.makedirs(out, exist_ok=True)
rng = random.Random(42)


def plate():
    r = rng.random()
    head = "浙A" if r < 0.6 else "浙" + rng.choice("BCDEFGHJKL") if r < 0.85 else rng.choice(others) + "A"
    return head + "".join(rng.choice(alphabet) for _ in range(5))


for p in range(parts):
    n = records // parts + (1 if p < records % parts else 0)
    fleet = [plate() for _ in range(100_000 // parts)]
    step = 86_400_000 * parts / per_day
    lines = ["ts_ms,plate,checkpoint_id"]
    for i in range(n):
        ts = start_ms + int((i + rng.random()) * step)
        roll = rng.random()
        if roll < 0.005:
            ts -= rng.randint(3_600_000, 10_800_000)
        elif roll < 0.105:
            ts -= rng.randint(0, 8_000)
        pl = fleet[min(int(len(fleet) * rng.random() ** 3), len(fleet) - 1)]
        cp = rng.randint(1, 400)
        if rng.random() < 0.0001:
            lines.append(f"{ts},{pl}")
        else:
            lines.append(f"{ts},{pl},{cp}")
    with open(os.path.join(out, f"part-{p}.csv"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
