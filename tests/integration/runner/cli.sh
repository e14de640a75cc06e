#!/bin/bash
# The command-line contract: exit codes, one-line errors, settings with their
# sources, upload printing only the id, concurrent uploads into one store.
. "$(dirname "$0")/lib.sh"

S="$WORK/state"

run 0 --version
check "version line" contains "$OUT" "runner "
run 0 --help
check "help lists doctor" contains "$OUT" "doctor"
run 2 --bogus
check "unknown option line" [ "$ERR" = "runner: unknown option '--bogus' (see runner --help)" ]
run 2 --state "$S" upload
check "missing argument names the command" contains "$ERR" "upload: expected one FILE"
run 2 --state "$S" frobnicate
check "unknown command" contains "$ERR" "unknown command 'frobnicate'"
run 2 --state "$S" scripts --name x
check "option not taken by command" contains "$ERR" "unknown option '--name' for scripts"
run 2 --state
check "option without value" contains "$ERR" "option '--state' needs a value"

# Settings: the field report's .env, with MAX_EXECUTION_TIME on line 4.
cat >"$WORK/.env" <<'ENV'
# Script Execution Settings
MAX_SCRIPT_SIZE=10485760       # 10MB
REDIS_URL=redis://localhost:6379/0
MAX_EXECUTION_TIME=3600        # 1 hour
export BOT_RUNNER_DIR="/srv/blitz-test-server/runtime/bot_runners"
BLITZ_PYTHON=/usr/bin/python3
ENV
(cd "$WORK" && "$RUNNER" --state "$S" --env-file .env config) >"$WORK/cfg" 2>&1
check "config exit 0" [ $? = 0 ]
CFG=$(cat "$WORK/cfg")
check "config: duration from env-file line 4" contains "$CFG" "MAX_EXECUTION_TIME=3600s (env-file .env:4)"
check "config: size from env-file" contains "$CFG" "MAX_SCRIPT_SIZE=10MiB (env-file .env:2)"
check "config: alias BOT_RUNNER_DIR" contains "$CFG" "RUNNER_DIR=/srv/blitz-test-server/runtime/bot_runners (env-file .env:5)"
check "config: alias BLITZ_PYTHON" contains "$CFG" "RUNNER_PYTHON=/usr/bin/python3 (env-file .env:6)"
check "config: flag source" contains "$CFG" "RUNNER_STATE_DIR=$S (flag --state)"
check "config: default source" contains "$CFG" "MAX_CONCURRENT_SCRIPTS=5 (default)"

MAX_EXECUTION_TIME=90s "$RUNNER" --state "$S" --env-file "$WORK/.env" config >"$WORK/cfg" 2>&1
check "environment beats env-file" contains "$(cat "$WORK/cfg")" "MAX_EXECUTION_TIME=90s (env MAX_EXECUTION_TIME)"
RUNNER_EXEC_MODE=interpreter "$RUNNER" --state "$S" --exec-mode direct config >"$WORK/cfg" 2>&1
check "flag beats environment" contains "$(cat "$WORK/cfg")" "RUNNER_EXEC_MODE=direct (flag --exec-mode)"
run 0 --state "$S" --json config
check "config --json has sources" contains "$OUT" '"origin": "flag --state"'

export MAX_SCRIPT_SIZE=12abc
run 2 --state "$S" config
check "bad size names the variable" contains "$ERR" "MAX_SCRIPT_SIZE: invalid value '12abc' (env MAX_SCRIPT_SIZE)"
unset MAX_SCRIPT_SIZE
printf 'A=1\nB="unterminated\n' >"$WORK/bad.env"
run 2 --state "$S" --env-file "$WORK/bad.env" config
check "dotenv error names file and line" contains "$ERR" "$WORK/bad.env:2: unterminated double quote in value of B"
run 2 --state "$S" --env-file "$WORK/missing.env" config
check "missing env-file" contains "$ERR" "$WORK/missing.env: No such file or directory"

# Upload prints only the id.
printf 'print("hi")\n' >"$WORK/hello.py"
run 0 --state "$S" upload "$WORK/hello.py"
check "upload prints a uuid v4 and nothing else" \
	grep -Eqx '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}' "$WORK/out"
ID=$OUT
check "stored as <uuid>.py mode 0640" [ "$(stat -c %a "$S/scripts/$ID.py")" = 640 ]
check "stored bytes equal" cmp -s "$WORK/hello.py" "$S/scripts/$ID.py"
run 2 --state "$S" upload "$WORK/.env" --name evil.exe
check "type refused" contains "$ERR" "type '.exe' is not allowed"
run 2 --state "$S" upload /dev/zero --name zero.py
check "device refused" contains "$ERR" "not a regular file"
MAX_SCRIPT_SIZE=4 "$RUNNER" --state "$S" upload "$WORK/hello.py" 2>"$WORK/err"
check "size cap exit 2" [ $? = 2 ]
check "size cap message" contains "$(cat "$WORK/err")" "over MAX_SCRIPT_SIZE (4B)"
run 0 --state "$S" scripts
check "scripts lists the upload with its name" contains "$OUT" "$ID	python	12	hello.py"

# Eight runner processes upload at once into a fresh store.
S2="$WORK/state2"
for i in 1 2 3 4 5 6 7 8; do
	"$RUNNER" --state "$S2" upload "$WORK/hello.py" --name "c$i.py" >"$WORK/id.$i" 2>"$WORK/err.$i" &
done
wait
check "concurrent uploads all succeeded" [ "$(cat "$WORK"/err.* | wc -c)" = 0 ]
check "eight distinct ids" [ "$(sort -u "$WORK"/id.* | wc -l)" = 8 ]
run 0 --state "$S2" scripts
check "store lists eight scripts" [ "$(echo "$OUT" | wc -l)" = 8 ]
check "eight files" [ "$(ls "$S2/scripts" | wc -l)" = 8 ]

# Interpreter choice: a missing configured interpreter is one clear line.
RUNNER_PYTHON=/nonexistent/python3 "$RUNNER" --state "$S" which python 2>"$WORK/err"
check "missing configured interpreter exit 2" [ $? = 2 ]
check "names setting and path" contains "$(cat "$WORK/err")" "RUNNER_PYTHON (env RUNNER_PYTHON) is unusable: /nonexistent/python3: No such file or directory"
check "one line" [ "$(wc -l <"$WORK/err")" = 1 ]
PATH=/nonexistent "$RUNNER" --state "$S" which node 2>"$WORK/err"
check "nothing on PATH exit 1" [ $? = 1 ]
check "says which setting to set" contains "$(cat "$WORK/err")" "set RUNNER_NODE"

# A project venv is used outside a container and skipped inside one.
mkdir -p "$WORK/proj/.venv/bin"
printf '#!/bin/sh\nexit 0\n' >"$WORK/proj/.venv/bin/python"
chmod 755 "$WORK/proj/.venv/bin/python"
RUNNER_PROJECT_DIR="$WORK/proj" "$RUNNER" --state "$S" which python >"$WORK/out" 2>&1
check "project venv chosen outside a container" contains "$(cat "$WORK/out")" "$WORK/proj/.venv/bin/python -u"
mkdir -p "$WORK/droot"
touch "$WORK/droot/.dockerenv"
RUNNER_PROJECT_DIR="$WORK/proj" "$RUNNER" --state "$S" --root "$WORK/droot" which python >"$WORK/out" 2>&1
check "project venv skipped in a docker root" contains "$(cat "$WORK/out")" "project venv skipped: in a container (docker)"
run 0 --state "$S" detect --root "$WORK/droot"
check "detect reads the crafted root" contains "$OUT" "docker"
run 0 --state "$S" detect --json
check "empty root is no container" contains "$OUT" '"kind": "none"'

finish
