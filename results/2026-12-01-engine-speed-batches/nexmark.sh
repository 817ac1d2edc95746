#!/usr/bin/env bash
# Nexmark q0 q1 q2 q5 q7 q8 on weir, ROUNDS rounds round robin, 10 M events, -p 2 (default):
# each line the query's per-core rate, the ratio to Flink v1, the generator alone per core.
# Usage: nexmark.sh WEIR_BINARY ROUNDS > nexmark.tsv
set -euo pipefail
exe=$1 rounds=${2:-5}
out=$(mktemp -d)
echo -e "round\tquery\tper_core_keps\tweir_over_flink\tgenerator_per_core_keps\tshare_of_generator"
for round in $(seq "$rounds"); do
  for q in q0 q1 q2 q5 q7 q8; do
    rm -rf "$out/o"
    "$exe" run nexmark --query "$q" --events 10000000 --output "$out/o" > "$out/log" 2>&1
    per_core=$(sed -n 's/^per core: \([0-9.]*\) K.*weir \/ Flink = \([0-9.]*\)$/\1\t\2/p' "$out/log")
    gen=$(sed -n 's/^generator alone.*, \([0-9.]*\) K per core.* runs at \([0-9.]*\) of it$/\1\t\2/p' "$out/log")
    echo -e "$round\t$q\t$per_core\t$gen"
  done
done
rm -rf "$out"
