#!/usr/bin/env bash
# Every interleaved comparison of this report, BEFORE against AFTER, into DIR.
# Usage: measure-all.sh BEFORE AFTER CSV_DIR DIR
# (CSV_DIR from ../2026-12-01-input-speed/gen_csv.py: 4 M records, 4 files.)
set -euo pipefail
before=$1 after=$2 input=$3 dir=$4
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir/event-time"
tmp=$(mktemp -d)
job=(run traffic --input "$input" -p 2 --max-future-skew off --max-past-skew off)

# 1. weir against the timely peer, with and without aligned checkpoints every second.
bash "$here/../2026-12-01-task-slots/measure.sh" "$before" "$after" "$input" 15 > "$dir/runs.tsv"

# 2. periodic (200 ms) against punctuated watermarks, both binaries, 15 rounds.
echo -e "round\tlabel\twall_s\tcpu_s" > "$dir/punctuated-ab.tsv"
for round in $(seq 15); do
  for label in before-periodic before-punctuated after-periodic after-punctuated; do
    exe=$before; [[ $label == after-* ]] && exe=$after
    rm -rf "$tmp/o"
    /usr/bin/time -f "%e %U %S" -o "$tmp/time" "$exe" "${job[@]}" --watermark "${label#*-}" \
      --output "$tmp/o" > /dev/null 2>&1
    read -r wall user sys < "$tmp/time"
    echo -e "$round\t$label\t$wall\t$(echo "$user + $sys" | bc)" >> "$dir/punctuated-ab.tsv"
  done
done

# 3. end-to-end latency at 3 M records/s (about half the maximum), 1 ms buffer timeout.
bash "$here/../2026-12-02-engine-speed/latency-ab.sh" 9 3000000 "$input" \
  before="$before" after="$after" > "$dir/latency-ab.tsv"

# 4. Nexmark q7, parallel (local-global) against window-all, both thread modes.
echo -e "round\tbinary\tthreads\taggregation\tevents_per_s\twindow_all_busy_ms_per_s" > "$dir/q7-ab.tsv"
for round in $(seq 5); do
  for label in before after; do
    exe=$before; [[ $label == after ]] && exe=$after
    for threads in per-subtask per-slot; do
      for aggregation in parallel window-all; do
        rm -rf "$tmp/q"
        "$exe" run nexmark --query q7 --events 20000000 --aggregation "$aggregation" \
          --threads "$threads" --source-rate off --output "$tmp/q" > /dev/null 2>&1
        python3 - "$tmp/q/report.json" "$round" "$label" "$threads" "$aggregation" >> "$dir/q7-ab.tsv" <<'P'
import json, sys
r = json.load(open(sys.argv[1]))
busy = [t["busyTimeMsPerSecond"] for t in r["tasks"] if t["task"].startswith("q7: highest bid ->")]
print("\t".join(sys.argv[2:] + [str(round(r["throughput_events_per_s"])), str(busy[0] if busy else "")]))
P
      done
    done
  done
done

# 5. the event-time suite, both binaries, each thread mode.
for threads in per-subtask per-slot; do
  for label in before after; do
    exe=$before; [[ $label == after ]] && exe=$after
    "$exe" suite event-time --repeat 5 --threads "$threads" \
      --output "$dir/event-time/$label-$threads" > /dev/null 2>&1
  done
done
rm -rf "$tmp"
