#!/usr/bin/env bash
# Every interleaved comparison of this report, BEFORE against AFTER, into DIR.
# Usage: measure.sh BEFORE AFTER CSV_DIR DIR
# (CSV_DIR from ../2026-12-01-input-speed/gen_csv.py: 4 M records, 4 files.)
# Each binary runs with its own default threads (BEFORE: per subtask; AFTER: auto, which is
# per slot at -p 2 on 2 cores) unless a configuration names them.
set -euo pipefail
before=$1 after=$2 input=$3 dir=$4
mkdir -p "$dir"
tmp=$(mktemp -d)
job=(run traffic --input "$input" -p 2 --max-future-skew off --max-past-skew off)

# One run: CONFIG EXE ARGS... -> "wall cpu" of the whole process.
timed() {
  local exe=$1; shift
  rm -rf "$tmp/o"
  /usr/bin/time -f "%e %U %S" -o "$tmp/time" "$exe" "$@" --output "$tmp/o" > /dev/null 2>&1
  read -r wall user sys < "$tmp/time"
  echo -e "$wall\t$(echo "$user + $sys" | bc)"
}

# 1. weir against the timely peer and the plain timely program, with and without aligned
#    checkpoints every second, 15 rounds.
echo -e "round\tconfig\twall_s\tcpu_s" > "$dir/runs.tsv"
for round in $(seq 15); do
  for config in before after after-subtask timely plain before-ck after-ck after-subtask-ck; do
    exe=$after extra=()
    case $config in
      before*) exe=$before ;;
      timely) extra=(--engine timely) ;;
      plain) extra=(--engine timely-plain) ;;
    esac
    case $config in *subtask*) extra+=(--threads per-subtask) ;; esac
    case $config in *-ck) extra+=(--checkpoint-interval 1s) ;; esac
    echo -e "$round\t$config\t$(timed "$exe" "${job[@]}" "${extra[@]}")" >> "$dir/runs.tsv"
  done
done

# 2. periodic (200 ms) against punctuated watermarks, both binaries, 11 rounds.
echo -e "round\tlabel\twall_s\tcpu_s" > "$dir/punctuated-ab.tsv"
for round in $(seq 11); do
  for label in before-periodic before-punctuated after-periodic after-punctuated; do
    exe=$before; [[ $label == after-* ]] && exe=$after
    echo -e "$round\t$label\t$(timed "$exe" "${job[@]}" --watermark "${label#*-}")" >> "$dir/punctuated-ab.tsv"
  done
done

# 3. end-to-end latency, 1 ms buffer timeout, markers every 5 ms, at 3 M records/s (the
#    earlier reports' rate) and 4 M records/s (half of AFTER's maximum), 7 rounds.
echo -e "round\trate\tbinary\tthreads\tp50_ms\tp99_ms\tmax_ms\tsamples" > "$dir/latency.tsv"
for round in $(seq 7); do
  for rate in 3000000 4000000; do
    for spec in before:per-subtask before:per-slot after:per-subtask after:per-slot; do
      label=${spec%%:*} threads=${spec#*:} exe=$before
      [[ $label == after ]] && exe=$after
      rm -rf "$tmp/o"
      "$exe" "${job[@]}" --rate "$rate" --buffer-timeout 1ms --latency-interval 5ms \
        --threads "$threads" --output "$tmp/o" > /dev/null 2>&1
      python3 - "$tmp/o/report.json" "$round" "$rate" "$label" "$threads" >> "$dir/latency.tsv" <<'P'
import json, sys
l = json.load(open(sys.argv[1]))["latency"]
print("\t".join(sys.argv[2:] + [str(l[k]) for k in ("p50_ms", "p99_ms", "max_ms", "samples")]))
P
    done
  done
done

# 4. Nexmark q7, parallel (local-global) against window-all, each binary's default threads.
echo -e "round\tbinary\taggregation\tevents_per_s\twindow_all_busy_ms_per_s" > "$dir/q7-ab.tsv"
for round in $(seq 5); do
  for label in before after; do
    exe=$before; [[ $label == after ]] && exe=$after
    for aggregation in parallel window-all; do
      rm -rf "$tmp/q"
      "$exe" run nexmark --query q7 --events 20000000 --aggregation "$aggregation" \
        --source-rate off --output "$tmp/q" > /dev/null 2>&1
      python3 - "$tmp/q/report.json" "$round" "$label" "$aggregation" >> "$dir/q7-ab.tsv" <<'P'
import json, sys
r = json.load(open(sys.argv[1]))
busy = [t["busyTimeMsPerSecond"] for t in r["tasks"] if t["task"].startswith("q7: highest bid ->")]
print("\t".join(sys.argv[2:] + [str(round(r["throughput_events_per_s"])), str(busy[0] if busy else "")]))
P
    done
  done
done
rm -rf "$tmp"
# (flush-on-idle-ab.tsv was run separately, after this script: AFTER with its default threads,
# --watermark periodic|punctuated, each with and without --flush-on-idle off, 7 rounds.)
# (event-time/ was run separately too: `weir suite event-time --repeat 5 --output DIR` with
# BEFORE, then AFTER, twice, each binary's default threads; runs.json is report.json's runs
# without their per-task lists.)
