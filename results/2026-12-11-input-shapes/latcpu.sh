#!/usr/bin/env bash
# latcpu.sh ROUNDS OUT LABEL EXE "ARGS" ...: traffic job latency + CPU per run, interleaved.
set -u
rounds=$1 out=$2; shift 2
echo -e "round\tlabel\tp50\tp99\tp999\tsamples\tcpu_s\twall_s\trecords_per_s" > $out
for r in $(seq $rounds); do
  args=("$@")
  for ((i=0;i<${#args[@]};i+=3)); do
    label=${args[i]} exe=${args[i+1]} extra=${args[i+2]}
    rm -rf /tmp/lc
    /usr/bin/time -f "%e %U %S" -o /tmp/lc.time $exe run traffic --input /tmp/csv4m -p 2 --max-future-skew off --max-past-skew off --buffer-timeout 1ms --latency-interval 5ms $extra --output /tmp/lc >/dev/null 2>&1
    python3 - "$r" "$label" >> $out <<'P'
import json,sys
r=json.load(open('/tmp/lc/report.json')); l=r['latency']; w,u,s=open('/tmp/lc.time').read().split()
print('\t'.join(map(str,[sys.argv[1],sys.argv[2],l['p50_ms'],l['p99_ms'],l['p999_ms'],l['samples'],round(float(u)+float(s),2),w,round(r['throughput_records_per_s'])])))
P
  done
done
