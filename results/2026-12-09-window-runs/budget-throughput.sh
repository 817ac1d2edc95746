#!/usr/bin/env bash
# wall and CPU per firing budget, interleaved. Usage: tput.sh EXE CSV ROUNDS OUT BUDGETS...
set -euo pipefail
exe=$1 input=$2 rounds=$3 out=$4; shift 4
tmp=$(mktemp -d)
echo -e "round\tlabel\twall_s\tcpu_s" > "$out"
for round in $(seq "$rounds"); do
  for b in "$@"; do
    rm -rf "$tmp/o"
    /usr/bin/time -f "%e %U %S" -o "$tmp/t" "$exe" run traffic --input "$input" -p 2 --max-future-skew off --max-past-skew off --firing-budget "$b" --output "$tmp/o" > /dev/null 2>&1
    read -r e u s < "$tmp/t"
    echo -e "$round\tb$b\t$e\t$(echo "$u + $s" | bc)" >> "$out"
  done
done
rm -rf "$tmp"
