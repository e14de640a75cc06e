#!/bin/bash
# A serve that could make run cgroups when it started (its probe did) but
# cannot any more when a run comes (a cgroup limit reached meanwhile) does
# not host that run without one: it starts a supervisor of its own for it
# (runner supervise-run), as exec gives a run without a cgroup, so an
# orphan that left the tree and cleared its environment (no marker, no
# ancestry) is still killed at the run's end.  The same for serve's
# restarts of a bot.  serve runs in a cgroup of the test's own, in its own
# cgroup namespace with its own cgroup2 mount, so the limit
# (cgroup.max.descendants) binds serve and its children and nothing else on
# the machine.  No process of any run outlives the test.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"

need_root
command -v jq >/dev/null || skip "needs jq"
command -v unshare >/dev/null || skip "needs unshare (util-linux)"
CG2=$(findmnt -n -t cgroup2 -o TARGET | head -1)
[ -n "$CG2" ] || skip "no cgroup2 mount"
TCG="$CG2/fieldrig-it-$$"
mkdir "$TCG" || skip "cannot make a cgroup under $CG2"
export RUNNER_CLEANUP_INTERVAL=1h RUNNER_KILL_GRACE=200ms RUNNER_ALLOWED_TYPES=.sh
S="$WORK/state"
r() { "$RUNNER" --state "$S" --exec-mode direct "$@"; }
field() { r status "$1" --json | jq -r ".$2 // empty"; }
# The test's cgroup goes once everything in it is gone.
drop_cgroup() {
	local p
	for p in $(cat "$TCG/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	until_ok sh -c "[ -z \"\$(cat '$TCG/cgroup.procs' 2>/dev/null)\" ]"
	[ -d "$TCG/fieldrig" ] && find "$TCG/fieldrig" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
	rmdir "$TCG/fieldrig" "$TCG" 2>/dev/null
}
trap 'cancel_all; stop_serve; r recover >/dev/null 2>&1; for f in "$WORK"/*.pids; do [ -f "$f" ] && kill -9 $(cat "$f") 2>/dev/null; done; drop_cgroup; cleanup' EXIT
all_dead() {   # every pid in file $1 is gone
	local p
	for p in $(cat "$1"); do kill -0 "$p" 2>/dev/null && return 1; done
	return 0
}

# An orphan in a new session with an empty environment, then the run ends.
printf '#!/bin/sh\nenv -i setsid sleep 60 &\necho $! >>"$1"\necho left\n' >"$WORK/leave.sh"
printf '#!/bin/sh\nenv -i setsid sleep 60 &\necho $! >>"$1"\nexit 1\n' >"$WORK/botleave.sh"
printf '#!/bin/sh\necho quick\n' >"$WORK/quick.sh"
printf '#!/bin/sh\nenv\n' >"$WORK/env.sh"
LEAVE=$(r upload "$WORK/leave.sh")
BOTLEAVE=$(r upload "$WORK/botleave.sh")
QUICK=$(r upload "$WORK/quick.sh")
ENVS=$(r upload "$WORK/env.sh")

: >"$WORK/serve.log"
# serve in the test's cgroup, which is the root of its cgroup namespace and
# of the cgroup2 mount it sees (unshare without --fork: same pid).
(echo "$BASHPID" >"$TCG/cgroup.procs" &&
	exec unshare --cgroup --mount --propagation private sh -c \
		'umount -l "$1" && mount -t cgroup2 cgroup2 "$1" && exec "$2" --state "$3" serve' \
		sh "$CG2" "$RUNNER" "$S" 2>>"$WORK/serve.log") &
SERVE=$!
check "serve takes handoffs (its probe made a cgroup)" wait_line "^runner serve: handoff-on lock=$S/serve.lock "
check "serve is in the test's cgroup" grep -qx "$SERVE" "$TCG/cgroup.procs"
submit "$QUICK"
check "while cgroups can be made, serve hosts a run" [ "$(field "$ID" supervisor_pid)" = "$SERVE" ]
run 0 --state "$S" wait "$ID" --timeout 20s
check "in a cgroup of its own namespace" contains "$(field "$ID" cgroup)" "$CG2/fieldrig/run-"

# No more cgroups below the test's: the limit is what it holds now.
n=$(awk '$1 == "nr_descendants" { print $2 }' "$TCG/cgroup.stat")
echo "$n" >"$TCG/cgroup.max.descendants"
check "the limit binds (mkdir refused)" sh -c "! mkdir '$TCG/fieldrig/probe' 2>/dev/null"

# --- a handed-over run: a supervisor of its own --------------------------
submit "$LEAVE" --arg "$WORK/leave.pids"
L=$ID
check "serve hands it on" wait_line "^runner serve: handed run=$L from=exec-detach supervisor=own reason=\"no cgroup: "
LSUP=$(field "$L" supervisor_pid)
check "its supervisor is not serve ($LSUP)" [ -n "$LSUP" -a "$LSUP" != "$SERVE" ]
check "exec did not wait for serve's 2 s" [ -z "$(grep 'did not take it' <<<"$ERR")" ]
run 0 --state "$S" wait "$L" --timeout 20s
check "the run completes" [ "$OUT" = COMPLETED ]
check "without a cgroup" [ -z "$(field "$L" cgroup)" ]
run 0 --state "$S" logs "$L"
check "its log says why" contains "$OUT" "no cgroup ("
check "its orphan, without marker or ancestry, is killed at its end" until_ok all_dead "$WORK/leave.pids"

submit "$ENVS"
run 0 --state "$S" wait "$ID" --timeout 20s
run 0 --state "$S" logs "$ID" --stream stdout
env_clean() { ! grep -q FIELDRIG_HAND_ON <<<"$1" && grep -q '^PATH=' <<<"$1"; }
check "the hand-over's note to its supervisor is not in the script's environment" env_clean "$OUT"

# --- a restart of a bot: the same ------------------------------------------
submit "$BOTLEAVE" --arg "$WORK/bot.pids" --restart on-failure --max-restarts 1
B1=$ID
check "the bot is handed on" wait_line "^runner serve: handed run=$B1 from=exec-detach supervisor=own "
check "its restart gets a supervisor of its own" wait_line "^runner serve: restarted run=$B1 as=[0-9]* .* supervisor=own$"
B2=$(grep -o "restarted run=$B1 as=[0-9]*" "$WORK/serve.log" | sed 's/.*as=//')
MARKS="$MARKS $(field "$B2" marker)"
run 1 --state "$S" wait "$B2" --timeout 20s
check "the restarted run ends as its script does" [ "$OUT" = FAILED ]
check "its supervisor was not serve" [ "$(field "$B2" supervisor_pid)" != "$SERVE" ]
check "each attempt left an orphan" [ "$(wc -l <"$WORK/bot.pids")" = 2 ]
check "both orphans were killed at their run's end" until_ok all_dead "$WORK/bot.pids"

stop_serve
run 0 --state "$S" recover
check "recover finds nothing more" [ "$OUT" = "nothing to recover" ]
check "no run cgroup left" [ -z "$(find "$TCG/fieldrig" -mindepth 1 -type d 2>/dev/null)" ]
if leftovers; then not_ok "no process of any run left"; else ok "no process of any run left"; fi
echo "# serve log:"
sed 's/^/#   /' "$WORK/serve.log"
finish
