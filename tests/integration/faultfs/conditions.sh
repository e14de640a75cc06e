#!/bin/bash
# Per-rule conditions on real mounts: uid=, gid=, comm=, and prob= with
# seed= reproducible across fresh mounts (matched paths get zero cache
# timeouts, so every stat reaches the daemon).
. "$(dirname "$0")/lib.sh"
ff_begin

B=$WORK/back M=$WORK/mnt
mkdir -p "$B"
for f in u g c p; do echo "$f-data" >"$B/$f"; chmod 644 "$B/$f"; done
N=("${NOBODY[@]}")
ff_mount "$B" "$M" \
	--rule 'op=read,path=u,uid=65534,error=EIO' \
	--rule 'op=open,path=g,gid=4242,error=EACCES' \
	--rule 'op=read,path=c,comm=cat,error=EIO'
cd "$M"

ff_expect "uid=65534: nobody gets EIO" rc=1 errx='cat: u: Input/output error' -- "${N[@]}" cat u
ff_expect "uid=65534: root reads" out=u-data -- cat u
ff_expect "uid=65534: nobody still gets EIO after root's read (page cache not used)" rc=1 err='Input/output error' -- "${N[@]}" cat u
ff_expect "uid=65534: root reads again" out=u-data -- cat u

ff_expect "gid=4242: a caller with primary gid 4242 gets EACCES" rc=1 err='Permission denied' -- \
	setpriv --reuid=65534 --regid=4242 --clear-groups cat g
ff_expect "gid=4242: nobody (gid 65534) reads" out=g-data -- "${N[@]}" cat g
ff_expect "gid=4242: root reads" out=g-data -- cat g

ff_expect "comm=cat: cat fails" rc=1 errx='cat: c: Input/output error' -- cat c
ff_expect "comm=cat: head works" out=c-data -- head c
ff_expect "comm=cat: python works" out=c-data -- "$PY" -c 'print(open("c").read().strip())'
ff_expect "comm=cat: cat fails again after head filled the page cache" rc=1 err='Input/output error' -- cat c
ff_expect "comm=cat: a cat renamed by exec -a still has comm cat" rc=1 err='Input/output error' -- bash -c 'exec -a notcat cat c'

ff_run "$FAULTFS" ctl "$M" stats --json
ff_expect "stats: fired 2 (uid), 1 (gid), 3 (comm)" out='2 1 3' -- "$PY" -c '
import json, sys
r = json.loads(sys.argv[1])["rules"]
print(r[0]["fired"], r[1]["fired"], r[2]["fired"])' "$RUN_OUT"
cd /
ff_umount "$M"

# count= and nth= hold exactly under concurrent callers (4 processes x 50 stats).
echo x >"$B/cnt"; echo x >"$B/nth"
ff_mount "$B" "$M" --rule 'op=getattr,path=cnt,count=20,error=EIO' --rule 'op=getattr,path=nth,nth=37,error=EIO'
PAR='
import os, sys
n = 0
for i in range(50):
    try:
        os.stat(sys.argv[1])
    except OSError as e:
        assert e.errno == 5, e
        n += 1
print(n)'
for f in cnt nth; do
	pids=()
	for j in 1 2 3 4; do
		(cd "$M" && exec "$PY" -c "$PAR" "$f" >"$WORK/par.$f.$j") &
		pids+=($!)
	done
	wait "${pids[@]}"   # never a bare `wait`: it would wait for the daemon too
done
ff_check "count=20 under 4 parallel callers: exactly 20 calls failed" 20 "$(cat "$WORK"/par.cnt.* | paste -sd+ | bc)"
ff_check "nth=37 under 4 parallel callers: exactly 1 call failed" 1 "$(cat "$WORK"/par.nth.* | paste -sd+ | bc)"
ff_expect "stats agree: fired 20 and 1, matched 200 and 200" out='20 1 200 200' -- bash -c \
	"'$FAULTFS' ctl '$M' stats --json | $PY -c 'import json,sys; r=json.load(sys.stdin)[\"rules\"]; print(r[0][\"fired\"], r[1][\"fired\"], r[0][\"matched\"], r[1][\"matched\"])'"
ff_umount "$M"

# prob= with seed=: the same sequence of 50 stats gives the same pattern on
# two fresh mounts; a different seed gives a different one.
STATS='
import os
out = []
for i in range(50):
    try:
        os.stat("p")
        out.append(".")
    except OSError as e:
        out.append("X" if e.errno == 5 else "?%d" % e.errno)
print("".join(out))'
pattern() { # SEED: sets PAT (and FIRED) -- not in a subshell, so failures count
	PAT="" FIRED=""
	ff_mount "$B" "$M" --rule "op=getattr,path=p,prob=0.5,seed=$1,error=EIO" || return
	PAT=$(cd "$M" && "$PY" -c "$STATS")
	FIRED=$("$FAULTFS" ctl "$M" stats --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["rules"][0]["fired"])')
	ff_umount "$M"
}
pattern 42; p1=$PAT f1=$FIRED
pattern 42; p2=$PAT
pattern 43; p3=$PAT
echo "# seed 42: $p1"
echo "# seed 42: $p2"
echo "# seed 43: $p3"
ff_check "prob=0.5,seed=42: 50 stats give the same pass/fail pattern on two fresh mounts" "$p1" "$p2"
ff_check "prob=0.5: both outcomes occur in 50 calls" yes "$([[ $p1 == *X* && $p1 == *.* ]] && echo yes || echo "no: $p1")"
ff_check "prob=0.5: roughly half fail (10..40 of 50)" yes "$(n=$(tr -cd X <<<"$p1" | wc -c); [ "$n" -ge 10 ] && [ "$n" -le 40 ] && echo yes || echo "no: $n")"
ff_check "every stat reached the daemon: fired equals the failures seen" "$(tr -cd X <<<"$p1" | wc -c)" "$f1"
ff_check "seed=43 gives a different pattern than seed=42" yes "$([ "$p1" != "$p3" ] && echo yes || echo "no: same $p3")"

# Effects next to error=: delay= holds the call, and only matching calls.
ff_mount "$B" "$M" --rule 'op=read,path=u,comm=cat,delay=400ms' --rule 'op=read,path=c,short=3'
TIMED='
import subprocess, sys, time
t = time.monotonic()
r = subprocess.run(sys.argv[1:], capture_output=True)
ms = (time.monotonic() - t) * 1000
print(r.returncode, r.stdout.decode().strip(), "slow" if ms >= 390 else "fast")'
cd "$M"
ff_expect "delay=400ms: cat u succeeds but takes >= 400 ms" out='0 u-data slow' -- "$PY" -c "$TIMED" cat u
ff_expect "delay=400ms: head u (comm head) is not delayed" outhas='0 u-data' -- "$PY" -c "$TIMED" head u
ff_expect "short=3: one read(2) returns at most 3 bytes" out="b'c-d'" -- "$PY" -c 'import os; print(os.read(os.open("c", os.O_RDONLY), 100))'
ff_expect "short=3: a reading loop still gets the whole file" out=c-data -- cat c
cd /
ff_umount "$M"
ff_end
