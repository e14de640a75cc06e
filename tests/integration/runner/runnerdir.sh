#!/bin/bash
# The runner directory chain of field report 000: a configured directory on
# a noexec mount or one the service user cannot write falls back to
# <state>/runtime/bot_runners, and the decision is logged as one line; when
# nothing allows exec, interpreter mode carries on and direct mode fails.
# doctor FAILs a noexec runner dir in direct mode and PASSes it in
# interpreter mode.
. "$(dirname "$0")/lib.sh"
need_root

S="$WORK/state"
printf 'print("runner")\n' >"$WORK/runner.py"
chmod 644 "$WORK/runner.py"

# Configured directory on a noexec mount.
mount_tmpfs "$WORK/noexec" size=1m,noexec,mode=0755
export RUNNER_DIR="$WORK/noexec/bot_runners"
run 0 --state "$S" runner-dir
check "noexec: falls back to the state dir" [ "$OUT" = "$S/runtime/bot_runners" ]
check "noexec: decision logged as one line" \
	[ "$ERR" = "runner: runner dir: using $S/runtime/bot_runners (configured $WORK/noexec/bot_runners is on a noexec mount)" ]
check "fallback created 0770" [ "$(stat -c %a "$S/runtime/bot_runners")" = 770 ]
run 0 --state "$S" runner-script 2 "$WORK/runner.py"
check "runner script written in the fallback" [ "$OUT" = "$S/runtime/bot_runners/bot_runner_2.py" ]
check "runner script mode 0640" [ "$(stat -c %a "$OUT")" = 640 ]
run 0 --state "$S" --json runner-dir
check "json says fallback" contains "$OUT" '"fallback": true'
unset RUNNER_DIR

# BOT_RUNNER_DIR (the report's name) not writable by the service user.
mkdir -p "$WORK/svc" "$WORK/rootonly"
chown 65534:65534 "$WORK/svc"
chmod 755 "$WORK/rootonly"
export BOT_RUNNER_DIR="$WORK/rootonly"
run_as_nobody 0 --state "$WORK/svc" runner-dir
check "unwritable: falls back" [ "$OUT" = "$WORK/svc/runtime/bot_runners" ]
check "unwritable: reason names path and errno" contains "$ERR" "configured $WORK/rootonly is unusable"
check "unwritable: errno text" contains "$ERR" "Permission denied"
unset BOT_RUNNER_DIR

# A read-only mount: also unusable, root or not.
mount_tmpfs "$WORK/ro" size=64k,ro
RUNNER_DIR="$WORK/ro" "$RUNNER" --state "$S" runner-dir >"$WORK/out" 2>"$WORK/err"
check "read-only: falls back" [ "$(cat "$WORK/out")" = "$S/runtime/bot_runners" ]
check "read-only: errno text" contains "$(cat "$WORK/err")" "Read-only file system"

# Everything on noexec: the state dir itself is on the noexec mount.
NS="$WORK/noexec/state"
export RUNNER_DIR="$WORK/noexec/bot_runners"
run 0 --state "$NS" runner-dir
check "all noexec, interpreter mode: configured dir kept" [ "$OUT" = "$WORK/noexec/bot_runners" ]
check "all noexec: hint in plain words" contains "$ERR" "interpreter mode is unaffected, direct mode cannot work here"
run 1 --state "$NS" --exec-mode direct runner-dir
check "all noexec, direct mode: fails" contains "$ERR" "no usable runner directory"

# doctor on a noexec runner dir: FAIL in direct mode, PASS in interpreter mode.
export RUNNER_CONTAINER=none
run 1 --state "$S" --exec-mode direct doctor
check "doctor direct: exec_mode FAIL" grep -q '^FAIL  exec_mode' "$WORK/out"
"$RUNNER" --state "$S" doctor >"$WORK/out" 2>"$WORK/err"
rc=$?
check "doctor interpreter: exec_mode PASS" grep -q '^PASS  exec_mode' "$WORK/out"
if grep -q '^FAIL' "$WORK/out"; then
	echo "# other checks fail on this machine:"; grep '^FAIL' "$WORK/out"
else
	check "doctor interpreter: exit 0" [ $rc = 0 ]
fi
unset RUNNER_CONTAINER RUNNER_DIR

finish
