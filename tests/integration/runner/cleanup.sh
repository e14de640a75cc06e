#!/bin/bash
# runner cleanup: per-run directories of finished runs go (with what the
# script left in them, symlinks not followed), a live run's directory
# stays, stale runner scripts and upload temporaries go, log files of runs
# the store does not have go (a finished run's stay: its log is still
# read), and a directory that cannot be removed (EBUSY: a mountpoint inside
# it) is reported while the rest is still removed.  Runs that ended more
# than RUNNER_KEEP_RUNS ago are forgotten, record, log rows and files; a
# newer one, a live one and one with its directory still there are not.
. "$(dirname "$0")/lib.sh"

need_root
PY=/usr/bin/python3
[ -x "$PY" ] || skip "needs $PY"
export RUNNER_PYTHON=$PY
S="$WORK/state"
r() { "$RUNNER" --state "$S" "$@"; }
field() { r status "$1" --json | "$PY" -c "import json,sys; v=json.load(sys.stdin)['$2']; print('' if v is None else v)"; }

# Leaves files, a subdirectory and a symlink to a file outside in its
# working directory.
cat >"$WORK/litter.py" <<'PY'
import os, sys
os.makedirs("sub/deeper")
open("sub/deeper/f", "w").write("x")
open("out.txt", "w").write("y")
os.symlink(sys.argv[1], "link")
PY
cat >"$WORK/wait.py" <<'PY'
import sys, time
open(sys.argv[1], "w").close()
time.sleep(1000)
PY
echo keep >"$WORK/outside"
L=$(r upload "$WORK/litter.py")
W=$(r upload "$WORK/wait.py")

run 0 --state "$S" exec "$L" --arg "$WORK/outside"
R1=$(head -1 <<<"$OUT")
D1=$(field "$R1" workdir)
check "the littered run dir is still there" [ -d "$D1/sub/deeper" ]
run 0 --state "$S" exec "$L" --arg "$WORK/outside"
R2=$(head -1 <<<"$OUT")
D2=$(field "$R2" workdir)
mkdir -p "$D2/mnt"
mount_tmpfs "$D2/mnt" "size=1m"

mkfifo "$WORK/f"
run 0 --state "$S" exec "$W" --detach --arg "$WORK/f"
R3=$(head -1 <<<"$OUT")
cat "$WORK/f"
D3=$(field "$R3" workdir)

RD="$S/runtime/bot_runners"
printf 'print(1)\n' >"$WORK/bot.py"
run 0 --state "$S" runner-script alice "$WORK/bot.py"
touch -d '2 hours ago' "$RD/bot_runner_alice.py"
run 0 --state "$S" runner-script bob "$WORK/bot.py"
touch -d '2 hours ago' "$S/scripts/.upload-0000.tmp"

printf 'print("still here")\n' >"$WORK/hello.py"
H=$(r upload "$WORK/hello.py")
run 0 --state "$S" exec "$H"
R0=$(head -1 <<<"$OUT")
for f in run-999.stdout run-999.stderr run-999.stdout.bak run-0999.stdout notes; do
	printf 'old\n' >"$S/logs/$f"
	touch -d '2 hours ago' "$S/logs/$f"
done

run 1 --state "$S" cleanup --older-than 0
check "log files of a run the store does not have removed" \
	sh -c "[ ! -e '$S/logs/run-999.stdout' ] && [ ! -e '$S/logs/run-999.stderr' ]"
check "and reported" contains "$OUT" "removed $S/logs/run-999.stdout"
check "files the runner did not name so stay" \
	sh -c "[ -e '$S/logs/run-999.stdout.bak' ] && [ -e '$S/logs/run-0999.stdout' ] && [ -e '$S/logs/notes' ]"
check "a finished run's log file stays, and reads" \
	sh -c "[ -f '$S/logs/run-$R0.stdout' ] && [ \"\$('$RUNNER' --state '$S' logs $R0)\" = 'still here' ]"
check "removed the finished run's dir" [ ! -e "$D1" ]
check "said so" contains "$OUT" "removed $D1"
check "did not follow the symlink" [ "$(cat "$WORK/outside")" = keep ]
check "EBUSY reported with the path" contains "$ERR" "cannot remove $D2/mnt: Device or resource busy (EBUSY)"
check "the rest of the busy run's dir removed" sh -c "[ ! -e '$D2/out.txt' ] && [ ! -e '$D2/sub' ]"
check "the live run's dir stays" [ -d "$D3" ]
check "stale runner script removed" [ ! -e "$RD/bot_runner_alice.py" ]
check "upload temporary removed" [ ! -e "$S/scripts/.upload-0000.tmp" ]

umount "$D2/mnt"
MOUNTS=""
run 0 --state "$S" cleanup --older-than 0 --json
check "after unmount the dir goes" [ ! -e "$D2" ]
check "and the record forgets it" [ -z "$(field "$R2" workdir)" ]
check "json lists it" contains "$OUT" "\"$D2\""
run 0 --state "$S" cleanup
check "default keeps what ended within the hour" contains "$OUT" "nothing to clean up"
# --- RUNNER_KEEP_RUNS ---
age() {   # age RUN DAYS: the run ended DAYS ago
	"$PY" - "$S/runner.db" "$1" "$2" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE runs SET ended_at = ? WHERE id = ?",
           (int((time.time() - float(sys.argv[3]) * 86400) * 1000), int(sys.argv[2])))
db.commit()
PY
}
rows() { "$PY" -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM log_lines WHERE run_id = ?', (int(sys.argv[2]),)).fetchone()[0])" "$S/runner.db" "$1"; }
check "the old run has log rows" [ "$(rows "$R0")" -gt 0 ]
age "$R0" 40
age "$R1" 20
# R3 still runs; a stale ended_at must not matter
age "$R3" 40
RUNNER_KEEP_RUNS=0 run 0 --state "$S" cleanup
check "RUNNER_KEEP_RUNS=0 keeps every run" [ "$(field "$R0" status)" = COMPLETED ]
run 0 --state "$S" cleanup
check "the run that ended 40 days ago is forgotten" contains "$OUT" "forgot 1 run that ended more than 30d ago (RUNNER_KEEP_RUNS)"
check "its log files reported and gone" sh -c "! [ -e '$S/logs/run-$R0.stdout' ] && grep -qx 'removed $S/logs/run-$R0.stdout' <<'EOF'
$OUT
EOF"
check "its log rows gone" [ "$(rows "$R0")" = 0 ]
run 2 --state "$S" status "$R0"
check "status no longer knows it" contains "$ERR" "no run with id $R0"
check "the run that ended 20 days ago stays" [ "$(field "$R1" status)" = COMPLETED ]
check "the live run stays" [ "$(field "$R3" status)" = RUNNING ]
RUNNER_KEEP_RUNS=7d run 0 --state "$S" cleanup --json
check "RUNNER_KEEP_RUNS=7d forgets the 20-day-old one" [ "$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["forgotten"])' <<<"$OUT")" = 1 ]
# A restart is kept while its run is: serve tells a restarted run by it.
run 0 --state "$S" exec "$H"
R4=$(head -1 <<<"$OUT")
"$PY" - "$S/runner.db" "$R4" "$R3" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
req = json.loads(db.execute("SELECT request FROM runs WHERE id = ?", (int(sys.argv[2]),)).fetchone()[0])
req["restart_of"] = int(sys.argv[3])
db.execute("UPDATE runs SET request = ? WHERE id = ?", (json.dumps(req), int(sys.argv[2])))
db.commit()
PY
age "$R4" 40
run 0 --state "$S" cleanup --older-than 0
check "a restart of a recorded run stays" [ "$(field "$R4" status)" = COMPLETED ]
RUNNER_KEEP_RUNS=soon run 2 --state "$S" cleanup
check "a bad RUNNER_KEEP_RUNS is named" contains "$ERR" "RUNNER_KEEP_RUNS"
RUNNER_KILL_GRACE=0 run 0 --state "$S" cancel "$R3"
run 2 --state "$S" cleanup --older-than soon
check "bad --older-than" contains "$ERR" "invalid duration 'soon'"
finish
