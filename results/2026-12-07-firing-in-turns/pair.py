import sys, statistics as st, collections
rows=[l.split('\t') for l in open(sys.argv[1]).read().split('\n') if l.strip()]
d=collections.defaultdict(dict)
for r,l,w,c in rows: d[l][r]=(float(w),float(c))
labels=list(dict.fromkeys(l for _,l,_,_ in rows))
for l in labels:
    ws=[v[0] for v in d[l].values()]; cs=[v[1] for v in d[l].values()]
    print(f"{l:14s} wall med {st.median(ws):.3f} ({min(ws):.2f}-{max(ws):.2f}) cpu med {st.median(cs):.3f}")
for pr in sys.argv[2:]:
    a,b=pr.split('/')
    rs=[r for r in d[a] if r in d[b]]
    wr=[d[a][r][0]/d[b][r][0] for r in rs]; cr=[d[a][r][1]/d[b][r][1] for r in rs]
    print(f"{a}/{b}: wall {st.median(wr):.3f} ({min(wr):.2f}-{max(wr):.2f})  cpu {st.median(cr):.3f} ({min(cr):.2f}-{max(cr):.2f})  n={len(rs)}")
