#!/bin/bash
# runner exec at its edges: a language with no interpreter; a runner
# started with an empty environment (the script still gets a PATH); --env
# overriding an inherited variable; the supervisor itself getting SIGTERM
# (running and queued); a queued run cancelled, or given a verdict by
# someone else; the stored script gone before staging; a state directory on
# a full disk; a log file cut short.
. "$(dirname "$0")/lib.sh"

need_root
PY=/usr/bin/python3
[ -x "$PY" ] || skip "needs $PY"
export RUNNER_PYTHON=$PY RUNNER_KILL_GRACE=200ms
S="$WORK/state"
r() { "$RUNNER" --state "$S" "$@"; }
field() { r status "$1" --json | "$PY" -c "import json,sys; v=json.load(sys.stdin)['$2']; print('' if v is None else v)"; }
wait_status() {	# RUN STATUS: until the run has STATUS, 20 s at most
	for _ in $(seq 200); do
		[ "$(field "$1" status)" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# --- a language nothing runs ------------------------------------------------
printf 'puts "hi"\n' >"$WORK/x.rb"
RB=$(RUNNER_ALLOWED_TYPES=.py,.rb r upload "$WORK/x.rb")
run 2 --state "$S" exec "$RB"
check "no interpreter for .rb: refused, naming the script and language" \
	grep -q "^runner: exec: script $RB: no interpreter for language 'rb'\$" "$WORK/err"

# --- environment --------------------------------------------------------------
printf 'import os\nprint(os.environ.get("PATH"))\nprint(os.environ.get("HOME"))\n' >"$WORK/env.py"
ENVID=$(r upload "$WORK/env.py")
env -i RUNNER_PYTHON=$PY "$RUNNER" --state "$S" exec "$ENVID" >"$WORK/out" 2>"$WORK/err"
check "empty environment: exit 0" [ $? = 0 ]
E1=$(head -1 "$WORK/out")
run 0 --state "$S" logs "$E1"
check "the script still gets the default PATH, and no HOME" \
	[ "$OUT" = "$(printf '/usr/local/bin:/usr/bin:/bin\nNone')" ]
run 0 --state "$S" exec "$ENVID" --env HOME=/nowhere/special
E2=$(head -1 <<<"$OUT")
run 0 --state "$S" logs "$E2"
check "--env replaces an inherited variable" [ "$(sed -n 2p <<<"$OUT")" = "/nowhere/special" ]

# --- the supervisor gets SIGTERM ------------------------------------------------
printf 'import time\nprint("up", flush=True)\ntime.sleep(60)\n' >"$WORK/sleep.py"
SL=$(r upload "$WORK/sleep.py")
run 0 --state "$S" exec "$SL" --detach
R1=$(head -1 <<<"$OUT")
check "running" wait_status "$R1" RUNNING
kill -TERM "$(field "$R1" supervisor_pid)"
check "SIGTERM to the supervisor cancels the run" wait_status "$R1" CANCELLED
check "and the error says who asked" sh -c "r() { \"$RUNNER\" --state \"$S\" \"\$@\"; }; r status $R1 | grep -q 'supervisor got SIGTERM'"

# --- queued runs ------------------------------------------------------------
export MAX_CONCURRENT_SCRIPTS=1
run 0 --state "$S" exec "$SL" --detach
HOLD=$(head -1 <<<"$OUT")
check "the slot holder runs" wait_status "$HOLD" RUNNING
run 0 --state "$S" exec "$SL" --detach
Q1=$(head -1 <<<"$OUT")
run 0 --state "$S" exec "$SL" --detach
Q2=$(head -1 <<<"$OUT")
check "a second run queues" wait_status "$Q1" QUEUED
kill -INT "$(field "$Q1" supervisor_pid)"
check "SIGINT to a queued run's supervisor cancels it" wait_status "$Q1" CANCELLED
check "its error names SIGINT" sh -c "\"$RUNNER\" --state \"$S\" status $Q1 | grep -q 'supervisor got SIGINT'"
run 0 --state "$S" cancel "$Q2"
check "a cancelled queued run never started" [ -z "$(field "$Q2" started_at)" ] || [ "$(field "$Q2" started_at)" = 0 ]
check "and is CANCELLED" wait_status "$Q2" CANCELLED
run 0 --state "$S" cancel "$HOLD"
unset MAX_CONCURRENT_SCRIPTS

# --- the stored script is gone ------------------------------------------------
GONE=$(r upload "$WORK/env.py")
rm "$S/scripts/$GONE.py"
run 1 --state "$S" exec "$GONE"
check "staging names the missing stored script, not the staged copy" \
	grep -q "FAILED: stage script $S/scripts/$GONE.py: No such file or directory" "$WORK/err"

# --- someone else records the verdict of a queued run -------------------------
command -v sqlite3 >/dev/null && {
	export MAX_CONCURRENT_SCRIPTS=1
	run 0 --state "$S" exec "$SL" --detach
	HOLD=$(head -1 <<<"$OUT")
	check "the slot holder runs again" wait_status "$HOLD" RUNNING
	run 0 --state "$S" exec "$SL" --detach
	Q3=$(head -1 <<<"$OUT")
	check "queued" wait_status "$Q3" QUEUED
	SUP=$(field "$Q3" supervisor_pid)
	sqlite3 -cmd '.timeout 5000' "$S/runner.db" \
		"UPDATE runs SET status = 'FAILED', error = 'set by an admin', ended_at = 1 WHERE id = $Q3"
	for _ in $(seq 100); do kill -0 "$SUP" 2>/dev/null || break; sleep 0.1; done
	check "the queued run's supervisor leaves" sh -c "! kill -0 $SUP 2>/dev/null"
	check "and the verdict stays the one recorded" [ "$(field "$Q3" error)" = "set by an admin" ]
	run 0 --state "$S" cancel "$HOLD"
	unset MAX_CONCURRENT_SCRIPTS
}

# --- a state directory on a full disk ---------------------------------------------
# The run completes; the output that did not fit is reported in its error
# and by a marker at the end of the log; status and logs still open the
# store to read it.  The output comes in one write, far more than the disk
# holds: what fits of it must still be kept, as whole lines, leaving the
# last LOG_DISK_RESERVE (1 MiB) of the file system to the store, where the
# index rows and the verdict still fit, and later runs' verdicts too.
mount_tmpfs "$WORK/tiny" size=2m
T="$WORK/tiny/state"
printf 'import sys\nsys.stdout.write(("x" * 100 + "\\n") * 40000)\n' >"$WORK/big.py"
BIG=$("$RUNNER" --state "$T" upload "$WORK/big.py")
run 0 --state "$T" exec "$BIG"
B=$(head -1 <<<"$OUT")
run 0 --state "$T" status "$B"
check "on a full disk the run still completes" grep -q "^status: COMPLETED" "$WORK/out"
check "with the lost output in its error" grep -q "^error: log capture failed: No space left on device" "$WORK/out"
run 0 --state "$T" logs "$B"
check "what fitted can be read" [ "$(head -1 "$WORK/out")" = "$(printf 'x%.0s' $(seq 100))" ]
check "and it is whole lines, most of what the disk could hold" \
	sh -c "[ \$(sed '\$d' '$WORK/out' | awk 'length(\$0) != 100' | wc -l) = 0 ] && [ \$(wc -l <'$WORK/out') -gt 5000 ]"
check "then a marker saying why the rest is missing" \
	sh -c "tail -1 '$WORK/out' | grep -q '^\\[runner: log capture stopped: $T/logs/run-$B.stdout: less than 1024 KiB left'"
run 0 --state "$T" exec "$BIG"
B2=$(head -1 <<<"$OUT")
run 0 --state "$T" status "$B2"
check "a later run on the same full disk still gets its verdict" \
	sh -c "grep -q '^status: COMPLETED' '$WORK/out' && grep -q '^error: log capture failed: No space left on device' '$WORK/out'"

# --- a log file cut short --------------------------------------------------------
# As a power cut may leave it (rows committed, the file's last bytes not on
# disk): logs prints what there is, then names the file and the bytes
# missing, and exits 1; a file gone is named too.
printf 'print("line one")\nprint("line two")\n' >"$WORK/two.py"
TWO=$(r upload "$WORK/two.py")
run 0 --state "$S" exec "$TWO"
C=$(head -1 <<<"$OUT")
truncate -s 12 "$S/logs/run-$C.stdout"
run 1 --state "$S" logs "$C"
check "a file cut short: what is there is printed" [ "$OUT" = "$(printf 'line one\nlin')" ]
check "and the file and the missing bytes are named" \
	contains "$ERR" "$S/logs/run-$C.stdout: read log of run $C: the file ends at byte 12, its rows go to byte 18"
rm "$S/logs/run-$C.stdout"
run 1 --state "$S" logs "$C"
check "a file gone is named" contains "$ERR" "$S/logs/run-$C.stdout: read log of run $C: No such file or directory"

# --- a relative --state with --detach ------------------------------------------
# The detached supervisor changes to /: the state directory must not depend
# on the submitter's working directory.
mkdir -p "$WORK/rel"
printf 'print("relative")\n' >"$WORK/rel/a.py"
REL=$(cd "$WORK/rel" && "$RUNNER" --state st upload a.py)
RR=$(cd "$WORK/rel" && "$RUNNER" --state st exec "$REL" --detach | head -1)
check "relative --state, detached: the run completes" \
	sh -c "cd '$WORK/rel' && '$RUNNER' --state st wait '$RR' --timeout 20s | grep -qx COMPLETED"
check "and its output is in the store under the relative path" \
	sh -c "cd '$WORK/rel' && '$RUNNER' --state st logs '$RR' | grep -qx relative"

finish
