#!/usr/bin/env python3
"""Issue 7's traffic-job figures, interleaved, medians of REPEAT runs per configuration.

- throughput with aligned checkpoints every second against checkpoints off (target cost <= 2%);
- checkpoint duration p50 / p99 at a 1 s interval (from each run's report.json);
- recovery: a run with one injected failure; restored bytes / recovery time.

Run from the repository root after `cargo build --release -p weir-bench`:
    python3 results/2026-12-01-checkpoints/measure.py [RECORDS] [REPEAT]
Writes results.json and report.md beside this script.
"""
import json, os, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
WEIR = os.path.join("target", "release", "weir")
RECORDS = int(sys.argv[1]) if len(sys.argv) > 1 else 12_000_000
REPEAT = int(sys.argv[2]) if len(sys.argv) > 2 else 5
BASE = ["run", "traffic", "--generate", str(RECORDS), "-p", "2", "--partitions", "4"]
CONFIGS = {
    "off": [],
    "aligned-1s": ["--checkpoint-interval", "1s"],
    "aligned-1s-sync": ["--checkpoint-interval", "1s", "--snapshot", "sync"],
}

def run(extra, out):
    subprocess.run([WEIR, *BASE, "--output", out, *extra], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(out, "report.json")) as f:
        return json.load(f)

def main():
    runs = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(REPEAT):
            for name, extra in CONFIGS.items():
                r = run(extra, os.path.join(tmp, name))
                ck = r.get("checkpoints") or {}
                runs[name].append({
                    "throughput": r["throughput_records_per_s"],
                    "wall_ms": r["wall_ms"],
                    "completed": ck.get("numberOfCompletedCheckpoints"),
                    "duration_p50": (ck.get("end_to_end_duration_ms") or {}).get("p50"),
                    "duration_p99": (ck.get("end_to_end_duration_ms") or {}).get("p99"),
                    "sync_p99": (ck.get("sync_duration_ms") or {}).get("p99"),
                    "alignment_p99": (ck.get("alignment_duration_ms") or {}).get("p99"),
                    "bytes": (ck.get("checkpointed_bytes") or {}).get("max"),
                })
                print(name, rep + 1, round(r["throughput_records_per_s"] / 1e6, 3), "M/s", flush=True)
        recovery = []
        for seed in range(1, REPEAT + 1):
            r = run(["--checkpoint-interval", "1s", "--inject-failures", "1",
                     "--failure-seed", str(seed), "--restart-delay", "0"],
                    os.path.join(tmp, "recovery"))
            ck = r["checkpoints"]
            if ck.get("last_recovery_ms") and ck.get("last_restored_bytes"):
                recovery.append({
                    "restored_bytes": ck["last_restored_bytes"],
                    "recovery_ms": ck["last_recovery_ms"],
                    "gb_per_s": ck["last_restored_bytes"] / (ck["last_recovery_ms"] / 1e3) / 1e9,
                })
    med = lambda name, key: statistics.median(x[key] for x in runs[name] if x[key] is not None)
    off = med("off", "throughput")
    summary = {
        "records": RECORDS, "repeat": REPEAT, "when": time.strftime("%Y-%m-%d %H:%M"),
        "load_average": os.getloadavg(), "runs": runs, "recovery": recovery,
        "median_throughput": {n: med(n, "throughput") for n in CONFIGS},
        "ratio_aligned_over_off": med("aligned-1s", "throughput") / off,
        "ratio_sync_over_off": med("aligned-1s-sync", "throughput") / off,
    }
    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump(summary, f, indent=2)
    lines = [
        f"# Checkpoint cost on the traffic job ({RECORDS} generated records, p 2, 4 partitions)",
        "",
        f"Interleaved round robin, {REPEAT} runs per configuration, medians; load average at the end "
        f"{summary['load_average'][0]:.1f}. Produced by `measure.py` in this folder.",
        "",
        "| configuration | median throughput (M records/s) | ratio to off | checkpoints per run | duration p50 / p99 (ms, median over runs) | sync part p99 (ms) | alignment p99 (ms) | size (bytes) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in CONFIGS:
        t = med(name, "throughput")
        if name == "off":
            lines.append(f"| {name} | {t/1e6:.3f} | 1.000 | - | - | - | - | - |")
        else:
            lines.append(
                f"| {name} | {t/1e6:.3f} | {t/off:.3f} | {med(name, 'completed')} | "
                f"{med(name, 'duration_p50'):.1f} / {med(name, 'duration_p99'):.1f} | "
                f"{med(name, 'sync_p99'):.2f} | {med(name, 'alignment_p99'):.1f} | {med(name, 'bytes'):.0f} |")
    if recovery:
        g = statistics.median(x["gb_per_s"] for x in recovery)
        b = statistics.median(x["restored_bytes"] for x in recovery)
        ms = statistics.median(x["recovery_ms"] for x in recovery)
        lines += ["", f"Recovery after one injected failure ({len(recovery)} runs with a restore): "
                  f"median {b:.0f} bytes restored in {ms:.1f} ms = {g:.3f} GB/s (from the failure "
                  "to the restored attempt's start: tasks rebuilt and state read)."]
    with open(os.path.join(HERE, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))

if __name__ == "__main__":
    main()
