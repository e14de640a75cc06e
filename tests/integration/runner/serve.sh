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
# Per-user runner scripts: serve writes bot_runner_<user>.py for each live
# bot run into the runner directory (never /tmp), mode 0640, group of the
# bot's user; a restart runs the runner script; cleanup removes a stale one
# and keeps a live one; SIGTERM removes what serve wrote.
RD="$S/runtime/bot_runners"
check "runner script of the always-run written" wait_line "^runner serve: runner-script wrote path=$RD/bot_runner_script-$BOT.py run=$B user=- mode=0640"
check "its mode is 0640, owner root" [ "$(stat -c '%a %U' "$RD/bot_runner_script-$BOT.py")" = "640 root" ]
check "its content is the bot's script" cmp -s "$WORK/bot.py" "$RD/bot_runner_script-$BOT.py"
run 0 --state "$S" exec "$BOT" --detach --restart always --user nobody
NB=$(head -1 <<<"$OUT")
NBMARK=$(field "$NB" marker)
check "runner script of the nobody bot written" wait_line "^runner serve: runner-script wrote path=$RD/bot_runner_nobody.py run=$NB user=nobody mode=0640"
check "owner root, group of nobody, mode 0640" [ "$(stat -c '%a %u:%g' "$RD/bot_runner_nobody.py")" = "640 0:$(id -g nobody)" ]
check "nothing written to /tmp" sh -c "! ls /tmp/bot_runner_* 2>/dev/null"
# A bot that fails after 2 s: its restart runs the runner script, which we
# mark to see it is the file executed.
printf 'import time, sys\nprint("bot2 up", flush=True)\ntime.sleep(2)\nsys.exit(4)\n' >"$WORK/bot2.py"
BOT2=$(r upload "$WORK/bot2.py")
run 0 --state "$S" exec "$BOT2" --detach --restart on-failure --max-restarts 1
R1=$(head -1 <<<"$OUT")
check "runner script of bot2 written" wait_line "^runner serve: runner-script wrote path=$RD/bot_runner_script-$BOT2.py run=$R1 "
sed -i '1i print("from the runner script", flush=True)' "$RD/bot_runner_script-$BOT2.py"
check "restart runs the runner script" wait_line "^runner serve: restarted run=$R1 as=[0-9]* policy=on-failure after=FAILED attempt=1/1 backoff_ms=1000 via=$RD/bot_runner_script-$BOT2.py"
R2=$(grep -o "restarted run=$R1 as=[0-9]*" "$WORK/serve.log" | sed 's/.*as=//')
run 1 --state "$S" wait "$R2"
run 0 --state "$S" logs "$R2"
check "the restarted run executed the runner script" grep -qx "from the runner script" <<<"$OUT"
# Stale versus live: both made two hours old; housekeeping (every 1 s here)
# removes the stale one only.
printf 'print(1)\n' >"$RD/bot_runner_stale.py"
touch -d '2 hours ago' "$RD/bot_runner_stale.py" "$RD/bot_runner_nobody.py"
kill -HUP "$SERVE"
check "stale runner script cleaned" wait_line "^runner serve: cleaned path=$RD/bot_runner_stale.py$"
check "stale runner script gone" [ ! -e "$RD/bot_runner_stale.py" ]
check "a live run's runner script kept by serve's cleanup" [ -e "$RD/bot_runner_nobody.py" ]
run 0 --state "$S" cleanup --older-than 0
check "and by runner cleanup --older-than 0" [ -e "$RD/bot_runner_nobody.py" ]
check "no cleaned line for the live one" sh -c "! grep -q 'cleaned path=$RD/bot_runner_nobody.py' '$WORK/serve.log'"
kill -TERM "$SERVE"
wait "$SERVE"
rc=$?
check "serve exits 0 on SIGTERM" [ "$rc" = 0 ]
check "serve cancelled the live always-run" grep -q "^runner serve: stop-cancelled run=$B status=CANCELLED" "$WORK/serve.log"
check "serve said it stopped" grep -qx "runner serve: stopped" "$WORK/serve.log"
check "no restart beyond --max-restarts" [ "$(grep -c "restarted run=$F3 " "$WORK/serve.log")" = 0 ]
check "serve removed its runner scripts" grep -q "^runner serve: runner-script removed path=$RD/bot_runner_nobody.py$" "$WORK/serve.log"
check "no runner script left" sh -c "! ls '$RD'/bot_runner_* 2>/dev/null"
check "serve cancelled the nobody bot" grep -q "^runner serve: stop-cancelled run=$NB status=CANCELLED" "$WORK/serve.log"
check "no process of the nobody bot left" sh -c "! grep -lzq 'FIELDRIG_RUN_MARK=$NBMARK' /proc/[0-9]*/environ 2>/dev/null"
check "no process of the bot left" sh -c "! grep -lzq 'FIELDRIG_RUN_MARK=$MARK' /proc/[0-9]*/environ 2>/dev/null"
echo "# serve log:"
sed 's/^/#   /' "$WORK/serve.log"
finish
