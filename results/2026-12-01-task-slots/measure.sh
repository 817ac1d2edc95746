#!/usr/bin/env bash
# The traffic job on weir at the start of this session (BEFORE), weir now with a thread per
# subtask and with a thread per task slot (AFTER, --threads per-subtask | per-slot), and the
# project's timely peer (AFTER's tree): whole process (wall and CPU), with and without aligned
# checkpoints every second, configurations interleaved round robin.
# Usage: measure.sh BEFORE AFTER CSV_DIR ROUNDS > runs.tsv
# (CSV_DIR from ../2026-12-01-input-speed/gen_csv.py: 4 M records, 4 files.)
set -euo pipefail
before=$1 after=$2 input=$3 rounds=${4:-5}
out=$(mktemp -d)
echo -e "round\tconfig\twall_s\tcpu_s"
for round in $(seq "$rounds"); do
  for config in before subtask slot timely before-ck subtask-ck slot-ck; do
    exe=$after engine=weir extra=()
    case $config in
      before*) exe=$before ;;
      subtask*) extra=(--threads per-subtask) ;;
      slot*) extra=(--threads per-slot) ;;
      timely) engine=timely ;;
    esac
    case $config in *-ck) extra+=(--checkpoint-interval 1s) ;; esac
    rm -rf "$out/o"
    /usr/bin/time -f "%e %U %S" -o "$out/time" "$exe" run traffic --input "$input" -p 2 \
      --max-future-skew off --max-past-skew off --engine "$engine" --output "$out/o" \
      "${extra[@]}" > "$out/log" 2>&1
    read -r wall user sys < "$out/time"
    echo -e "$round\t$config\t$wall\t$(echo "$user + $sys" | bc)"
  done
done
rm -rf "$out"
