#!/usr/bin/env bash
# ab.sh ROUNDS label1 "cmd1" label2 "cmd2" ... -> TSV round label wall cpu (interleaved)
set -u
rounds=$1; shift
for r in $(seq "$rounds"); do
  args=("$@")
  for ((i=0;i<${#args[@]};i+=2)); do
    label=${args[i]} cmd=${args[i+1]}
    rm -rf /tmp/lead/o
    /usr/bin/time -f "%e %U %S" -o /tmp/lead/time bash -c "$cmd --output /tmp/lead/o" > /dev/null 2>&1
    read -r wall user sys < /tmp/lead/time
    echo -e "$r\t$label\t$wall\t$(echo "$user + $sys" | bc)"
  done
done
