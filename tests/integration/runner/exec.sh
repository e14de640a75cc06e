#!/bin/bash
# runner II end to end with real processes: exec, logs, status, wait,
# cancel, timeout, the kill domain (cgroup and, with RUNNER_CGROUP=off, the
# subreaper + process group + /proc sweep), --detach, the concurrency cap,
# kill -9 of the supervisor and recover, direct mode on a noexec mount,
# privilege drop.  Readiness comes through FIFOs the scripts write to,
# never from sleeping.  At the end no process carrying a marker of this
# test's runs may remain, and none of their cgroups.
. "$(dirname "$0")/lib.sh"

need_root
PY=/usr/bin/python3
[ -x "$PY" ] || skip "needs $PY"
export RUNNER_PYTHON=$PY
S="$WORK/state"
CG_BASE=$(awk '$9 == "cgroup2" { print $5 }' /proc/self/mountinfo | tail -1)

r() { "$RUNNER" --state "$S" "$@"; }
# Under memcheck the supervisor's child runs under valgrind until its exec,
# and valgrind cannot report a failed execve (it dies, status 101) and
# judges a noexec file itself (ENOEXEC, not EACCES); it is also far too
# slow for wall-clock bounds.  Those checks are for the native runs.
VG=${FIELDRIG_UNDER_VALGRIND:+1}
native() { [ -z "$VG" ]; }
up() { r upload "$1"; }
field() { r status "$1" --json | "$PY" -c "import json,sys; v=json.load(sys.stdin)['$2']; print('' if v is None else v)"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# All markers of this store's runs; every process is checked for them.
leftovers() {
	r list --json | "$PY" -c '
import json, os, sys
runs = json.load(sys.stdin)["runs"]
marks = {("FIELDRIG_RUN_MARK=" + r["marker"]).encode(): r["id"] for r in runs}
base = sys.argv[1]
bad = []
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        env = open("/proc/%s/environ" % pid, "rb").read().split(b"\0")
        state = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()[0]
    except OSError:
        continue
    if state == "Z":
        continue
    for e in env:
        if e in marks:
            bad.append("pid %s of run %d" % (pid, marks[e]))
for r in runs:
    name = "run-%d-%s" % (r["id"], r["marker"][:8])
    if base and os.path.exists(os.path.join(base, "fieldrig", name)):
        bad.append("cgroup %s" % name)
    if r["cgroup"] and os.path.exists(r["cgroup"]):
        bad.append("cgroup %s" % r["cgroup"])
print("\n".join(bad))
' "$CG_BASE"
}
no_leftovers() {
	local l
	l=$(leftovers)
	[ -z "$l" ] || { echo "    left behind: $l"; return 1; }
}

# gone PID: no such process, or only its zombie (pid 1 on some hosts never
# reaps the orphans it inherits).
gone() {
	[ ! -e "/proc/$1/stat" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" = Z ]
}

# wait_gone PID...: until each pid has exited (a pidfd turns readable when
# its process exits, zombie or not), 10 s at most.
wait_gone() {
	"$PY" -c '
import os, select, sys
for p in sys.argv[1:]:
    try:
        fd = os.pidfd_open(int(p))
    except ProcessLookupError:
        continue
    if not select.select([fd], [], [], 10)[0]:
        sys.exit(1)' "$@"
}

# ---- scripts ----
cat >"$WORK/hello.py" <<'PY'
import sys
print("hello")
print("to stderr", file=sys.stderr)
sys.stdout.write("last line without newline")
PY
cat >"$WORK/exit3.py" <<'PY'
import sys
print("failing")
sys.exit(3)
PY
# Ignores TERM, and so does a grandchild in a session of its own; both
# report their pids through the FIFO in argv[1].
cat >"$WORK/stubborn.py" <<'PY'
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
fifo = sys.argv[1]
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        with open(fifo, "w") as f:
            f.write("%d %d\n" % (os.getppid(), os.getpid()))
        time.sleep(1000)
    time.sleep(1000)
time.sleep(1000)
PY
# A tree of 100 processes (this one and 99 descendants, every tenth in a
# session of its own); each writes one byte to the FIFO once it exists.
cat >"$WORK/tree.py" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY)
def child(n):
    if n % 10 == 0:
        os.setsid()
    os.write(fd, b"x")
    time.sleep(1000)
    os._exit(0)
for i in range(1, 100):
    # a chain of ten, ten chains deep: some grandchildren, some children
    if i % 10 == 1 or os.getpid() == os.getpid():
        pid = os.fork()
        if pid == 0:
            child(i)
os.write(fd, b"x")
time.sleep(1000)
PY
# Stops one child; reports the stopped pid when it is stopped.
cat >"$WORK/stopped.py" <<'PY'
import os, signal, sys, time
pid = os.fork()
if pid == 0:
    os.kill(os.getpid(), signal.SIGSTOP)
    time.sleep(1000)
    os._exit(0)
os.waitpid(pid, os.WUNTRACED)
with open(sys.argv[1], "w") as f:
    f.write("%d\n" % pid)
time.sleep(1000)
PY
# Prints numbered lines without end; says so on the FIFO after 2000.
cat >"$WORK/chatty.py" <<'PY'
import sys
i = 0
while True:
    print(i)
    i += 1
    if i == 2000:
        open(sys.argv[1], "w").close()
PY
cat >"$WORK/million.py" <<'PY'
import sys
w = sys.stdout.write
for i in range(1000000):
    w("line %d of a million\n" % i)
PY
# Pauses now and then (not to wait for anything: so that the supervisor
# sees the two streams arrive in turns rather than in one read each).
cat >"$WORK/interleave.py" <<'PY'
import sys, time
for i in range(1000):
    sys.stdout.write("out-%d\n" % i)
    sys.stdout.flush()
    sys.stderr.write("err-%d\n" % i)
    sys.stderr.flush()
    if i % 100 == 99:
        time.sleep(0.005)
PY
cat >"$WORK/nap.py" <<'PY'
# Lives until the gate file given as its argument exists (the test opens it
# once the cap was seen reached), then a moment more.
import os, sys, time
deadline = time.monotonic() + 120
while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
    time.sleep(0.02)
time.sleep(0.05)
PY
cat >"$WORK/whoami.py" <<'PY'
import os
print(os.getuid(), os.getgid(), os.getgroups())
for l in open("/proc/self/status"):
    if l.startswith("NoNewPrivs"):
        print(l.strip())
PY
# Forks without end, every child too; as an unprivileged user its
# RLIMIT_NPROC (RUNNER_MAX_PROCS) bounds it, and the kill must still win.
cat >"$WORK/forkstorm.py" <<'PY'
import os, sys, time
open(sys.argv[1], "w").close()
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.001)
PY
cat >"$WORK/spin.py" <<'PY'
while True:
    pass
PY
cat >"$WORK/env.py" <<'PY'
import os, sys
print(" ".join(sorted(k for k in os.environ if not k.startswith("LC_"))))
print(os.environ["FOO"], os.environ["FIELDRIG_RUN_ID"], os.getcwd())
print(sorted(os.listdir("/proc/self/fd")), sys.stdin.read() == "")
PY
printf '#!/bin/sh\necho direct\nexit 127\n' >"$WORK/direct127.py"
printf '#!/nonexistent/interpreter\nprint(1)\n' >"$WORK/badshebang.py"

for f in hello exit3 stubborn tree stopped chatty million interleave nap whoami forkstorm spin env direct127 badshebang; do
	eval "ID_$f=\$(up \"\$WORK/$f.py\")" || { not_ok "upload $f"; finish; }
done

# ---- exec, logs, status ----
run 0 --state "$S" exec "$ID_hello"
RID=$(head -1 <<<"$OUT")
check "exec prints the run id first" [ "$RID" -ge 1 ]
run 0 --state "$S" logs "$RID"
check "logs: both streams, last line kept without newline" \
	[ "$OUT" = $'hello\nto stderr\nlast line without newline' ]
check "logs: the last line has no newline" [ "$(tail -c 4 "$WORK/out")" = line ]
run 0 --state "$S" logs "$RID" --stream stderr
check "logs --stream stderr" [ "$OUT" = "to stderr" ]
run 0 --state "$S" status "$RID" --json
for k in id script_id status exit_code signal error started_at ended_at cpu_ms peak_rss_kb; do
	check "status --json has $k" contains "$OUT" "\"$k\""
done
check "status COMPLETED exit 0" [ "$(field "$RID" status) $(field "$RID" exit_code)" = "COMPLETED 0" ]
check "cpu time recorded" [ -n "$(field "$RID" cpu_ms)" ]
check "peak memory recorded" [ "$(field "$RID" peak_rss_kb)" -gt 0 ]

run 1 --state "$S" exec "$ID_exit3"
RID=$(head -1 <<<"$OUT")
check "exit 3: FAILED with exit_code 3" [ "$(field "$RID" status) $(field "$RID" exit_code)" = "FAILED 3" ]
check "exit 3: one error line names the status" contains "$ERR" "exited with status 3"
run 2 --state "$S" exec no-such-script
check "unknown script: usage error" contains "$ERR" "no script with id 'no-such-script'"
run 2 --state "$S" exec "$ID_hello" --env "1BAD=x"
check "bad --env names it" contains "$ERR" "--env '1BAD=x'"
run 2 --state "$S" exec "$ID_hello" --timeout 12abc
check "bad --timeout names it" contains "$ERR" "invalid duration '12abc'"
run 2 --state "$S" status 999999
check "status of an unknown run" contains "$ERR" "no run with id 999999"

# ---- the child's world: environment, descriptors, stdin, cwd, CPU limit ----
SECRET_TOKEN=hunter2 run 0 --state "$S" exec "$ID_env" --env FOO=bar
RID=$(head -1 <<<"$OUT")
r logs "$RID" >"$WORK/envout"
check "env: only the allowlist, --env and the run's own" \
	[ "$(head -1 "$WORK/envout")" = "FIELDRIG_RUN_ID FIELDRIG_RUN_MARK FOO HOME LANG PATH" ] ||
	[ "$(head -1 "$WORK/envout")" = "FIELDRIG_RUN_ID FIELDRIG_RUN_MARK FOO HOME PATH" ]
check "env: values; cwd is the per-run dir" \
	[ "$(sed -n 2p "$WORK/envout")" = "bar $RID $(field "$RID" workdir)" ]
check "fds: only 0, 1, 2 (and the listing's own), stdin empty" \
	[ "$(sed -n 3p "$WORK/envout")" = "['0', '1', '2', '3'] True" ]
RUNNER_CPU_LIMIT=1 run 1 --state "$S" exec "$ID_spin" --timeout 30s
RID=$(head -1 <<<"$OUT")
check "RUNNER_CPU_LIMIT: SIGXCPU first (soft limit), not the KILL of the hard one" [ "$(field "$RID" status) $(field "$RID" signal)" = "FAILED 24" ]
check "RUNNER_CPU_LIMIT: its CPU time recorded (most of the second; tick-sampled)" [ "$(field "$RID" cpu_ms)" -ge 500 ]

# ---- direct mode: exec errors are not exit statuses ----
run 1 --state "$S" --exec-mode direct exec "$ID_direct127"
RID=$(head -1 <<<"$OUT")
check "direct: exit 127 is the script's status" \
	[ "$(field "$RID" exit_code)|$(field "$RID" error)" = "127|exited with status 127" ]
if native; then
	run 1 --state "$S" --exec-mode direct exec "$ID_badshebang"
	RID=$(head -1 <<<"$OUT")
	check "direct: a missing interpreter is an exec error" contains "$(field "$RID" error)" "No such file or directory (ENOENT)"
	check "direct: no exit code for an exec error" [ -z "$(field "$RID" exit_code)" ]
fi

# ---- timeout of a tree that ignores TERM ----
for dom in auto off; do
	mkfifo "$WORK/f.$dom"
	t0=$(now_ms)
	RUNNER_CGROUP=$dom RUNNER_KILL_GRACE=300ms "$RUNNER" --state "$S" exec "$ID_stubborn" \
		--timeout 1s --arg "$WORK/f.$dom" >"$WORK/out" 2>"$WORK/err" &
	EXEC=$!
	read -r P1 P2 <"$WORK/f.$dom"
	wait "$EXEC"
	rc=$?
	t1=$(now_ms)
	RID=$(head -1 "$WORK/out")
	check "timeout ($dom): exit 1" [ "$rc" = 1 ]
	check "timeout ($dom): TIMED_OUT by KILL" [ "$(field "$RID" status) $(field "$RID" signal)" = "TIMED_OUT 9" ]
	native && check "timeout ($dom): took timeout + grace, not more ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 3000 ]
	check "timeout ($dom): setsid'd grandchild $P2 and its parent $P1 gone" \
		eval "gone $P1 && gone $P2"
	check "timeout ($dom): nothing left" no_leftovers
	if [ $dom = auto ]; then
		check "timeout (auto): ran in a cgroup" contains "$(field "$RID" cgroup)" "/fieldrig/run-$RID-"
	else
		check "timeout (off): no cgroup" [ -z "$(field "$RID" cgroup)" ]
	fi
done

# ---- cancel: setsid'd grandchild, 100-process tree, stopped child ----
for dom in auto off; do
	export RUNNER_CGROUP=$dom
	mkfifo "$WORK/g.$dom"
	run 0 --state "$S" exec "$ID_stubborn" --detach --arg "$WORK/g.$dom"
	RID=$(head -1 <<<"$OUT")
	check "detach ($dom): returns with the run RUNNING or QUEUED" \
		contains "RUNNING QUEUED" "$(field "$RID" status)"
	read -r P1 P2 <"$WORK/g.$dom"
	RUNNER_KILL_GRACE=200ms run 0 --state "$S" cancel "$RID"
	check "cancel ($dom): CANCELLED" [ "$(field "$RID" status)" = CANCELLED ]
	check "cancel ($dom): setsid'd grandchild gone" eval "gone $P2 && gone $P1"
	check "cancel ($dom): nothing left" no_leftovers

	mkfifo "$WORK/t.$dom"
	run 0 --state "$S" exec "$ID_tree" --detach --arg "$WORK/t.$dom"
	RID=$(head -1 <<<"$OUT")
	n=$(head -c 100 "$WORK/t.$dom" | wc -c)
	check "tree ($dom): 100 processes started" [ "$n" = 100 ]
	check "tree ($dom): 100 processes carry the marker" \
		[ "$(grep -lz "FIELDRIG_RUN_MARK=$(field "$RID" marker)" /proc/[0-9]*/environ 2>/dev/null | wc -l)" -ge 100 ]
	t0=$(now_ms)
	run 0 --state "$S" cancel "$RID"
	t1=$(now_ms)
	echo "# tree ($dom): cancel to all gone: $((t1 - t0)) ms"
	check "tree ($dom): nothing left after cancel returned" no_leftovers

	mkfifo "$WORK/s.$dom"
	run 0 --state "$S" exec "$ID_stopped" --detach --arg "$WORK/s.$dom"
	RID=$(head -1 <<<"$OUT")
	read -r SP <"$WORK/s.$dom"
	check "stopped ($dom): the child is stopped" grep -q '^State:.*T' "/proc/$SP/status"
	run 0 --state "$S" cancel "$RID"
	check "stopped ($dom): stopped child gone" gone "$SP"
	check "stopped ($dom): nothing left" no_leftovers
done
unset RUNNER_CGROUP

# ---- a fork storm, timed out ----
for dom in auto off; do
	mkfifo "$WORK/fs.$dom"
	chmod 666 "$WORK/fs.$dom"
	RUNNER_CGROUP=$dom RUNNER_MAX_PROCS=200 RUNNER_KILL_GRACE=100ms "$RUNNER" --state "$S" exec \
		"$ID_forkstorm" --user nobody --timeout 1s --arg "$WORK/fs.$dom" >"$WORK/out" 2>"$WORK/err" &
	EXEC=$!
	cat "$WORK/fs.$dom"
	wait "$EXEC"
	RID=$(head -1 "$WORK/out")
	check "fork storm ($dom): TIMED_OUT" [ "$(field "$RID" status)" = TIMED_OUT ]
	check "fork storm ($dom): nothing left" no_leftovers
	# Only this test's processes: other tests may run as nobody at the same time.
	check "fork storm ($dom): no process of nobody left" sh -c "! pgrep -u nobody -f -- '$WORK/' >/dev/null"
done

# ---- cancel in the middle of output ----
mkfifo "$WORK/c"
run 0 --state "$S" exec "$ID_chatty" --detach --arg "$WORK/c"
RID=$(head -1 <<<"$OUT")
cat "$WORK/c" >/dev/null
run 0 --state "$S" cancel "$RID"
r logs "$RID" --stream stdout >"$WORK/chat"
check "chatty: CANCELLED" [ "$(field "$RID" status)" = CANCELLED ]
check "chatty: every complete line in order, none lost" "$PY" -c '
import sys
data = open(sys.argv[1], "rb").read().split(b"\n")
lines = data[:-1]   # the last piece may be cut by the kill
nums = [l for l in lines if not l.startswith(b"[runner]")]
ok = len(nums) >= 2000 and all(n == str(i).encode() for i, n in enumerate(nums))
sys.exit(0 if ok else 1)' "$WORK/chat"
check "chatty: nothing left" no_leftovers

# ---- 1,000,000 lines, exactly ----
"$PY" "$WORK/million.py" | sha256sum >"$WORK/want.sum"
"$PY" -c '
import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' \
	"$RUNNER" --state "$S" exec "$ID_million" >"$WORK/m"
read -r rc maxrss <"$WORK/m"
RID=$(r list | tail -1 | cut -f1)
check "million: COMPLETED" [ "$rc $(field "$RID" status)" = "0 COMPLETED" ]
check "million: 1000000 lines" [ "$(r logs "$RID" | wc -l)" = 1000000 ]
check "million: checksum" [ "$(r logs "$RID" | sha256sum)" = "$(cat "$WORK/want.sum")" ]
echo "# million: supervisor peak RSS ${maxrss} KiB"
# Under memcheck or ASan (whose quarantine keeps freed memory) the figure
# says nothing about the runner.
if [ -n "${FIELDRIG_UNDER_VALGRIND:-}" ] || ldd "$RUNNER" 2>/dev/null | grep -q libasan; then
	echo "# million: memory not judged under valgrind or ASan"
else
	check "million: supervisor memory stayed flat (${maxrss} KiB < 64 MiB)" [ "$maxrss" -lt 65536 ]
fi

# ---- interleaved stdout and stderr ----
run 0 --state "$S" exec "$ID_interleave"
RID=$(head -1 <<<"$OUT")
check "interleave: stdout in order" [ "$(r logs "$RID" --stream stdout)" = "$(seq 0 999 | sed 's/^/out-/')" ]
check "interleave: stderr in order" [ "$(r logs "$RID" --stream stderr)" = "$(seq 0 999 | sed 's/^/err-/')" ]
check "interleave: both, 2000 lines" [ "$(r logs "$RID" | wc -l)" = 2000 ]
# Across two pipes the order is only as fine as the supervisor's reads;
# still, the streams must come out mixed, not one after the other.
check "interleave: the streams are mixed in arrival order" "$PY" -c '
import sys
lines = sys.stdin.read().split()
pos = {l: i for i, l in enumerate(lines)}
sys.exit(0 if pos["err-0"] < pos["out-999"] and pos["out-0"] < pos["err-999"] else 1)' \
	< <(r logs "$RID")

# ---- logs --follow, wait, per-run log cap ----
run 0 --state "$S" exec "$ID_interleave" --detach
RID=$(head -1 <<<"$OUT")
r logs "$RID" --follow >"$WORK/follow"
check "follow: ends with the run, with everything" [ "$(wc -l <"$WORK/follow")" = 2000 ]
run 0 --state "$S" wait "$RID"
check "wait: COMPLETED" [ "$OUT" = COMPLETED ]
run 0 --state "$S" exec "$ID_stubborn" --detach --arg /dev/null
RID=$(head -1 <<<"$OUT")
run 1 --state "$S" wait "$RID" --timeout 200ms
check "wait --timeout on a live run" contains "$ERR" "still RUNNING"
RUNNER_KILL_GRACE=0 run 0 --state "$S" cancel "$RID"
run 1 --state "$S" cancel "$RID"
check "cancel of an ended run says so" contains "$ERR" "already ended: CANCELLED"
RUNNER_MAX_LOG=1KiB run 0 --state "$S" exec "$ID_interleave"
RID=$(head -1 <<<"$OUT")
r logs "$RID" >"$WORK/capped"
check "cap: marker line" grep -q '^\[runner: log truncated: RUNNER_MAX_LOG (1024 bytes) reached' "$WORK/capped"
check "cap: at most 1 KiB kept" [ "$(grep -v '^\[runner' "$WORK/capped" | wc -c)" -le 1024 ]

# ---- the concurrency cap under 50 submissions ----
export MAX_CONCURRENT_SCRIPTS=3
first=$(($(r list | tail -1 | cut -f1) + 1))
# The runs wait at a gate until the cap has been seen reached (or a minute
# has passed), so a slow machine cannot let them all end before a sample.
GATE=$WORK/nap.gate
for i in $(seq 50); do
	r exec "$ID_nap" --detach --arg "$GATE" >/dev/null || not_ok "detach $i"
done
max=0
samples=0
t0=$SECONDS
while :; do
	counts=$(r list --json | "$PY" -c '
import json, sys
runs = [r for r in json.load(sys.stdin)["runs"] if r["id"] >= int(sys.argv[1])]
print(sum(r["status"] == "RUNNING" for r in runs), sum(r["status"] in ("QUEUED", "RUNNING") for r in runs))' "$first")
	read -r running live <<<"$counts"
	samples=$((samples + 1))
	[ "$running" -gt "$max" ] && max=$running
	if [ ! -e "$GATE" ] && { [ "$max" -ge 3 ] || [ $((SECONDS - t0)) -ge 60 ]; }; then
		touch "$GATE"
	fi
	[ "$live" = 0 ] && break
done
echo "# cap: $samples samples, at most $max RUNNING"
check "cap: never more than 3 RUNNING ($max)" [ "$max" -le 3 ]
check "cap: the cap was reached" [ "$max" = 3 ]
check "cap: all 50 COMPLETED, started in submission order" "$PY" -c '
import json, sys
runs = [r for r in json.load(sys.stdin)["runs"] if r["id"] >= int(sys.argv[1])]
ok = len(runs) == 50 and all(r["status"] == "COMPLETED" for r in runs)
starts = [r["started_at"] for r in runs]
sys.exit(0 if ok and starts == sorted(starts) else 1)' "$first" < <(r list --json)
unset MAX_CONCURRENT_SCRIPTS

# ---- kill -9 of the supervisor, then recover ----
for dom in auto off; do
	mkfifo "$WORK/k.$dom"
	RUNNER_CGROUP=$dom run 0 --state "$S" exec "$ID_stubborn" --detach --arg "$WORK/k.$dom"
	RID=$(head -1 <<<"$OUT")
	read -r P1 P2 <"$WORK/k.$dom"
	SUP=$(field "$RID" supervisor_pid)
	# The watchdog is the small helper next to runner, not a fork.
	check "kill -9 ($dom): the watchdog is $(dirname "$RUNNER_BIN")/runner-watchdog" [ \
		"$(readlink "/proc/$(pgrep -P "$SUP" -x runner-watchdog)/exe")" = "$(dirname "$(readlink -f "$RUNNER_BIN")")/runner-watchdog" ]
	kill -9 "$SUP"
	check "kill -9 ($dom): the watchdog killed grandchild $P2 and $P1" wait_gone "$P1" "$P2"
	check "kill -9 ($dom): still RUNNING before recover" [ "$(field "$RID" status)" = RUNNING ]
	run 0 --state "$S" recover
	check "recover ($dom): LOST" [ "$(field "$RID" status)" = LOST ]
	check "recover ($dom): reason and time" [ -n "$(field "$RID" ended_at)" ]
	check "recover ($dom): reason names the supervisor" contains "$(field "$RID" error)" "supervisor $SUP gone"
	check "recover ($dom): nothing left" no_leftovers
done
run 0 --state "$S" recover
check "recover again: nothing to do" [ "$OUT" = "nothing to recover" ]

# ---- supervisor and watchdog both killed: recover kills what lives ----
for dom in auto off; do
	mkfifo "$WORK/w.$dom"
	RUNNER_CGROUP=$dom run 0 --state "$S" exec "$ID_stubborn" --detach --arg "$WORK/w.$dom"
	RID=$(head -1 <<<"$OUT")
	read -r P1 P2 <"$WORK/w.$dom"
	SUP=$(field "$RID" supervisor_pid)
	WD=$(pgrep -P "$SUP" -x runner-watchdog)
	check "both ($dom): found the watchdog" [ -n "$WD" ]
	kill -9 "$WD" "$SUP"
	wait_gone "$SUP" "$WD"
	check "both ($dom): the setsid'd grandchild outlived them" eval "! gone $P2"
	run 0 --state "$S" recover
	check "recover ($dom): LOST, naming the kill" contains "$(field "$RID" error)" "its processes were still running and were killed"
	check "recover ($dom): the grandchild is gone" gone "$P2"
	check "recover ($dom): nothing left" no_leftovers
done

# ---- noexec: direct mode fails at exec with the mount's options ----
mount_tmpfs "$WORK/nx" "noexec,size=16m,mode=0755"
NS="$WORK/nx/state"
IDN=$("$RUNNER" --state "$NS" upload "$WORK/hello.py")
run 1 --state "$NS" --exec-mode direct exec "$IDN"
RID=$(head -1 <<<"$OUT")
E=$("$RUNNER" --state "$NS" status "$RID" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["error"])')
check "noexec direct: FAILED at exec" contains "$E" "exec $WORK/nx/state/runtime/bot_runners/run-$RID-"
native && check "noexec direct: EACCES" contains "$E" "Permission denied (EACCES)"
check "noexec direct: the mount's options" contains "$E" "mount $WORK/nx (tmpfs, rw,noexec"
run 0 --state "$NS" exec "$IDN"
RID=$(head -1 <<<"$OUT")
check "noexec interpreter: the script ran" grep -qx hello <("$RUNNER" --state "$NS" logs "$RID")
check "noexec interpreter: the log says why the dir is fine" \
	grep -q 'noexec mount: interpreter mode is unaffected' <("$RUNNER" --state "$NS" logs "$RID")

# ---- privilege drop ----
run 0 --state "$S" exec "$ID_whoami" --user nobody
RID=$(head -1 <<<"$OUT")
r logs "$RID" >"$WORK/who"
check "user nobody: uid, gid, no groups" [ "$(head -1 "$WORK/who")" = "65534 65534 []" ]
check "user nobody: no_new_privs" grep -qx 'NoNewPrivs:	1' "$WORK/who"
run 2 --state "$S" exec "$ID_whoami" --user no-such-user-here
check "unknown user" contains "$ERR" "no user 'no-such-user-here'"

check "no runner dirs left of finished runs" sh -c "! ls -d '$S'/runtime/bot_runners/run-* 2>/dev/null | grep -q ."
check "end: nothing of any run left" no_leftovers
finish
