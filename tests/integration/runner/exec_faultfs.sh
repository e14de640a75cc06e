#!/bin/bash
# The field report's regression on a faultfs mount refusing every exec of a
# staged script with EACCES (the noexec-tmp profile's rule, narrowed to the
# script files: the profile's "**" also refuses search permission on
# directories, which a real noexec mount allows, so chdir would fail
# first), reads allowed:
# `runner exec` in direct mode records an exec error - EACCES, the path,
# the mount and its options - not an exit status; interpreter mode on the
# same runner directory completes.  The mount looks exec-able in
# mountinfo, so the runner directory is chosen and the exec itself is what
# fails, exactly as in the field.  Needs root and /dev/fuse, else exit 77.
. "$(dirname "$0")/../faultfs/lib.sh"
[ -x "${RUNNER:-}" ] || { echo "RUNNER is not set (run through meson test)"; exit 2; }
ff_begin

S=$WORK/state
export RUNNER_PYTHON=$PY RUNNER_ROOT=$WORK/root
mkdir -p "$RUNNER_ROOT"
ff_mount "$WORK/back" "$WORK/m" --rule 'op=exec,path=**/script.py,error=EACCES'
export RUNNER_DIR=$WORK/m/bot_runners
printf '#!%s\nprint("ran")\n' "$PY" >"$WORK/d.py"
ff_run "$RUNNER" --state "$S" upload "$WORK/d.py"
ID=$RUN_OUT

ff_expect "direct: the run fails" rc=1 err="FAILED: exec $WORK/m/bot_runners/run-1-" -- \
	"$RUNNER" --state "$S" --exec-mode direct exec "$ID"
ff_expect "direct: EACCES at exec with the mount and its options" rc=0 \
	outhas="Permission denied (EACCES); $WORK/m/bot_runners/run-1-" -- \
	"$RUNNER" --state "$S" status 1 --json
ff_check "direct: the mount's type and options are named" 1 \
	"$(grep -c "mount $WORK/m (fuse.faultfs, rw,nosuid,nodev" <<<"$RUN_OUT")"
ff_check "direct: no exit code (an exec error, not a status)" 1 \
	"$(grep -c '"exit_code": null' <<<"$RUN_OUT")"
ff_expect "interpreter: the same script on the same mount completes" rc=0 out=2 -- \
	"$RUNNER" --state "$S" exec "$ID"
ff_expect "interpreter: its output was captured" rc=0 out=ran -- "$RUNNER" --state "$S" logs 2
ff_expect "no per-run dir left on the mount" rc=0 out='' -- ls -A "$WORK/m/bot_runners"
ff_end
