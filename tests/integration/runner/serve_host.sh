#!/bin/bash
# runner serve supervises the runs handed to it, in its own loop: an
# `exec --detach` while serve is live is taken by serve (its supervisor_pid
# is serve's), with its output, `logs --follow`, `wait`, timeout (TERM,
# grace, KILL of a tree with a setsid escapee), `cancel` and the
# concurrency cap in submission order all as with a supervisor of its own;
# an exec whose serve does not take the run in time (serve stopped)
# supervises it itself, and serve never starts it a second time; kill -9 of
# serve kills every hosted run's tree (its one watchdog does), and the next
# serve marks them LOST; SIGTERM leaves a run without a restart policy
# supervised to its end, a second SIGTERM cancels it; a
# run whose output pipes stay open after it ended (held by a process that
# left its domain) does not hold up serve's other runs while its teardown
# waits for them.  A run without a cgroup is not handed to serve: it gets a
# supervisor of its own, whose sweep still finds an orphan that left the
# tree and cleared its environment; so does a restart by a serve that
# cannot make cgroups.  No process of any run outlives the test.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"

need_root
command -v jq >/dev/null || skip "needs jq"
export RUNNER_CLEANUP_INTERVAL=1h RUNNER_KILL_GRACE=200ms RUNNER_ALLOWED_TYPES=.sh
S="$WORK/state"
r() { "$RUNNER" --state "$S" --exec-mode direct "$@"; }
field() { r status "$1" --json | jq -r ".$2 // empty"; }
start_serve() {
	: >"$WORK/serve.log"
	# A soft NOFILE limit below the hard one, as systemd gives: serve
	# raises its own, its scripts get this one back.
	(ulimit -Sn 512 && exec "$RUNNER" --state "$S" serve 2>>"$WORK/serve.log") &
	SERVE=$!
	# Taking handed-over runs once it holds the lock.
	wait_line "^runner serve: handoff-on lock=$S/serve.lock "
}
no_procs() {   # no process carries the marker of run $1
	! grep -lzq "FIELDRIG_RUN_MARK=$(field "$1" marker)" /proc/[0-9]*/environ 2>/dev/null
}
ESC=""
trap 'cancel_all; stop_serve; r recover >/dev/null 2>&1; [ -z "$ESC" ] || kill -9 "$ESC" 2>/dev/null; [ ! -f "$WORK/bot.pids" ] || kill -9 $(cat "$WORK/bot.pids") 2>/dev/null; cleanup' EXIT

printf '#!/bin/sh\necho up\nexec sleep 1000\n' >"$WORK/sleep.sh"
# (apart in time: what one wake-up of a supervisor reads from both pipes
# is stored stdout first)
printf '#!/bin/sh\necho a\nsleep 1\necho b >&2\nsleep 0.3\necho c\n' >"$WORK/abc.sh"
printf '#!/bin/sh\ntrap "" TERM\nsetsid sleep 1000 &\necho tree\nwhile :; do sleep 1; done\n' >"$WORK/stubborn.sh"
printf '#!/bin/sh\nsleep 1\n' >"$WORK/one.sh"
# Leaves a process that holds stdout and stderr: the test moves it out of
# the run's cgroup before the script goes on.
# It writes now and then, so the teardown waits for it however slowly the
# rest goes (valgrind), until the test kills it.
printf '#!/bin/sh\nsetsid sh -c "while :; do echo tick; sleep 0.5; done" &\necho $! >"$1.tmp"\nmv "$1.tmp" "$1"\nwhile [ ! -e "$1.moved" ]; do sleep 0.05; done\necho held\n' >"$WORK/hold.sh"
# Without a cgroup: an orphan in a new session with an empty environment
# (no marker), holding the pipes.
printf '#!/bin/sh\nenv -i setsid sleep 60 &\necho $! >"$1.tmp"\nmv "$1.tmp" "$1"\necho left\n' >"$WORK/leave.sh"
printf '#!/bin/sh\necho quick\n' >"$WORK/quick.sh"
printf '#!/bin/sh\nulimit -Sn\n' >"$WORK/nofile.sh"
SLEEP=$(r upload "$WORK/sleep.sh")
ABC=$(r upload "$WORK/abc.sh")
STUB=$(r upload "$WORK/stubborn.sh")
ONE=$(r upload "$WORK/one.sh")
HOLD=$(r upload "$WORK/hold.sh")
LEAVE=$(r upload "$WORK/leave.sh")
QUICK=$(r upload "$WORK/quick.sh")
NOFILE=$(r upload "$WORK/nofile.sh")

start_serve
check "serve started" wait_line "^runner serve: started pid=$SERVE "
WD=$(pgrep -P "$SERVE" -x runner-watchdog | head -1)
check "serve has one watchdog process" [ -n "$WD" ]

# --- handoff, logs --follow, wait -----------------------------------------
submit "$ABC"
A=$ID
check "the detached run is supervised by serve" [ "$(field "$A" supervisor_pid)" = "$SERVE" ]
check "serve says it took it" wait_line "^runner serve: supervising run=$A from=exec-detach$"
check "and started it" wait_line "^runner serve: started run=$A pid=[0-9]* domain="
run 0 --state "$S" logs "$A" --follow
check "logs --follow streams it to its end" [ "$OUT" = "$(printf 'a\nb\nc')" ]
run 0 --state "$S" wait "$A"
check "wait: COMPLETED" [ "$OUT" = COMPLETED ]
check "serve logged its end" wait_line "^runner serve: ended run=$A status=COMPLETED$"
check "exit code recorded" [ "$(field "$A" exit_code)" = 0 ]
check "its per-run directory is gone" [ ! -e "$(field "$A" workdir)" ]

# --- open files: serve raises its own soft limit, not its scripts' ---------
# (Not under valgrind: it keeps descriptors at the top of the limit for
# itself, so the limits its client sees and sets are shifted.)
if [ -z "${FIELDRIG_UNDER_VALGRIND:-}" ]; then
check "serve raised its soft NOFILE limit above 512" [ "$(awk '/^Max open files/ { print $4 }' "/proc/$SERVE/limits")" -gt 512 ]
RUNNER_MAX_FILES=0 submit "$NOFILE"
run 0 --state "$S" wait "$ID"
run 0 --state "$S" logs "$ID"
check "a script without RUNNER_MAX_FILES gets serve's original soft limit ($OUT)" [ "$OUT" = 512 ]
submit "$NOFILE"
run 0 --state "$S" wait "$ID"
run 0 --state "$S" logs "$ID"
check "and with it, RUNNER_MAX_FILES ($OUT)" [ "$OUT" = 1024 ]
fi

# --- timeout of a tree that ignores TERM, with a setsid escapee ------------
submit "$STUB" --timeout 1s
T=$ID
run 1 --state "$S" wait "$T"
check "timeout: TIMED_OUT" [ "$OUT" = TIMED_OUT ]
check "the error says timed out" contains "$(field "$T" error)" "timed out after 1000 ms"
check "no process of the timed-out tree left" no_procs "$T"
run 0 --state "$S" logs "$T"
check "the kill steps are in its log" contains "$OUT" "grace over: KILL to the whole tree"

# --- cancel, cgroup and not -------------------------------------------------
submit "$STUB"
C1=$ID
RUNNER_CGROUP=off submit "$STUB"
C2=$ID
check "the run without a cgroup has a supervisor of its own" [ "$(field "$C2" supervisor_pid)" != "$SERVE" ]
check "both RUNNING" until_ok sh -c "[ \"\$($RUNNER --state $S status $C1 --json | jq -r .status)\$($RUNNER --state $S status $C2 --json | jq -r .status)\" = RUNNINGRUNNING ]"
until_ok sh -c "$RUNNER --state $S logs $C2 | grep -q tree"
run 0 --state "$S" cancel "$C1"
check "cancel: CANCELLED" [ "$OUT" = CANCELLED ]
run 0 --state "$S" cancel "$C2"
check "cancel without a cgroup: CANCELLED" [ "$OUT" = CANCELLED ]
check "no process of the cancelled trees left" sh -c "! grep -lzqE 'FIELDRIG_RUN_MARK=($(field "$C1" marker)|$(field "$C2" marker))' /proc/[0-9]*/environ 2>/dev/null"
check "serve is alive" kill -0 "$SERVE"

# --- a run whose pipes stay open does not stall serve's other runs -------
submit "$HOLD" --arg "$WORK/esc.pid"
H=$ID
check "the holding run is serve's" [ "$(field "$H" supervisor_pid)" = "$SERVE" ]
check "its pipe holder started" until_ok test -s "$WORK/esc.pid"
ESC=$(cat "$WORK/esc.pid")
CG2=$(findmnt -n -t cgroup2 -o TARGET | head -1)
echo "$ESC" >"$CG2/cgroup.procs"
touch "$WORK/esc.pid.moved"
check "the holding run printed" until_ok sh -c "$RUNNER --state $S logs $H | grep -q held"
HPID=$(field "$H" pid)
check "its main process is gone" until_ok sh -c "! kill -0 $HPID 2>/dev/null"
check "its pipe holder, moved out of its cgroup, lives on" kill -0 "$ESC"
submit "$QUICK"
Q=$ID
check "serve took the next run at once" [ "$(field "$Q" supervisor_pid)" = "$SERVE" ]
check "exec did not fall back" [ -z "$(grep 'did not take it' <<<"$ERR")" ]
run 0 --state "$S" wait "$Q" --timeout 30s
check "and ran it to its end" [ "$OUT" = COMPLETED ]
check "while the holding run's teardown still waits" [ "$(field "$H" status)" = RUNNING ]
kill -9 "$ESC" 2>/dev/null
ESC=""
run 0 --state "$S" wait "$H" --timeout 30s
check "the holding run ends once its pipes close" [ "$OUT" = COMPLETED ]
check "with what its pipe holder wrote meanwhile" sh -c "$RUNNER --state $S logs $H | grep -q tick"

# --- without a cgroup: a supervisor of its own, and nothing escapes it ----
RUNNER_CGROUP=off submit "$LEAVE" --arg "$WORK/leave.pid"
L=$ID
LSUP=$(field "$L" supervisor_pid)
check "a run without a cgroup is not handed to serve" [ -n "$LSUP" -a "$LSUP" != "$SERVE" ]
check "its orphan started" until_ok test -s "$WORK/leave.pid"
ESC=$(cat "$WORK/leave.pid")
run 0 --state "$S" wait "$L" --timeout 20s
check "the run ends" [ "$OUT" = COMPLETED ]
check "its orphan, without marker or ancestry, is killed at its end" until_ok sh -c "! kill -0 $ESC 2>/dev/null"
kill -9 "$ESC" 2>/dev/null
ESC=""

# --- the concurrency cap, in submission order -------------------------------
Q=""
for i in 1 2 3 4 5; do
	MAX_CONCURRENT_SCRIPTS=2 submit "$ONE"
	Q="$Q $ID"
done
maxrun=0
for ((i = 0; i < 150; i++)); do
	n=$(r list --json | jq '[.runs[] | select(.status == "RUNNING")] | length')
	[ "$n" -gt "$maxrun" ] && maxrun=$n
	left=$(r list --json | jq '[.runs[] | select(.status == "RUNNING" or .status == "QUEUED")] | length')
	[ "$left" = 0 ] && break
	sleep 0.1
done
check "never more than 2 RUNNING (saw $maxrun)" [ "$maxrun" -le 2 ]
check "all 5 COMPLETED" [ "$(for q in $Q; do field "$q" status; done | sort -u)" = COMPLETED ]
starts=$(for q in $Q; do field "$q" started_at; done)
check "started in submission order" [ "$starts" = "$(sort <<<"$starts")" ]

# --- serve does not take it in time: the exec supervises it itself ---------
OLDS=$SERVE
kill -STOP "$SERVE"
t0=$(date +%s%N)
submit "$ABC"
F=$ID
t1=$(date +%s%N)
kill -CONT "$SERVE"
check "exec says serve did not take it" contains "$ERR" "run $F: runner serve did not take it within 2000 ms; it gets a supervisor of its own"
check "exec waited for serve about 2 s ($(((t1 - t0) / 1000000)) ms)" [ $(((t1 - t0) / 1000000)) -ge 1900 ]
SUPF=$(field "$F" supervisor_pid)
check "a supervisor of its own" [ -n "$SUPF" -a "$SUPF" != "$OLDS" ]
run 0 --state "$S" wait "$F"
sleep 1.2   # serve looks for handed-over runs every second
check "serve did not take it" sh -c "! grep -q 'supervising run=$F ' '$WORK/serve.log'"
run 0 --state "$S" logs "$F" --stream stdout
check "it ran once" [ "$OUT" = "$(printf 'a\nc')" ]

# --- kill -9 of serve: its watchdog kills every run; the next serve: LOST ---
submit "$STUB"
K1=$ID
submit "$STUB"
K2=$ID
submit "$SLEEP"
K3=$ID
until_ok sh -c "for k in $K1 $K2 $K3; do $RUNNER --state $S logs \$k | grep -qE 'tree|up' || exit 1; done"
check "three runs RUNNING under serve" [ "$(for k in $K1 $K2 $K3; do field "$k" supervisor_pid; done | sort -u)" = "$SERVE" ]
OLD=$SERVE
kill -9 "$SERVE"
wait "$SERVE" 2>/dev/null
SERVE=""
check "the watchdog killed every tree" until_ok sh -c "! grep -lzqE 'FIELDRIG_RUN_MARK=($(field "$K1" marker)|$(field "$K2" marker)|$(field "$K3" marker))' /proc/[0-9]*/environ 2>/dev/null"
check "and exited" until_ok sh -c "! kill -0 $WD 2>/dev/null"
check "their cgroups are gone" sh -c "c=\$($RUNNER --state $S status $K1 --json | jq -r .cgroup); [ ! -e \"\$c\" ]"
start_serve
for k in $K1 $K2 $K3; do
	check "the new serve marks run $k LOST" wait_line "^runner serve: lost run $k: LOST: lost while running; supervisor $OLD gone"
done

# --- SIGTERM: a plain run stays supervised; a second SIGTERM cancels it ----
WD2=$(pgrep -P "$SERVE" -x runner-watchdog | head -1)
submit "$SLEEP"
P=$ID
check "handed to the new serve" [ "$(field "$P" supervisor_pid)" = "$SERVE" ]
kill -TERM "$SERVE"
check "serve waits for its run" wait_line "^runner serve: stop-waiting runs=1 "
check "the run is still RUNNING" [ "$(field "$P" status)" = RUNNING ]
check "no run is handed over while stopping" sh -c "flock -n '$S/serve.lock' true"
kill -TERM "$SERVE"
wait "$SERVE"
rc=$?
SERVE=""
check "serve exits 0" [ "$rc" = 0 ]
check "the second SIGTERM cancelled it" [ "$(field "$P" status)" = CANCELLED ]
check "serve's watchdog is gone" until_ok sh -c "! kill -0 $WD2 2>/dev/null"

# --- serve without cgroups: no handoffs; its restarts get supervisors of
# their own, and an orphan without marker or ancestry dies with each --------
printf '#!/bin/sh\nenv -i setsid sleep 60 &\necho $! >>"$1"\nulimit -Sn\nexit 1\n' >"$WORK/botleave.sh"
BOTLEAVE=$(r upload "$WORK/botleave.sh")
: >"$WORK/serve.log"
(ulimit -Sn 512 && RUNNER_CGROUP=off RUNNER_MAX_FILES=0 exec "$RUNNER" --state "$S" serve 2>>"$WORK/serve.log") &
SERVE=$!
check "serve without cgroups takes no handoffs" wait_line "^runner serve: handoff-off reason=\"no run cgroup can be made (RUNNER_CGROUP=off)\""
RUNNER_CGROUP=off submit "$BOTLEAVE" --arg "$WORK/bot.pids" --restart on-failure --max-restarts 1
B1=$ID
check "its restart gets a supervisor of its own" wait_line "^runner serve: restarted run=$B1 as=[0-9]* .* supervisor=own$"
B2=$(grep -o "restarted run=$B1 as=[0-9]*" "$WORK/serve.log" | sed 's/.*as=//')
run 1 --state "$S" wait "$B2" --timeout 20s
check "the restarted run ends as its script does" [ "$OUT" = FAILED ]
check "its supervisor was not serve" [ "$(field "$B2" supervisor_pid)" != "$SERVE" ]
if [ -z "${FIELDRIG_UNDER_VALGRIND:-}" ]; then
	run 0 --state "$S" logs "$B2" --stream stdout
	OUT=$(grep -v '^\[runner\]' <<<"$OUT")
	check "it got serve's original soft NOFILE limit ($OUT)" [ "$OUT" = 512 ]
fi
check "each attempt left an orphan" [ "$(wc -l <"$WORK/bot.pids")" = 2 ]
check "both orphans were killed at their run's end" until_ok sh -c "for p in \$(cat '$WORK/bot.pids'); do kill -0 \$p 2>/dev/null && exit 1; done; exit 0"
stop_serve
run 0 --state "$S" recover
check "recover finds nothing more" [ "$OUT" = "nothing to recover" ]
if leftovers; then not_ok "no process of any run left"; else ok "no process of any run left"; fi
echo "# serve log:"
sed 's/^/#   /' "$WORK/serve.log"
finish
