#!/bin/bash
# The command-line contract on its error paths: every command's usage
# errors (unknown flag, missing value, bad duration or id, wrong argument
# count), a job store that cannot be opened (state dir is a file), files
# that cannot be read, a Python that cannot build a venv, and the --json
# and text forms of the commands that report a run.
. "$(dirname "$0")/lib.sh"

S="$WORK/state"
printf 'print("hi")\n' >"$WORK/hello.py"

# --- global options -------------------------------------------------------
run 2 -x config
check "short unknown option" [ "$ERR" = "runner: unknown option '-x' (see runner --help)" ]
run 2 --state "$S"
check "no command" contains "$ERR" "no command given (see runner --help)"
run 2 --state "$S" --env-file
check "--env-file without value" contains "$ERR" "option '--env-file' needs a value"
run 2 --state "$S" --exec-mode bogus config
check "bad exec mode names the flag" contains "$ERR" "RUNNER_EXEC_MODE: invalid value 'bogus' (flag --exec-mode): expected interpreter or direct"
run 0 --state "$S" config --help
check "command --help prints usage" contains "$OUT" "usage: runner"
run 0 --state "$S" status --help
check "run command --help prints usage" contains "$OUT" "usage: runner"

# --- per-command usage ----------------------------------------------------
for cmd in config scripts detect doctor runner-dir; do
	run 2 --state "$S" "$cmd" extra
	check "$cmd takes no arguments" contains "$ERR" "$cmd: expected no arguments (see runner --help)"
done
run 2 --state "$S" config --dir x
check "--dir only for venv" contains "$ERR" "unknown option '--dir' for config"
run 2 --state "$S" config --root x
check "--root only for detect" contains "$ERR" "unknown option '--root' for config"
run 2 --state "$S" which
check "which needs a language" contains "$ERR" "which: expected one of python, node, ts"
run 2 --state "$S" which perl
check "which: unknown language" contains "$ERR" "which: unknown language 'perl' (python, node or ts)"
run 0 --state "$S" --json which python
check "which --json names the setting" contains "$OUT" '"setting": "RUNNER_PYTHON"'
run 2 --state "$S" venv
check "venv needs an action" contains "$ERR" "venv: expected ensure, recreate or status"
run 2 --state "$S" venv frob
check "venv: unknown action" contains "$ERR" "venv: unknown action 'frob' (ensure, recreate or status)"
run 2 --state "$S" runner-script bob
check "runner-script needs USER FILE" contains "$ERR" "runner-script: expected USER FILE"
run 2 --state "$S" runner-script bob "$WORK/missing.py"
check "runner-script: missing file" contains "$ERR" "runner-script: $WORK/missing.py: No such file or directory"
run 2 --state "$S" runner-script bob "$WORK"
check "runner-script: a directory is said to be one" contains "$ERR" "runner-script: $WORK: Is a directory"
truncate -s 40M "$WORK/big.py"
run 2 --state "$S" runner-script bob "$WORK/big.py"
check "runner-script: over 16 MiB" contains "$ERR" "runner-script: $WORK/big.py: File too large"
rm -f "$WORK/big.py"
run 0 --state "$S" --json runner-script bob "$WORK/hello.py"
check "runner-script --json path" contains "$OUT" "\"path\": \"$S/runtime/bot_runners/bot_runner_bob.py\""

run 2 --state "$S" exec
check "exec needs an id" contains "$ERR" "exec: expected one SCRIPT_ID"
run 2 --state "$S" exec 1 --timeout
check "--timeout without value" contains "$ERR" "option '--timeout' needs a value"
run 2 --state "$S" exec 1 --restart sometimes
check "bad --restart" contains "$ERR" "exec --restart: 'sometimes': expected no, on-failure or always"
run 2 --state "$S" exec 1 --max-restarts x
check "bad --max-restarts" contains "$ERR" "exec --max-restarts: 'x': expected a whole number up to 1000"
run 2 --state "$S" exec 1 --follow
check "--follow only for logs" contains "$ERR" "unknown option '--follow' for exec"
run 2 --state "$S" exec 1 --bogus
check "unknown long option for exec" contains "$ERR" "unknown option '--bogus' for exec"
args=()
for i in $(seq 1 300); do args+=(--arg "a$i"); done
run 2 --state "$S" exec 1 "${args[@]}"
check "too many --arg" contains "$ERR" "exec: more than"
envs=()
for i in $(seq 1 300); do envs+=(--env "K$i=v"); done
run 2 --state "$S" exec 1 "${envs[@]}"
check "too many --env" contains "$ERR" "exec: more than"
run 2 --state "$S" logs 1 --stream both
check "bad --stream" contains "$ERR" "logs --stream: 'both': expected stdout or stderr"
run 2 --state "$S" wait 1 --timeout 0
check "zero wait timeout" contains "$ERR" "wait --timeout: invalid duration '0'"
run 2 --state "$S" cleanup --older-than x
check "bad --older-than" contains "$ERR" "cleanup --older-than: invalid duration 'x'"
for cmd in status logs wait cancel; do
	run 2 --state "$S" "$cmd"
	check "$cmd needs a run id" contains "$ERR" "$cmd: expected one RUN id"
	run 2 --state "$S" "$cmd" abc
	check "$cmd: id not a number" contains "$ERR" "$cmd: invalid run id 'abc': expected the number exec printed"
	run 2 --state "$S" "$cmd" 99
	check "$cmd: no such run" contains "$ERR" "$cmd: no run with id 99"
done
run 2 --state "$S" exec 1
check "exec: no such script" contains "$ERR" "exec: no script with id '1' (see runner scripts)"

# --- a job store that cannot be opened ------------------------------------
: >"$WORK/notadir"
for cmd in scripts list recover cleanup "status 1" "logs 1" "wait 1" "cancel 1" "exec 1" "upload $WORK/hello.py"; do
	# shellcheck disable=SC2086
	run 1 --state "$WORK/notadir" $cmd
	check "$cmd: store error names the file" contains "$ERR" "$WORK/notadir/runner.db: open:"
done
run 1 --state "$WORK/notadir" serve
check "serve: store error" contains "$ERR" "serve: $WORK/notadir/runner.db: open:"

# --- a Python that cannot build a venv ------------------------------------
cat >"$WORK/py" <<'PY'
#!/bin/sh
if [ "$1 $2" = "-m venv" ]; then echo "Error: ensurepip is not available" >&2; exit 1; fi
case "$1" in --version|-V) echo "Python 3.11.0";; esac
exit 0
PY
chmod 755 "$WORK/py"
RUNNER_PYTHON="$WORK/py" run 1 --state "$S" venv ensure
check "venv ensure names dir and cause" contains "$ERR" "venv ensure: cannot build venv in $S/venv: $WORK/py exited 1: Error: ensurepip is not available"
RUNNER_PYTHON="$WORK/py" run 1 --state "$S" --json venv recreate --dir "$WORK/vv"
check "venv recreate --json reason" contains "$OUT" "\"reason\": \"cannot build venv in $WORK/vv:"
check "nothing left of the failed venv" [ ! -e "$WORK/vv" ]
RUNNER_PYTHON="$WORK/nonexistent" run 2 --state "$S" venv ensure
check "unusable RUNNER_PYTHON is a usage error" contains "$ERR" "venv ensure: RUNNER_PYTHON (env RUNNER_PYTHON) is unusable: $WORK/nonexistent: No such file or directory"
run 1 --state "$S" venv status --dir "$WORK/vv"
check "venv status of a missing venv" contains "$OUT" "reason: missing: $WORK/vv does not exist"

# --- reporting a run in text and JSON -------------------------------------
run 0 --state "$S" --json upload "$WORK/hello.py"
ID=$(printf '%s' "$OUT" | sed -n 's/.*"id": "\(.*\)".*/\1/p')
check "upload --json prints the id" [ -n "$ID" ]
run 0 --state "$S" --json scripts
check "scripts --json lists it" contains "$OUT" "\"id\": \"$ID\""
run 0 --state "$S" exec "$ID" --timeout 30s
check "exec prints the run id" [ "$OUT" = 1 ]
run 0 --state "$S" status 1
check "status text" contains "$OUT" "status: COMPLETED"
check "status text booleans" contains "$OUT" "cancel_requested: no"
run 0 --state "$S" --json wait 1
check "wait --json" contains "$OUT" '"status": "COMPLETED"'
run 1 --state "$S" cancel 1
check "cancel of an ended run" contains "$ERR" "cancel: run 1 had already ended: COMPLETED"
run 1 --state "$S" --json cancel 1
check "cancel --json still reports the run" contains "$OUT" '"status": "COMPLETED"'
run 0 --state "$S" exec "$ID" --detach --json
check "exec --detach --json" [ "$OUT" = '{"id": 2}' ]
run 0 --state "$S" wait 2 --timeout 30s
run 0 --state "$S" --json list
check "list --json" contains "$OUT" '"id": 2'
run 0 --state "$S" --json recover
check "recover --json" contains "$OUT" '"lost": 0'
run 0 --state "$S" cleanup --older-than 0 --json
check "cleanup --json removes both run dirs" contains "$OUT" "run-2-"

finish
