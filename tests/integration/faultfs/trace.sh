#!/bin/bash
# Trace contents: one valid JSON line per injected fault with time, op, path
# (mount-relative), pid (of the process that did it), uid, gid, comm, rule id
# and result; --trace FILE holds the same lines; nothing is logged for
# operations no rule touched, unless --trace-all; ctl stats counts per rule;
# ctl trace --follow streams faults that happen after it started.
. "$(dirname "$0")/lib.sh"
ff_begin

B=$WORK/back M=$WORK/mnt T=$WORK/trace.jsonl
mkdir -p "$B/sub" "$WORK/pub"
chmod 1777 "$WORK/pub"
echo hello >"$B/f"
echo world >"$B/g"
echo deep >"$B/sub/f2"
chmod 644 "$B/f" "$B/g" "$B/sub/f2"
ff_mount "$B" "$M" --trace "$T" \
	--rule 'op=read,path=f,error=EIO' \
	--rule 'op=mkdir,path=nod,error=EACCES' \
	--rule 'op=open,path=sub/*,error=EPERM'
cd "$M"

# Operations no rule touches leave no trace.
ff_true "untouched: ls, stat, cat g, touch, rm" bash -c 'ls -la >/dev/null && stat g >/dev/null && cat g >/dev/null && touch new && rm new'
ff_expect "ctl trace is empty after untouched operations" rc=0 out='' -- "$FAULTFS" ctl "$M" trace
ff_expect "the --trace file is empty too" out=0 -- bash -c "cat '$T' 2>/dev/null | wc -l"

# Three faults, by known processes.
ff_expect "fault 1: cat f as root fails EIO" rc=1 err='Input/output error' -- \
	sh -c "echo \$\$ > '$WORK/pid1'; exec cat f"
ff_expect "fault 2: cat f as nobody fails EIO" rc=1 err='Input/output error' -- \
	"${NOBODY[@]}" sh -c "echo \$\$ > '$WORK/pub/pid2'; exec cat f"
ff_expect "fault 3: mkdir nod fails EACCES" rc=1 err='Permission denied' -- \
	sh -c "echo \$\$ > '$WORK/pid3'; exec mkdir nod"
ff_expect "fault 4: cat sub/f2 fails EPERM" rc=1 err='Operation not permitted' -- \
	sh -c "echo \$\$ > '$WORK/pid4'; exec cat sub/f2"

cat >"$WORK/check.py" <<'PYEOF'
import json, sys
lines = sys.stdin.read().splitlines()
want = json.loads(sys.argv[1])
errs = []
recs = []
for i, l in enumerate(lines):
    try:
        recs.append(json.loads(l))
    except ValueError as e:
        errs.append("line %d is not JSON (%s): %r" % (i + 1, e, l))
if errs:
    print("; ".join(errs)); sys.exit(1)
if len(recs) != len(want):
    print("expected %d lines, got %d: %r" % (len(want), len(recs), lines)); sys.exit(1)
for i, (r, w) in enumerate(zip(recs, want)):
    for k in ("time", "op", "path", "pid", "uid", "gid", "comm", "rule", "result"):
        if k not in r:
            errs.append("line %d lacks %r" % (i + 1, k))
    for k, v in w.items():
        if r.get(k) != v:
            errs.append("line %d: %s is %r, expected %r" % (i + 1, k, r.get(k), v))
    if not (isinstance(r.get("time"), str) and r["time"][:2] == "20"):
        errs.append("line %d: time %r is not an ISO time" % (i + 1, r.get("time")))
print("; ".join(errs) if errs else "ok")
PYEOF
want=$(printf '[{"op":"read","path":"f","pid":%d,"uid":0,"gid":0,"comm":"cat","rule":1,"result":"EIO"},
{"op":"read","path":"f","pid":%d,"uid":65534,"gid":65534,"comm":"cat","rule":1,"result":"EIO"},
{"op":"mkdir","path":"nod","pid":%d,"uid":0,"comm":"mkdir","rule":2,"result":"EACCES"},
{"op":"open","path":"sub/f2","pid":%d,"uid":0,"comm":"cat","rule":3,"result":"EPERM"}]' \
	"$(cat "$WORK/pid1")" "$(cat "$WORK/pub/pid2")" "$(cat "$WORK/pid3")" "$(cat "$WORK/pid4")")
cd /
has_lines() { [ "$(wc -l <"$1")" -ge "$2" ]; }   # FILE N
ff_run "$FAULTFS" ctl "$M" trace
ctl_trace=$RUN_OUT
ff_expect "ctl trace: 4 valid JSON lines with op, path, pid, uid, gid, comm, rule, result" out=ok -- \
	bash -c 'printf "%s\n" "$1" | "$2" "$3" "$4"' _ "$ctl_trace" "$PY" "$WORK/check.py" "$want"
# The file is written by the daemon; give it a bounded moment to flush.
ff_wait_for "$FF_WAIT" has_lines "$T" 4
ff_check "--trace FILE holds the same lines as ctl trace" "$ctl_trace" "$(cat "$T")"

ff_run "$FAULTFS" ctl "$M" stats --json
ff_expect "ctl stats: faults 4; fired per rule 2 1 1; matched >= fired" out="4 2 1 1 True" -- "$PY" -c '
import json, sys
s = json.loads(sys.argv[1])
r = s["rules"]
print(s["faults"], r[0]["fired"], r[1]["fired"], r[2]["fired"], all(x["matched"] >= x["fired"] for x in r))' "$RUN_OUT"
ff_expect "ctl stats (human) shows rule lines" rc=0 outhas=$'rule 1\tmatched' -- "$FAULTFS" ctl "$M" stats

# --follow: prints what is there, then streams new faults.
ff_bg "$FAULTFS" ctl "$M" trace --follow >"$WORK/follow.out"
follower=$FF_LAST_BG
ff_wait_for "$FF_WAIT" has_lines "$WORK/follow.out" 4
ff_expect "trace --follow first prints the 4 past lines" out=4 -- bash -c "wc -l < '$WORK/follow.out'"
ff_expect "fault 5 while following: cat f" rc=1 -- sh -c "cd '$M' && echo \$\$ > '$WORK/pid5' && exec cat f"
ff_wait_for "$FF_WAIT" has_lines "$WORK/follow.out" 5
ff_expect "trace --follow streamed fault 5 (pid, op, result)" out="read f $(cat "$WORK/pid5") EIO" -- \
	"$PY" -c '
import json, sys
l = open(sys.argv[1]).read().splitlines()
r = json.loads(l[4]) if len(l) >= 5 else {}
print(r.get("op"), r.get("path"), r.get("pid"), r.get("result"))' "$WORK/follow.out"
ff_expect "the follower is still running (it follows)" rc=0 -- ff_proc_alive "$follower"
ff_umount "$M"
ff_expect "the follower ends when the daemon goes away" rc=0 -- ff_wait_gone "$follower" "$FF_WAIT"

# Paths that need JSON escaping come out intact.
ff_mount "$B" "$M" --rule 'op=read,path=odd*,error=EIO'
odd=$'odd "q" \\b\tt \xc3\xbc \x01'
printf 'x\n' >"$B/$odd"
ff_expect "a fault on a file with quotes, backslash, tab, UTF-8 and a control char" rc=1 -- cat "$M/$odd"
ff_run "$FAULTFS" ctl "$M" trace
ff_expect "its trace line is valid JSON and the path round-trips" out=same -- "$PY" -c '
import json, os, sys
r = json.loads(sys.argv[1].splitlines()[-1])
print("same" if os.fsencode(r["path"]) == os.fsencode(sys.argv[2]) else "differ: %r vs %r" % (r["path"], sys.argv[2]))' "$RUN_OUT" "$odd"
ff_umount "$M"

# --trace-all logs untouched operations as well.
ff_mount "$B" "$M" --trace-all --trace "$WORK/all.jsonl"
ff_expect "trace-all: cat g works" rc=0 out=world -- sh -c "cd '$M' && echo \$\$ > '$WORK/pid6' && exec cat g"
ff_run "$FAULTFS" ctl "$M" trace
ff_expect "trace-all: valid JSON lines; open and read of g by cat logged with rule null, result ok" out=yes -- "$PY" -c '
import json, sys
recs = [json.loads(l) for l in sys.argv[1].splitlines()]
mine = [r for r in recs if r.get("path") == "g" and r.get("pid") == int(sys.argv[2])]
ops = set(r.get("op") for r in mine)
ok = {"open", "read"} <= ops and all(r.get("comm") == "cat" and r.get("result") == "ok" and r.get("rule") is None for r in mine)
print("yes" if ok else "no: %r" % recs)' "$RUN_OUT" "$(cat "$WORK/pid6")"
ff_umount "$M"
ff_end
