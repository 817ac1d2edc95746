#!/usr/bin/env bash
# ab.sh ROUNDS LABEL "CMD" [LABEL "CMD" ...]: runs each CMD (with --output appended) once per
# round, in order, ROUNDS rounds; prints TSV rows: round, label, wall s, CPU s (user + sys).
set -u
rounds=$1; shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq "$rounds"); do
  args=("$@")
  for ((i=0;i<${#args[@]};i+=2)); do
    label=${args[i]} cmd=${args[i+1]}
    rm -rf $tmp/o
    /usr/bin/time -f "%e %U %S" -o $tmp/time bash -c "$cmd --output $tmp/o" > /dev/null 2>&1
    read -r wall user sys < $tmp/time
    echo -e "$r\t$label\t$wall\t$(echo "$user + $sys" | bc)"
  done
done
