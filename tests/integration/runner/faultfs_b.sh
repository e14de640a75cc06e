#!/bin/bash
# Section B on faultfs mounts, through the runner's command line:
# - doctor in direct mode catches a per-path exec refusal that mountinfo
#   cannot show (faultfs `op=exec` rule), by really executing a probe script
#   in the runner dir; interpreter mode passes on the same dir;
# - `runner venv recreate` succeeds when rmdir and rename of the venv dir
#   give EBUSY (faultfs `op=rmdir|rename` rule, the field report's Docker
#   volume), by emptying the directory in place and building there.
# Uses the faultfs test library (mounts, traps, repro.sh); needs root and
# /dev/fuse, else exit 77.
. "$(dirname "$0")/../faultfs/lib.sh"
[ -x "${RUNNER:-}" ] || { echo "RUNNER is not set (run through meson test)"; exit 2; }
ff_begin

# An empty crafted root: this machine's own /.dockerenv must not count.
ROOT=$WORK/root
mkdir -p "$ROOT"
S=$WORK/state
export RUNNER_PYTHON=$PY

ff_mount "$WORK/back-x" "$WORK/x" --rule 'op=exec,path=bot_runners/**,error=EACCES'
mkdir -p "$WORK/x/bot_runners"
ff_expect "doctor direct: FAIL on a per-path exec refusal" rc=1 outhas="FAIL  exec_mode: exec $WORK/x/bot_runners/.doctor-exec-probe-" -- \
	env RUNNER_DIR="$WORK/x/bot_runners" "$RUNNER" --state "$S" --root "$ROOT" --exec-mode direct doctor
ff_check "doctor direct: the reason names the errno and the cause" 1 \
	"$(grep -c '^FAIL  exec_mode: .*Permission denied (EACCES).*exec refused although .* direct mode cannot work here' <<<"$RUN_OUT")"
ff_expect "doctor interpreter: exec_mode PASS on the same dir" rc=0 outhas="PASS  exec_mode: interpreter mode" -- \
	env RUNNER_DIR="$WORK/x/bot_runners" "$RUNNER" --state "$S" --root "$ROOT" doctor
ff_expect "doctor left no probe behind" rc=0 out='' -- ls -A "$WORK/x/bot_runners"

ff_mount "$WORK/back-v" "$WORK/v" --rule 'op=rmdir|rename,path=**/venv,error=EBUSY'
V=$WORK/v/venv
ff_expect "venv ensure builds a venv on the mount" rc=0 outhas="action: created" -- \
	"$RUNNER" --state "$S" --root "$ROOT" venv ensure --dir "$V"
ff_expect "premise: rename of the venv dir gives EBUSY" rc=1 err='Device or resource busy' -- mv "$V" "$V.x"
ff_expect "venv recreate succeeds in place" rc=0 outhas="action: recreated in place: $V cannot be moved (Device or resource busy)" -- \
	"$RUNNER" --state "$S" --root "$ROOT" venv recreate --dir "$V"
ff_check "venv recreate: no 'Resource busy' error" "" "$RUN_ERR"
ff_expect "venv status: healthy with pip" rc=0 outhas='"pip_present": true' -- \
	"$RUNNER" --state "$S" --root "$ROOT" venv status --dir "$V" --json
ff_check "venv status: healthy" 1 "$(grep -c '"healthy": true' <<<"$RUN_OUT")"
ff_expect "nothing left beside the venv" rc=0 out=venv -- ls -A "$WORK/v"
ff_expect "the venv's python runs" rc=0 out="$V" -- "$V/bin/python" -c 'import sys; print(sys.prefix)'
ff_end
