#!/bin/bash
# Crash recovery by policy.  The supervisor and its watchdog are killed with
# SIGKILL while a run sleeps (the main process has PDEATHSIG and goes with
# the supervisor; its worker child lives on).  RUNNER_RECOVER_POLICY=kill
# (default): recover kills the worker and marks the run LOST.  adopt: a new
# supervisor takes the run over and enforces the rest of its timeout,
# obeys cancel, and records the end of a run that ends on its own (exit
# status unknown, said in the error).  With the cgroup and without.
. "$(dirname "$0")/lib.sh"

need_root
PY=/usr/bin/python3
[ -x "$PY" ] || skip "needs $PY"
export RUNNER_PYTHON=$PY RUNNER_KILL_GRACE=200ms
S="$WORK/state"
r() { "$RUNNER" --state "$S" "$@"; }
field() { r status "$1" --json | "$PY" -c "import json,sys; v=json.load(sys.stdin)['$2']; print('' if v is None else v)"; }
gone() {
	[ ! -e "/proc/$1/stat" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" = Z ]
}
wait_gone() {
	"$PY" -c '
import os, select, sys
for p in sys.argv[1:]:
    try:
        fd = os.pidfd_open(int(p))
    except ProcessLookupError:
        continue
    if not select.select([fd], [], [], 20)[0]:
        sys.exit(1)' "$@"
}
MARKS=""
CGS=""
# Under memcheck the runner starts slowly: a 5 s timeout can pass before
# the test has found the watchdog.
if [ -n "${FIELDRIG_UNDER_VALGRIND:-}" ]; then TMO=30; else TMO=5; fi
trap 'for m in $MARKS; do for p in $(grep -lz "FIELDRIG_RUN_MARK=$m" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3); do kill -9 "$p" 2>/dev/null; done; done; cleanup' EXIT

cat >"$WORK/bot.py" <<'PYEOF'
import os, sys, time
pid = os.fork()
if pid == 0:
    # A number: sleep that long.  A path: live until it exists (the test
    # releases the worker when it wants it to end, whatever the load).
    if sys.argv[1].startswith("/"):
        while not os.path.exists(sys.argv[1]):
            time.sleep(0.05)
    else:
        time.sleep(float(sys.argv[1]))
    os._exit(0)
print("worker", pid, flush=True)
time.sleep(1000)
PYEOF
BOT=$(r upload "$WORK/bot.py")

# start_and_orphan DOM TIMEOUT WORKER_SLEEP: a detached run whose supervisor
# and watchdog are then killed; sets RID, WORKER, SUP.
start_and_orphan() {
	RUNNER_CGROUP=$1 run 0 --state "$S" exec "$BOT" --detach --timeout "$2" --arg "$3"
	RID=$(head -1 <<<"$OUT")
	MARKS="$MARKS $(field "$RID" marker)"
	CGS="$CGS $(field "$RID" cgroup)"
	WORKER=""
	for _ in $(seq 100); do
		WORKER=$(r logs "$RID" --stream stdout | awk '/^worker/{print $2}')
		[ -n "$WORKER" ] && break
		sleep 0.1
	done
	SUP=$(field "$RID" supervisor_pid)
	# The supervisor's children are the run's main process and the
	# watchdog (whose name is not runner-watchdog under valgrind).
	for _ in $(seq 50); do
		WD=$(pgrep -P "$SUP" | grep -vx "$(field "$RID" pid)")
		[ -n "$WD" ] && break
		sleep 0.1
	done
	check "run $RID ($1): found the worker ($WORKER), supervisor ($SUP) and watchdog ($WD)" \
		[ -n "$WORKER" -a -n "$SUP" -a -n "$WD" ]
	# The watchdog first: a supervisor dying before it would set it off.
	kill -9 "$WD"
	wait_gone "$WD"
	kill -9 "$SUP"
	wait_gone "$SUP"
	check "run $RID ($1): the worker outlived supervisor and watchdog" eval "! gone $WORKER"
}

leftover_marks() {
	for m in $MARKS; do
		grep -lzq "FIELDRIG_RUN_MARK=$m" /proc/[0-9]*/environ 2>/dev/null && echo "$m"
	done
	for c in $CGS; do [ -d "$c" ] && echo "cgroup $c"; done
}
no_leftovers() {
	local l
	l=$(leftover_marks)
	[ -z "$l" ] || { echo "    left behind: $l"; return 1; }
}

for dom in auto off; do
	# ---- kill (the default) ----
	t0=$SECONDS
	start_and_orphan "$dom" 60s 1000
	run 0 --state "$S" recover
	# The adopt case below must see its run still RUNNING after the same
	# steps and a second recover: its timeout is made to outlast them
	# three times over on this machine as it is now (a loaded machine,
	# sanitizers and memcheck all slow them down).
	tmo=$((3 * (SECONDS - t0) + 5))
	[ "$tmo" -gt "$TMO" ] && TMO=$tmo
	echo "# setup took $((SECONDS - t0)) s: adopt timeout $TMO s"
	check "kill ($dom): LOST" [ "$(field "$RID" status)" = LOST ]
	check "kill ($dom): the error says the processes were killed" contains "$(field "$RID" error)" "its processes were still running and were killed"
	check "kill ($dom): the worker is gone" wait_gone "$WORKER"

	# ---- adopt: the rest of the timeout is enforced ----
	start_and_orphan "$dom" "${TMO}s" 1000
	STARTED=$(field "$RID" started_at)
	RUNNER_RECOVER_POLICY=adopt run 0 --state "$S" recover
	check "adopt ($dom): recover says ADOPTED" grep -q "^run $RID: ADOPTED: supervisor $SUP gone" <<<"$OUT"
	check "adopt ($dom): still RUNNING" [ "$(field "$RID" status)" = RUNNING ]
	NSUP=$(field "$RID" supervisor_pid)
	check "adopt ($dom): a new live supervisor ($NSUP) is recorded" [ -n "$NSUP" ] && [ "$NSUP" != "$SUP" ] && [ -e "/proc/$NSUP" ]
	check "adopt ($dom): the worker still lives" eval "! gone $WORKER"
	run 0 --state "$S" recover
	check "adopt ($dom): a second recover leaves it alone" [ "$(field "$RID" status)" = RUNNING ]
	run 1 --state "$S" wait "$RID" --timeout "$((TMO + 60))s"
	check "adopt ($dom): TIMED_OUT by the adopter" [ "$OUT" = TIMED_OUT ]
	check "adopt ($dom): the error names the adoption" contains "$(field "$RID" error)" "timed out by the adopting supervisor"
	check "adopt ($dom): the worker is gone" wait_gone "$WORKER"
	"$PY" -c '
import sys, datetime
p = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
d = (p(sys.argv[2]) - p(sys.argv[1])).total_seconds()
print("# timeout %ss: ended %.2fs after the start" % (sys.argv[3], d))
sys.exit(0 if float(sys.argv[3]) - 0.1 <= d <= float(sys.argv[3]) + 3 else 1)' "$STARTED" "$(field "$RID" ended_at)" "$TMO"
	check "adopt ($dom): ended about $TMO s after the original start" [ $? = 0 ]
	check "adopt ($dom): the adopter is gone" wait_gone "$NSUP"

	# ---- adopt: cancel reaches the adopter ----
	start_and_orphan "$dom" 60s 1000
	RUNNER_RECOVER_POLICY=adopt run 0 --state "$S" recover
	run 0 --state "$S" cancel "$RID"
	check "adopt ($dom): cancel -> CANCELLED" [ "$(field "$RID" status)" = CANCELLED ]
	check "adopt ($dom): the worker is gone after cancel" wait_gone "$WORKER"

	# ---- adopt: a run that ends on its own ----
	start_and_orphan "$dom" 120s "$WORK/release-$dom"
	RUNNER_RECOVER_POLICY=adopt run 0 --state "$S" recover
	touch "$WORK/release-$dom"
	run 1 --state "$S" wait "$RID" --timeout 60s
	check "adopt ($dom): ended on its own -> FAILED" [ "$OUT" = FAILED ]
	check "adopt ($dom): no exit code" [ -z "$(field "$RID" exit_code)" ]
	check "adopt ($dom): the error says the exit status is unknown" contains "$(field "$RID" error)" "exit status unknown"
	check "adopt ($dom): end time recorded" [ -n "$(field "$RID" ended_at)" ]
	check "adopt ($dom): nothing left" no_leftovers
done
RUNNER_RECOVER_POLICY=maybe run 2 --state "$S" recover
check "a bad RUNNER_RECOVER_POLICY is named" contains "$ERR" "RUNNER_RECOVER_POLICY: invalid value 'maybe'"
check "nothing left at the end" no_leftovers
finish
