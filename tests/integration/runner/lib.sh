# Shared helpers for the runner integration tests (section A).  Each test
# sources this, gets a private work dir in $WORK, and leaves nothing behind:
# mounts are undone and the dir removed by the EXIT trap.

# `meson test --setup valgrind` wraps every test command in valgrind, this
# bash included, and bash's own leaks would fail the test.  Valgrind does not
# follow an exec, so leave it at once; the runner itself is put under
# valgrind below instead.
case $(readlink "/proc/$$/exe") in
*valgrind* | *memcheck*) exec /bin/bash "$0" "$@" ;;
esac

set -u

: "${RUNNER:?RUNNER must point at the runner binary}"
# The host's own container markers must never decide a result (this build
# machine carries /.dockerenv): every test runs against an empty root.
unset RUNNER_CONTAINER RUNNER_STATE_DIR RUNNER_DIR BOT_RUNNER_DIR RUNNER_PYTHON \
      BLITZ_PYTHON RUNNER_NODE RUNNER_TS SCRIPTS_DIR MAX_SCRIPT_SIZE MAX_EXECUTION_TIME \
      MAX_CONCURRENT_SCRIPTS RUNNER_VENV_DIR RUNNER_EXEC_MODE RUNNER_PROJECT_DIR \
      RUNNER_ALLOWED_TYPES RUNNER_ROOT

WORK=$(mktemp -d /var/tmp/runner-it.XXXXXX) || exit 99
chmod 755 "$WORK"
mkdir "$WORK/root"
export RUNNER_ROOT="$WORK/root"
MOUNTS=""
FAILS=0
CHECKS=0

# Under the valgrind setup every runner process runs in memcheck; a memory
# error or leak makes it exit 99, which no check expects.  The logs go to a
# sticky world-writable dir so the unprivileged runs can write theirs too.
# RUNNER_BIN stays the runner binary itself (RUNNER may become a wrapper).
RUNNER_BIN=$RUNNER
if [ -n "${FIELDRIG_UNDER_VALGRIND:-}" ]; then
	mkdir -m 1777 "$WORK/vg"
	VALGRIND=$(command -v valgrind) || skip "valgrind not found"
	cat >"$WORK/runner-vg" <<VG
#!/bin/sh
exec $VALGRIND --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \\
	--errors-for-leak-kinds=definite,indirect --track-fds=no --quiet \\
	--log-file=$WORK/vg/%p.log "$RUNNER" "\$@"
VG
	chmod 755 "$WORK/runner-vg"
	RUNNER="$WORK/runner-vg"
fi

cleanup() {
	for m in $MOUNTS; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

skip() {
	echo "SKIP: $*"
	exit 77
}

need_root() {
	[ "$(id -u)" = 0 ] || skip "needs root for mounts and setpriv"
}

# mount_tmpfs DIR OPTIONS: a small private tmpfs, unmounted on exit.
mount_tmpfs() {
	mkdir -p "$1"
	mount -t tmpfs -o "$2" fieldrig-test "$1" || skip "cannot mount tmpfs -o $2"
	MOUNTS="$1 $MOUNTS"
}

ok() {
	CHECKS=$((CHECKS + 1))
	echo "ok $CHECKS - $*"
}

not_ok() {
	CHECKS=$((CHECKS + 1))
	FAILS=$((FAILS + 1))
	echo "not ok $CHECKS - $*"
}

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
	desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# run EXPECTED_RC ARGS...: runs the runner, keeps stdout in $OUT, stderr
# in $ERR, and checks the exit status.
run() {
	want=$1
	shift
	"$RUNNER" "$@" >"$WORK/out" 2>"$WORK/err"
	rc=$?
	OUT=$(cat "$WORK/out")
	ERR=$(cat "$WORK/err")
	if [ "$rc" = "$want" ]; then
		ok "runner $* -> exit $rc"
	else
		not_ok "runner $* -> exit $rc, wanted $want; stderr: $ERR"
	fi
}

# As an unprivileged user: root ignores directory modes.
run_as_nobody() {
	want=$1
	shift
	setpriv --reuid=65534 --regid=65534 --clear-groups -- "$RUNNER" "$@" \
		>"$WORK/out" 2>"$WORK/err"
	rc=$?
	OUT=$(cat "$WORK/out")
	ERR=$(cat "$WORK/err")
	if [ "$rc" = "$want" ]; then
		ok "(uid 65534) runner $* -> exit $rc"
	else
		not_ok "(uid 65534) runner $* -> exit $rc, wanted $want; stderr: $ERR"
	fi
}

contains() {
	case "$1" in *"$2"*) return 0 ;; esac
	echo "    '$1' does not contain '$2'"
	return 1
}

empty_dir() {
	n=$(find "$1" -mindepth 1 | wc -l)
	[ "$n" = 0 ] || { echo "    left behind in $1:"; ls -la "$1"; return 1; }
}

finish() {
	if [ -d "$WORK/vg" ] && [ -n "$(find "$WORK/vg" -type f -size +0)" ]; then
		echo "# valgrind reports:"
		grep -v 'unhandled amd64-linux syscall\|You may be able\|README_MISSING\|Nevertheless we\|valgrind.org/support' \
			"$WORK"/vg/*.log | sed 's/^/# /'
	fi
	echo "$CHECKS checks, $FAILS failed"
	[ "$FAILS" = 0 ]
	exit $?
}
