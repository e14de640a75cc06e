#!/bin/bash
# runner serve at its edges: a store it cannot open and a bad setting end it
# with one clear line; a restart whose user is gone, whose script is gone,
# or whose request is not JSON is logged as failed (and never retried into
# a loop); "always" restarts a run that completed, with its arguments and
# environment; SIGHUP runs housekeeping at once, which removes an old
# run's directory and says so; with RUNNER_SERVE_STOP=wait, SIGTERM waits
# for the live run instead of cancelling it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"

need_root
command -v sqlite3 >/dev/null || skip "needs the sqlite3 CLI to edit the store"
export RUNNER_CLEANUP_INTERVAL=1h RUNNER_KILL_GRACE=200ms
S="$WORK/state"
r() { "$RUNNER" --state "$S" "$@"; }
db() { sqlite3 -cmd '.timeout 5000' "$S/runner.db" "$@"; }
SERVE=""
stop_serve() {
	[ -n "$SERVE" ] && kill -TERM "$SERVE" 2>/dev/null && wait "$SERVE"
	SERVE=""
}
trap 'stop_serve; cleanup' EXIT

# --- cannot start ---------------------------------------------------------
run 1 --state /proc/self/nonexistent/state serve
check "unopenable store: one line naming the state dir" \
	sh -c "[ \$(wc -l <'$WORK/err') = 1 ] && grep -q '/proc/self/nonexistent/state' '$WORK/err'"
RUNNER_SERVE_STOP=sometimes run 2 --state "$S" serve
check "bad RUNNER_SERVE_STOP named with the allowed values" \
	grep -q "RUNNER_SERVE_STOP.*expected cancel or wait" "$WORK/err"

# --- runs to restart --------------------------------------------------------
PY=/usr/bin/python3
[ -x "$PY" ] || skip "needs $PY"
export RUNNER_PYTHON=$PY
printf 'import os, sys\nprint("args=" + " ".join(sys.argv[1:]) + " env=" + os.environ.get("GREETING", ""))\n' >"$WORK/ok.py"
printf 'import sys\nprint("failing")\nsys.exit(3)\n' >"$WORK/fail.py"
printf 'import time\ntime.sleep(2)\nprint("done")\n' >"$WORK/slow.py"
printf 'open("leftover.txt", "w").write("data")\n' >"$WORK/keep.py"
OK=$(r upload "$WORK/ok.py")
FAIL=$(r upload "$WORK/fail.py")
SLOW=$(r upload "$WORK/slow.py")
KEEP=$(r upload "$WORK/keep.py")

# "always" restarts a completed run, with its arguments and environment.
run 0 --state "$S" exec "$OK" --arg one --arg two --env GREETING=hi --restart always --max-restarts 1
A=$(head -1 <<<"$OUT")
# A failing run whose user no longer exists.
run 1 --state "$S" exec "$FAIL" --restart on-failure --max-restarts 2
U=$(head -1 <<<"$OUT")
db "UPDATE runs SET request = json_set(request, '$.user', 'fieldrig-no-such-user') WHERE id = $U"
# A failing run whose script has been deleted since.
run 1 --state "$S" exec "$FAIL" --restart on-failure --max-restarts 2
G=$(head -1 <<<"$OUT")
db "UPDATE runs SET request = json_set(request, '$.script_id', 'gone') WHERE id = $G"
db "UPDATE runs SET script_id = 'gone' WHERE id = $G" 2>/dev/null
# A request that is not JSON at all.
run 1 --state "$S" exec "$FAIL" --restart on-failure --max-restarts 2
J=$(head -1 <<<"$OUT")
db "UPDATE runs SET request = 'not json {' WHERE id = $J"
# A run to restart as the user it ran as, in the mode it asked for.
run 0 --state "$S" exec "$OK" --user nobody --restart always --max-restarts 1
NB=$(head -1 <<<"$OUT")
db "UPDATE runs SET request = json_set(request, '$.exec_mode', 'interpreter') WHERE id = $NB"
# A policy serve does not know, and a late attempt whose backoff is capped
# (and not yet due): neither restarts.
run 1 --state "$S" exec "$FAIL" --restart on-failure --max-restarts 2
PB=$(head -1 <<<"$OUT")
db "UPDATE runs SET request = json_set(request, '$.restart', 'sometimes') WHERE id = $PB"
run 1 --state "$S" exec "$FAIL" --restart on-failure --max-restarts 50
LATE=$(head -1 <<<"$OUT")
db "UPDATE runs SET request = json_set(request, '$.attempt', 20) WHERE id = $LATE"
# An old run whose directory holds a mount point: cleanup fails, says so.
run 0 --state "$S" exec "$KEEP"
BUSY=$(head -1 <<<"$OUT")
BUSYDIR=$(db "SELECT workdir FROM runs WHERE id = $BUSY")
mount_tmpfs "$BUSYDIR/mnt" size=64k
db "UPDATE runs SET ended_at = 1000 WHERE id = $BUSY"
# An old finished run whose directory housekeeping will remove.
run 0 --state "$S" exec "$KEEP"
OLD=$(head -1 <<<"$OUT")
OLDDIR=$(db "SELECT workdir FROM runs WHERE id = $OLD")
check "the old run has a directory" [ -n "$OLDDIR" ] && [ -d "$OLDDIR" ]
db "UPDATE runs SET ended_at = 1000 WHERE id = $OLD"

: >"$WORK/serve.log"
RUNNER_SERVE_STOP=wait "$RUNNER" --state "$S" serve 2>>"$WORK/serve.log" &
SERVE=$!
check "serve started" wait_line "^runner serve: started pid=$SERVE .* stop=wait"
check "the completed always-run is restarted" \
	wait_line "^runner serve: restarted run=$A as=[0-9]* policy=always after=COMPLETED attempt=1/1"
A2=$(grep -o "restarted run=$A as=[0-9]*" "$WORK/serve.log" | sed 's/.*as=//')
run 0 --state "$S" wait "$A2"
run 0 --state "$S" logs "$A2"
check "the restart kept arguments and environment" [ "$OUT" = "args=one two env=hi" ]
check "a gone user is a failed restart" \
	wait_line "^runner serve: restart-failed run=$U error=\"no user 'fieldrig-no-such-user'\""
check "a gone script is a failed restart" wait_line "^runner serve: restart-failed run=$G error="
check "a failed restart is retried with backoff, then given up (max-restarts 2)" \
	wait_line "^runner serve: restart-gave-up run=$U tries=2\$"
# The start-up housekeeping already removed the old directory.
check "housekeeping removed the old run's directory" wait_line "^runner serve: cleaned path=$OLDDIR\$"
check "and it is gone" [ ! -e "$OLDDIR" ]

check "a run is restarted as its user" \
	wait_line "^runner serve: restarted run=$NB as=[0-9]* policy=always after=COMPLETED attempt=1/1"
NB2=$(grep -o "restarted run=$NB as=[0-9]*" "$WORK/serve.log" | sed 's/.*as=//')
run 0 --state "$S" wait "$NB2"
check "who is nobody again" sh -c "sqlite3 '$S/runner.db' \"SELECT json_extract(request, '\$.user') FROM runs WHERE id = $NB2\" | grep -qx nobody"
check "a mount point in an old run's directory: cleanup-failed with the path" \
	wait_line "^runner serve: cleanup-failed path=$BUSYDIR/mnt error=\"Device or resource busy\""

# SIGHUP: housekeeping now (and once more nothing to clean).
kill -HUP "$SERVE"
check "SIGHUP is housekeeping now" wait_line "^runner serve: hangup: housekeeping now"

# A live run with a policy: SIGTERM waits for it (RUNNER_SERVE_STOP=wait).
run 0 --state "$S" exec "$SLOW" --detach --restart on-failure
L=$(head -1 <<<"$OUT")
kill -TERM "$SERVE"
wait "$SERVE"
rc=$?
SERVE=""
check "serve exits 0" [ "$rc" = 0 ]
check "serve waited for the live run" grep -q "^runner serve: stop-waited run=$L status=COMPLETED" "$WORK/serve.log"
check "which completed" [ "$(r status "$L" --json | grep -o '"status": *"[A-Z_]*"' | grep -o '[A-Z_]*"$' | tr -d '"')" = COMPLETED ]
check "failed restarts are not retried in a loop: two tries, no more" \
	[ "$(grep -c "restart-failed run=$U " "$WORK/serve.log")" = 2 ]
check "an unknown policy is not restarted" sh -c "! grep -q 'run=$PB ' '$WORK/serve.log'"
check "nor an attempt whose (capped) backoff is not due" sh -c "! grep -q 'run=$LATE ' '$WORK/serve.log'"
check "the non-JSON request was left alone" sh -c "! grep -q 'run=$J ' '$WORK/serve.log'"
# With a non-JSON request in the store, the check for an earlier restart
# must still see run A's restart (it once failed the whole query and A was
# restarted again every second).
check "the always-run was restarted exactly once" [ "$(grep -c "restarted run=$A " "$WORK/serve.log")" = 1 ]

echo "# serve log:"
sed 's/^/#   /' "$WORK/serve.log"
finish
