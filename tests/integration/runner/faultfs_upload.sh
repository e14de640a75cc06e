#!/bin/bash
# Upload and the runner directory on faultfs mounts, through the runner's
# command line (issue 3's integration points on faultfs, beside the tmpfs and
# unprivileged-user versions in upload_failures.sh and runnerdir.sh):
# - an upload into a scripts dir whose creates fail with EACCES, or whose
#   writes fail with ENOSPC or EIO, exits 1 naming the path and errno and
#   leaves nothing in the directory, and a later upload still works;
# - a configured runner dir where faultfs refuses exec (per-path noexec) is
#   kept in interpreter mode, and one where creates fail is left for the
#   fallback, with the decision and reason on stderr.
# Needs root and /dev/fuse, else exit 77.
. "$(dirname "$0")/../faultfs/lib.sh"
[ -x "${RUNNER:-}" ] || { echo "RUNNER is not set (run through meson test)"; exit 2; }
ff_begin

ROOT=$WORK/root            # a crafted root: this machine's /.dockerenv must not count
mkdir -p "$ROOT"
S=$WORK/state
printf 'print("hello")\n' > "$WORK/job.py"
head -c 200000 /dev/urandom | base64 > "$WORK/big.py"

up() { # up SCRIPTS_DIR FILE
	env SCRIPTS_DIR="$1" "$RUNNER" --state "$S" --root "$ROOT" upload "$2"
}

ff_mount "$WORK/back-s" "$WORK/s"
mkdir "$WORK/s/scripts"
id=$(ff_ctl "$WORK/s" add 'op=create,path=scripts/**,error=EACCES')
ff_expect "upload, create EACCES: exit 1 naming path and errno" rc=1 err="Permission denied (EACCES)" -- \
	up "$WORK/s/scripts" "$WORK/job.py"
ff_check "upload, create EACCES: the error names the scripts dir" 1 "$(grep -c "$WORK/s/scripts" <<<"$RUN_ERR")"
ff_expect "upload, create EACCES: nothing left behind" rc=0 out='' -- ls -A "$WORK/back-s/scripts"
ff_ctl "$WORK/s" remove "$id" >/dev/null

id=$(ff_ctl "$WORK/s" add 'op=write,path=scripts/**,error=ENOSPC,after=1')
ff_expect "upload, ENOSPC mid-copy: exit 1 naming errno" rc=1 err="No space left on device (ENOSPC)" -- \
	up "$WORK/s/scripts" "$WORK/big.py"
ff_expect "upload, ENOSPC: nothing left behind" rc=0 out='' -- ls -A "$WORK/back-s/scripts"
ff_ctl "$WORK/s" remove "$id" >/dev/null

id=$(ff_ctl "$WORK/s" add 'op=write|fsync,path=scripts/**,error=EIO')
ff_expect "upload, EIO: exit 1 naming errno" rc=1 err="Input/output error (EIO)" -- \
	up "$WORK/s/scripts" "$WORK/job.py"
ff_expect "upload, EIO: nothing left behind" rc=0 out='' -- ls -A "$WORK/back-s/scripts"
ff_ctl "$WORK/s" remove "$id" >/dev/null

ff_expect "upload after the faults are gone works" rc=0 -- up "$WORK/s/scripts" "$WORK/job.py"
ff_check "the stored script is the only file, mode 0640" "$RUN_OUT.py 640" \
	"$(cd "$WORK/back-s/scripts" && stat -c '%n %a' -- *)"

# Runner dir where every exec is refused, as on a noexec mount the kernel
# cannot see in mountinfo: interpreter mode keeps it.
ff_mount "$WORK/back-x" "$WORK/x" --profile noexec-tmp
ff_expect "runner dir on per-path noexec, interpreter mode: kept" rc=0 out="$WORK/x/bot_runners" -- \
	env RUNNER_DIR="$WORK/x/bot_runners" "$RUNNER" --state "$S" --root "$ROOT" runner-dir

# Runner dir whose creates fail: falls back, saying why.
ff_mount "$WORK/back-w" "$WORK/w" --rule 'op=create|mkdir,path=**,error=EACCES'
ff_expect "runner dir not writable: falls back to the state dir" rc=0 out="$S/runtime/bot_runners" -- \
	env RUNNER_DIR="$WORK/w/bot_runners" "$RUNNER" --state "$S" --root "$ROOT" runner-dir
ff_check "the fallback decision names the configured dir and the reason" 1 \
	"$(grep -c "runner dir: using $S/runtime/bot_runners (configured $WORK/w/bot_runners.*Permission denied" <<<"$RUN_ERR")"
ff_expect "nothing was created in the refused dir" rc=0 out='' -- ls -A "$WORK/back-w"

ff_end
