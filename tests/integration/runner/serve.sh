#!/bin/bash
# runner serve: at start it recovers a run whose supervisor was killed;
# it restarts a failing run by its on-failure policy, with backoff, up to
# --max-restarts; on SIGTERM it cancels the live run with a restart policy,
# logs one line per decision and exits 0, leaving no process behind.
. "$(dirname "$0")/lib.sh"

need_root
PY=/usr/bin/python3
[ -x "$PY" ] || skip "needs $PY"
export RUNNER_PYTHON=$PY RUNNER_CLEANUP_INTERVAL=1s RUNNER_KILL_GRACE=200ms
S="$WORK/state"
r() { "$RUNNER" --state "$S" "$@"; }
field() { r status "$1" --json | "$PY" -c "import json,sys; v=json.load(sys.stdin)['$2']; print('' if v is None else v)"; }
# wait_line PATTERN: until serve's log has a line matching PATTERN (tail -f
# follows the file as it grows), 20 s at most.
wait_line() {
	timeout 20 tail -n +1 -f "$WORK/serve.log" | grep -m1 -q -- "$1"
}

printf 'import sys\nprint("failing")\nsys.exit(3)\n' >"$WORK/fail.py"
printf 'import time\nprint("up", flush=True)\ntime.sleep(1000)\n' >"$WORK/bot.py"
FAIL=$(r upload "$WORK/fail.py")
BOT=$(r upload "$WORK/bot.py")

# A run whose supervisor is killed before serve starts.
run 0 --state "$S" exec "$BOT" --detach
LOSTRUN=$(head -1 <<<"$OUT")
kill -9 "$(field "$LOSTRUN" supervisor_pid)"

# The log must exist before wait_line's tail starts: the redirection below
# happens in the background child, which may not have run yet.
: >"$WORK/serve.log"
"$RUNNER" --state "$S" serve 2>>"$WORK/serve.log" &
SERVE=$!
check "serve logs its start" wait_line "^runner serve: started pid=$SERVE "
check "serve recovered the orphaned run at start" wait_line "^runner serve: lost run $LOSTRUN: LOST"
check "the orphaned run is LOST" [ "$(field "$LOSTRUN" status)" = LOST ]

run 1 --state "$S" exec "$FAIL" --restart on-failure --max-restarts 2
F1=$(head -1 <<<"$OUT")
check "first restart after 1 s" wait_line "^runner serve: restarted run=$F1 as=[0-9]* policy=on-failure after=FAILED attempt=1/2 backoff_ms=1000"
F2=$(grep -o "restarted run=$F1 as=[0-9]*" "$WORK/serve.log" | sed 's/.*as=//')
check "second restart after 2 s" wait_line "^runner serve: restarted run=$F2 as=[0-9]* policy=on-failure after=FAILED attempt=2/2 backoff_ms=2000"
F3=$(grep -o "restarted run=$F2 as=[0-9]*" "$WORK/serve.log" | sed 's/.*as=//')
run 1 --state "$S" wait "$F3"
check "the last attempt failed too" [ "$OUT" = FAILED ]

run 0 --state "$S" exec "$BOT" --detach --restart always
B=$(head -1 <<<"$OUT")
MARK=$(field "$B" marker)
kill -TERM "$SERVE"
wait "$SERVE"
rc=$?
check "serve exits 0 on SIGTERM" [ "$rc" = 0 ]
check "serve cancelled the live always-run" grep -q "^runner serve: stop-cancelled run=$B status=CANCELLED" "$WORK/serve.log"
check "serve said it stopped" grep -qx "runner serve: stopped" "$WORK/serve.log"
check "no restart beyond --max-restarts" [ "$(grep -c "restarted run=$F3 " "$WORK/serve.log")" = 0 ]
check "no process of the bot left" sh -c "! grep -lzq 'FIELDRIG_RUN_MARK=$MARK' /proc/[0-9]*/environ 2>/dev/null"
echo "# serve log:"
sed 's/^/#   /' "$WORK/serve.log"
finish
