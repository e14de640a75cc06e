#!/bin/bash
# Isolation of a run: network (--net none / RUNNER_NETWORK=none: a network
# namespace of its own with only lo, brought up) and the process and memory
# limits (RUNNER_MAX_PROCS, RUNNER_MEMORY_LIMIT), checked by their effect
# through whichever mechanism the host offers (cgroup pids.max/memory.max,
# else RLIMIT_NPROC/RLIMIT_DATA), and the mechanism reported.
. "$(dirname "$0")/lib.sh"

need_root
PY=/usr/bin/python3
[ -x "$PY" ] || skip "needs $PY"
export RUNNER_PYTHON=$PY RUNNER_KILL_GRACE=200ms
S="$WORK/state"
r() { "$RUNNER" --state "$S" "$@"; }
field() { r status "$1" --json | "$PY" -c "import json,sys; v=json.load(sys.stdin)['$2']; print('' if v is None else v)"; }
PIDS=""
trap 'for p in $PIDS; do kill "$p" 2>/dev/null; done; cleanup' EXIT

# ---- network ----
# A TCP listener in the host's namespace, on 127.0.0.1.
"$PY" -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept(); c.close()
' >"$WORK/port" &
PIDS="$PIDS $!"
for _ in $(seq 50); do [ -s "$WORK/port" ] && break; sleep 0.1; done
PORT=$(cat "$WORK/port")
cat >"$WORK/net.py" <<'PYEOF'
import socket, sys
port = int(sys.argv[1])
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    print("host-listener: connected")
except OSError as e:
    print("host-listener: failed", e.errno)
with open("/proc/net/dev") as f:
    print("ifaces:", ",".join(sorted(l.split(":")[0].strip() for l in f.readlines()[2:])))
# lo works inside the run: a listener of its own.
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
socket.create_connection(s.getsockname(), timeout=2).close()
print("own-loopback: connected")
PYEOF
NET=$(r upload "$WORK/net.py")

run 0 --state "$S" exec "$NET" --arg "$PORT"
check "without --net: the host's listener is reachable" grep -qx "host-listener: connected" <<<"$(r logs "$(head -1 <<<"$OUT")")"

run 0 --state "$S" exec "$NET" --net none --arg "$PORT"
N1=$(head -1 <<<"$OUT")
L=$(r logs "$N1")
check "--net none: connect to the host's 127.0.0.1 listener fails" grep -q "^host-listener: failed" <<<"$L"
check "--net none: only lo in /proc/net/dev" grep -qx "ifaces: lo" <<<"$L"
check "--net none: lo is up inside" grep -qx "own-loopback: connected" <<<"$L"
check "--net none: status --json says network none" [ "$(field "$N1" network)" = none ]

RUNNER_NETWORK=none run 0 --state "$S" exec "$NET" --arg "$PORT"
check "RUNNER_NETWORK=none: the host's listener is unreachable" grep -q "^host-listener: failed" <<<"$(r logs "$(head -1 <<<"$OUT")")"
RUNNER_NETWORK=none run 0 --state "$S" exec "$NET" --net host --arg "$PORT"
check "--net host overrides RUNNER_NETWORK=none" grep -qx "host-listener: connected" <<<"$(r logs "$(head -1 <<<"$OUT")")"
RUNNER_NETWORK=off run 2 --state "$S" config
check "a bad RUNNER_NETWORK is named" contains "$ERR" "RUNNER_NETWORK: invalid value 'off'"
run 2 --state "$S" exec "$NET" --net off
check "a bad --net is named" contains "$ERR" "exec --net: 'off': expected none or host"

# Without CAP_SYS_ADMIN unshare(CLONE_NEWNET) is refused: an exec error,
# never a silent run on the host's network.
S2="$WORK/state2"
mkdir -m 0755 "$S2" && chown 65534:65534 "$S2"
cp "$WORK/net.py" "$WORK/net2.py" && chmod 644 "$WORK/net2.py"
run_as_nobody 0 --state "$S2" upload "$WORK/net2.py"
NET2=$OUT
run_as_nobody 1 --state "$S2" exec "$NET2" --net none --arg "$PORT"
N2=$(head -1 <<<"$OUT")
check "as uid 65534 --net none fails at unshare with EPERM" contains "$ERR" "unshare(CLONE_NEWNET)"
check "the error names EPERM" contains "$ERR" "(EPERM)"
check "the run is FAILED with that error" [ "$("$RUNNER" --state "$S2" status "$N2" --json | "$PY" -c 'import json,sys; j=json.load(sys.stdin); print(j["status"], "EPERM" in (j["error"] or ""))')" = "FAILED True" ]
check "the script never ran" [ -z "$("$RUNNER" --state "$S2" logs "$N2" --stream stdout | grep -v '^\[runner\]')" ]

# ---- limits, by their effect ----
# A fork storm as nobody under RUNNER_MAX_PROCS=20: children that sleep
# until fork fails.  pids.max counts the run's cgroup; RLIMIT_NPROC counts
# every process of uid 65534, so the others of that user are counted first.
cat >"$WORK/storm.py" <<'PYEOF'
import os, sys, time, signal
kids = []
err = "none"
for i in range(500):
    try:
        pid = os.fork()
    except OSError as e:
        err = e.strerror
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    kids.append(pid)
print("forked", len(kids), "then", err, flush=True)
for k in kids:
    os.kill(k, signal.SIGKILL)
    os.waitpid(k, 0)
PYEOF
STORM=$(r upload "$WORK/storm.py")
OTHERS=$(pgrep -u 65534 | wc -l)
RUNNER_MAX_PROCS=20 run 0 --state "$S" exec "$STORM" --user nobody --timeout 60s
SR=$(head -1 <<<"$OUT")
L=$(r logs "$SR")
NOTE=$(field "$SR" limits)
echo "# $NOTE"
echo "# $(grep '^forked' <<<"$L") (other processes of uid 65534 at the start: $OTHERS)"
N=$(grep '^forked' <<<"$L" | awk '{print $2}')
check "fork storm: fork was refused" grep -q "^forked [0-9]* then Resource temporarily unavailable" <<<"$L"
check "fork storm: capped at 20 processes (the script and its children: $((N + 1)))" [ -n "$N" ] && [ $((N + 1)) -le 20 ]
check "fork storm: not far below the cap ($N children, $OTHERS others of the user)" [ -n "$N" ] && [ $((N + 1 + OTHERS)) -ge 18 ]
check "status --json limits names the mechanism" grep -Eq "processes 20 by (cgroup pids.max|RLIMIT_NPROC \(per user)" <<<"$NOTE"
if grep -q "by RLIMIT_NPROC" <<<"$NOTE"; then
	# A root run on this host: RLIMIT_NPROC cannot bind it, and it says so.
	RUNNER_MAX_PROCS=20 run 0 --state "$S" exec "$NET" --arg "$PORT"
	check "a root run without a pids controller says its processes are NOT LIMITED" grep -q "^limits: processes NOT LIMITED: RLIMIT_NPROC 20 does not bind root" <<<"$(field "$(head -1 <<<"$OUT")" limits)"
fi

# A memory hog under RUNNER_MEMORY_LIMIT=64MiB: 1 MiB blocks, touched.
cat >"$WORK/hog.py" <<'PYEOF'
import sys
blocks = []
try:
    for i in range(1, 1025):
        blocks.append(bytearray(1 << 20))
        print("MiB", i, flush=True)
except MemoryError:
    print("MemoryError at", len(blocks), "MiB", flush=True)
    sys.exit(3)
PYEOF
HOG=$(r upload "$WORK/hog.py")
# Under memcheck the child's setrlimit(RLIMIT_DATA) before exec is
# valgrind's own (it does not reach the kernel): native runs only.
if [ -z "${FIELDRIG_UNDER_VALGRIND:-}" ]; then
RUNNER_MEMORY_LIMIT=64MiB run 1 --state "$S" exec "$HOG" --user nobody --timeout 60s
HR=$(head -1 <<<"$OUT")
L=$(r logs "$HR")
NOTE=$(field "$HR" limits)
LAST=$(grep '^MiB' <<<"$L" | tail -1 | awk '{print $2}')
echo "# $NOTE"
echo "# last block: ${LAST:-none} MiB; $(grep MemoryError <<<"$L"); status $(field "$HR" status) exit $(field "$HR" exit_code) signal $(field "$HR" signal)"
check "memory hog: stopped below 64 MiB of blocks" [ -n "$LAST" ] && [ "$LAST" -lt 64 ]
check "memory hog: got near the limit (over 32 MiB)" [ -n "$LAST" ] && [ "$LAST" -gt 32 ]
if grep -q "memory 67108864 bytes by RLIMIT_DATA" <<<"$NOTE"; then
	check "RLIMIT_DATA: the script saw MemoryError and the run FAILED with its exit 3" \
		[ "$(field "$HR" status) $(field "$HR" exit_code)" = "FAILED 3" ]
else
	check "memory.max: the run was killed (SIGKILL by the OOM killer)" \
		[ "$(field "$HR" status) $(field "$HR" signal)" = "FAILED 9" ]
	check "the mechanism is named" grep -q "memory 67108864 bytes by cgroup memory.max" <<<"$NOTE"
fi
fi
check "no process of uid 65534 from the tests left" sh -c "! pgrep -u 65534 -f 'storm|hog' >/dev/null"
for id in "$SR" ${HR:-}; do
	cg=$(field "$id" cgroup)
	check "run $id: its cgroup (${cg:-none}) is gone" [ -z "$cg" -o ! -d "${cg:-/nonexistent}" ]
done

# ---- the interpreter a dropped user can execute ----
# Chosen automatically from PATH, the first python3 sits in a 0700
# directory (like a pyenv shim under /root): root's runs use it, a run as
# nobody gets /usr/bin/python3 instead, and the record says why.
mkdir -p "$WORK/priv/bin" && chmod 0700 "$WORK/priv"
ln -s /usr/bin/python3 "$WORK/priv/bin/python3"
printf 'import sys\nprint(sys.executable)\n' >"$WORK/exe.py"
EXE=$(r upload "$WORK/exe.py")
(
	unset RUNNER_PYTHON
	export PATH="$WORK/priv/bin:$PATH" RUNNER_CONTAINER=none
	run 0 --state "$S" which python
	check "the automatic choice is the one in the 0700 directory" contains "$OUT" "$WORK/priv/bin/python3"
	run 0 --state "$S" exec "$EXE"
	check "root's run uses it" [ "$(r logs "$(head -1 <<<"$OUT")")" = "$WORK/priv/bin/python3" ]
	run 0 --state "$S" exec "$EXE" --user nobody
	U=$(head -1 <<<"$OUT")
	check "the run as nobody COMPLETED with /usr/bin/python3" [ "$(r logs "$U")" = /usr/bin/python3 ]
	check "status --json interpreter names the first parent nobody cannot search" \
		contains "$(field "$U" interpreter)" "user nobody cannot execute $WORK/priv/bin/python3: $WORK/priv: Permission denied for uid 65534 gid 65534 (owner 0:0 mode 0700): cannot be searched"
	exit "$FAILS"
)
SUB=$?
CHECKS=$((CHECKS + 7))
FAILS=$((FAILS + SUB))

finish
