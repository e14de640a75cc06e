# lib.sh -- shared code of the faultfs integration tests (sourced by bash).
#
# Every test:
#   . "$(dirname "$0")/lib.sh"
#   ff_begin                      # root + /dev/fuse check, private $WORK, traps
#   ff_mount BACKING MNT [faultfs options...]   # daemon in the foreground, in the background
#   ff_expect "what" rc=1 err='Permission denied' -- cmd args...
#   ...
#   ff_end                        # unmounts, checks the daemons' exit status, exit code
#
# The daemon always runs as `$FAULTFS_WRAPPER $FAULTFS BACKING MNT -f ... &`,
# so the same code serves the plain and the valgrind runs (`meson test
# --setup valgrind` sets FAULTFS_WRAPPER); its exit status is checked at
# unmount (valgrind exits 99 on memory errors).  The EXIT trap unmounts every
# mount and ends every process the test started, even on failure or ^C.  On
# failure the work dir is kept and a repro.sh is written into it and into the
# meson log dir.

# `meson test --setup valgrind` wraps every test command in valgrind, this
# bash included -- and bash's own leaks would fail the test.  Valgrind does
# not follow an exec (no --trace-children), so leave it at once: the script
# goes on in a plain bash, and only the faultfs daemon runs under
# $FAULTFS_WRAPPER.
case $(readlink "/proc/$$/exe") in
*valgrind* | *memcheck*) exec /bin/bash "$0" "$@" ;;
esac

# Run in a private mount namespace.  A process elsewhere on the machine that
# creates a mount namespace (unshare -m) while one of our faultfs mounts
# exists gets a copy of it, and that copy keeps the FUSE connection -- and
# our daemon -- alive after our `fusermount3 -u`.  In a namespace of our own
# nobody else copies our mounts, and whatever we leave is gone with us.
if [ -z "${FF_PRIVATE_NS:-}" ] && [ "$(id -u)" = 0 ] &&
	unshare --mount --propagation private true 2>/dev/null; then
	export FF_PRIVATE_NS=1
	exec unshare --mount --propagation private /bin/bash "$0" "$@"
fi

set -u
export LC_ALL=C TZ=UTC
umask 022

FF_NAME=$(basename "$0" .sh)
FF_FAILS=0
FF_CHECKS=0
FF_NMOUNT=0
FF_MOUNTS=()                 # faultfs mountpoints, in mount order
FF_OTHER_MOUNTS=()           # tmpfs and the like
FF_BGPIDS=()                 # other background processes (ctl trace --follow ...)
declare -A FF_PID=()         # mountpoint -> daemon pid (while we have not reaped it)
declare -A FF_ARGS=()        # mountpoint -> "backing mnt options" as a %q string
declare -A FF_LOG=()         # mountpoint -> daemon stdout/stderr
declare -A FF_DEV=()         # mountpoint -> st_dev of the FUSE mount (maj:min)
FF_LAST_CMD=""
FF_LAST_CWD=""
PY=/usr/bin/python3
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)

if [ -n "${FAULTFS_WRAPPER:-}" ]; then
	FF_WAIT=180      # seconds to wait for a mount / an exit under valgrind
else
	FF_WAIT=20
fi

ff_log() { printf '%s\n' "$*"; }

ff_skip() {
	printf 'SKIP: %s\n' "$*"
	exit 77
}

ff_begin() {
	[ -n "${FAULTFS:-}" ] || { echo "FAULTFS is not set (run through meson test)"; exit 2; }
	[ -x "$FAULTFS" ] || { echo "FAULTFS=$FAULTFS is not executable"; exit 2; }
	[ "$(id -u)" = 0 ] || ff_skip "needs root (mounts tmpfs, checks other users' rights)"
	[ -c /dev/fuse ] || ff_skip "/dev/fuse is missing"
	command -v fusermount3 >/dev/null || ff_skip "fusermount3 is missing"
	if [ "${FF_PRIVATE_NS:-}" = 1 ]; then
		# Our namespace began with copies of every mount, other people's
		# FUSE mounts too; let go of those copies so their daemons can
		# still exit when they unmount (this touches only our namespace).
		local m
		for m in $(awk '$3 ~ /^fuse/ { print $2 }' /proc/self/mounts); do
			umount -l "$(printf '%b' "$m")" 2>/dev/null
		done
	fi
	WORK=$(mktemp -d "/tmp/faultfs-it.$FF_NAME.XXXXXX") || exit 2
	chmod 755 "$WORK"
	FF_LOGDIR=${FAULTFS_IT_LOGDIR:-$WORK}
	[ -d "$FF_LOGDIR" ] && [ -w "$FF_LOGDIR" ] || FF_LOGDIR=$WORK
	FF_REPRO_LOG=$FF_LOGDIR/faultfs-it.$FF_NAME.repro.sh
	rm -f "$FF_REPRO_LOG"
	trap ff_on_exit EXIT
	trap 'ff_log "interrupted (SIGINT)"; FF_FAILS=$((FF_FAILS + 1)); exit 130' INT
	trap 'ff_log "terminated (SIGTERM)"; FF_FAILS=$((FF_FAILS + 1)); exit 143' TERM
	ff_log "# $FF_NAME: work dir $WORK${FAULTFS_WRAPPER:+ (daemon under: $FAULTFS_WRAPPER)}"
}

# --- mounts -----------------------------------------------------------------

ff_is_mounted() {
	awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/self/mounts
}

# Deadlines for bounded polls, in microseconds of the wall clock.
ff_now_us() { local t=${EPOCHREALTIME/./}; printf '%s' "$t"; }
ff_deadline() { echo $(($(ff_now_us) + $1 * 1000000)); }   # SECS -> deadline
ff_before() { [ "$(ff_now_us)" -lt "$1" ]; }

# ff_proc_alive PID: true while PID runs (a zombie waiting for us counts as gone).
ff_proc_alive() {
	local st
	{ read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
	st=${st##*) }
	st=${st:0:1}
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# ff_wait_gone PID SECS: poll until PID has exited; false on timeout.
ff_wait_gone() {
	local pid=$1 end
	end=$(ff_deadline "$2")
	while ff_proc_alive "$pid"; do
		ff_before "$end" || return 1
		sleep 0.01
	done
	return 0
}

# ff_wait_unmounted MNT SECS
ff_wait_unmounted() {
	local end
	end=$(ff_deadline "$2")
	while ff_is_mounted "$1"; do
		ff_before "$end" || return 1
		sleep 0.01
	done
	return 0
}

# ff_wait_for SECS CMD...: poll until CMD succeeds; false on timeout.
ff_wait_for() {
	local end
	end=$(ff_deadline "$1")
	shift
	until "$@"; do
		ff_before "$end" || return 1
		sleep 0.01
	done
	return 0
}

# ff_mount BACKING MNT [options...]: starts the daemon (in the foreground, as
# a background job) and returns once MNT is in /proc/self/mounts.  Sets
# FF_LAST_PID.  Fails the test (and returns 1) if the daemon exits first.
ff_mount() {
	local backing=$1 mnt=$2 pid end log
	shift 2
	mkdir -p "$backing" "$mnt"
	FF_NMOUNT=$((FF_NMOUNT + 1))
	log=$WORK/daemon.$FF_NMOUNT.log
	# A job started with & by a non-interactive shell inherits SIGINT
	# ignored, and libfuse leaves an ignored signal alone; restore the
	# default so SIGINT reaches the daemon as it would from a terminal.
	# shellcheck disable=SC2086
	env --default-signal=INT,QUIT ${FAULTFS_WRAPPER:-} "$FAULTFS" "$backing" "$mnt" -f "$@" \
		</dev/null >"$log" 2>&1 &
	pid=$!
	FF_PID[$mnt]=$pid
	FF_LOG[$mnt]=$log
	FF_ARGS[$mnt]=$(printf '%q ' "$backing" "$mnt" "$@")
	[[ " ${FF_MOUNTS[*]} " == *" $mnt "* ]] || FF_MOUNTS+=("$mnt")
	FF_LAST_PID=$pid
	end=$(ff_deadline "$FF_WAIT")
	while ff_before "$end"; do
		if ff_is_mounted "$mnt"; then
			FF_DEV[$mnt]=$(awk -v m="$mnt" '$5 == m { d = $3 } END { print d }' /proc/self/mountinfo)
			# Make sure the wrapper really is in charge of the daemon.
			if [[ ${FAULTFS_WRAPPER:-} == *valgrind* ]] &&
				[[ $(readlink "/proc/$pid/exe") != *valgrind* && $(readlink "/proc/$pid/exe") != *memcheck* ]]; then
				ff_fail "daemon of $mnt runs under valgrind" "exe under valgrind" "$(readlink "/proc/$pid/exe")"
			fi
			return 0
		fi
		if ! ff_proc_alive "$pid"; then
			wait "$pid"
			local rc=$?
			unset "FF_PID[$mnt]"
			ff_fail "mount faultfs on $mnt" "the daemon keeps running, $mnt mounted" \
				"daemon exited with $rc before mounting; its output: $(cat "$log")"
			return 1
		fi
		sleep 0.01
	done
	ff_fail "mount faultfs on $mnt" "mounted within ${FF_WAIT}s" "not mounted; daemon output: $(cat "$log")"
	return 1
}

# ff_reap MNT [expected-rc]: waits (bounded) for MNT's daemon to exit and
# checks its exit status (valgrind's 99 = memory errors).
ff_reap() {
	local mnt=$1 want=${2:-0} pid rc vlog
	pid=${FF_PID[$mnt]:-}
	[ -n "$pid" ] || return 0
	if ! ff_wait_gone "$pid" "$FF_WAIT"; then
		ff_fail "daemon of $mnt exits after unmount" "exit within ${FF_WAIT}s" \
			"pid $pid still running ($(ff_is_mounted "$mnt" && echo "still mounted" || echo "not mounted")); processes using the mount:$(ff_holders "$mnt"); other mount namespaces with a copy of it:$(ff_ns_copies "$mnt"); its threads:$(ff_threads "$pid"); killing it"
		kill -TERM "$pid" 2>/dev/null
		ff_wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid"
	rc=$?
	unset "FF_PID[$mnt]"
	FF_LAST_RC=$rc
	if [ "$rc" != "$want" ]; then
		vlog=""
		if [ -n "${FAULTFS_WRAPPER:-}" ]; then
			vlog=$(printf '%s' "$FAULTFS_WRAPPER" | sed -n 's/.*--log-file=\([^ ]*\).*/\1/p')
			vlog=${vlog//%p/$pid}
		fi
		ff_fail "daemon of $mnt exit status" "$want" \
			"$rc$([ "$rc" = 99 ] && echo " (valgrind found memory errors)")
daemon output: $(cat "${FF_LOG[$mnt]}" 2>/dev/null)
$([ -n "$vlog" ] && [ -s "$vlog" ] && { echo "valgrind log $vlog:"; cat "$vlog"; })"
		return 1
	fi
	return 0
}

# ff_holders MNT: the processes with a cwd, root, exe, open file or mapping
# under MNT (for messages about a busy mount).
ff_holders() {
	local mnt=$1 p l found=""
	for p in /proc/[0-9]*; do
		for l in "$p/cwd" "$p/root" "$p/exe" "$p"/fd/*; do
			case $(readlink "$l" 2>/dev/null) in
			"$mnt" | "$mnt"/*) found+=" ${p#/proc/}($(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | cut -c1-80))"; break ;;
			esac
		done
		grep -qF " $mnt/" "$p/maps" 2>/dev/null && [[ $found != *" ${p#/proc/}("* ]] &&
			found+=" ${p#/proc/}[maps]($(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | cut -c1-80))"
	done
	printf '%s' "${found:- none found}"
}

# ff_ns_copies MNT: processes in other mount namespaces that hold a copy of
# MNT's FUSE mount (same device number), which keeps its connection alive.
ff_ns_copies() {
	local dev=${FF_DEV[$1]:-} p me found=""
	[ -n "$dev" ] || { printf ' unknown'; return; }
	me=$(readlink /proc/self/ns/mnt)
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$me" ] && continue
		awk -v d="$dev" '$3 == d { f = 1 } END { exit !f }' "$p/mountinfo" 2>/dev/null &&
			found+=" ${p#/proc/}($(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | cut -c1-80))"
	done
	printf '%s' "${found:- none}"
}

# ff_threads PID: each thread's name, kernel wait channel and syscall (and,
# with gdb at hand, the backtraces into $WORK/stuck.PID.txt).
ff_threads() {
	local t out=""
	for t in /proc/"$1"/task/*; do
		out+=$'\n       '"${t##*/} $(cat "$t/comm" 2>/dev/null) wchan=$(cat "$t/wchan" 2>/dev/null) syscall=$(cut -d' ' -f1-3 "$t/syscall" 2>/dev/null)"
	done
	if command -v gdb >/dev/null; then
		timeout 30 gdb -p "$1" -batch -ex 'thread apply all bt' >"$WORK/stuck.$1.txt" 2>&1
		out+=$'\n       backtraces: '"$WORK/stuck.$1.txt"
	fi
	printf '%s' "$out"
}

# ff_umount MNT: fusermount3 -u, then the daemon must exit 0.
ff_umount() {
	local mnt=$1 out
	if ! out=$(fusermount3 -u "$mnt" 2>&1); then
		ff_fail "fusermount3 -u $mnt" "exit 0" "$out; processes using it:$(ff_holders "$mnt")"
		fusermount3 -uz "$mnt" 2>/dev/null
	fi
	ff_reap "$mnt"
}

# ff_tmpfs DIR OPTIONS: a real tmpfs mount (unmounted by the trap).
ff_tmpfs() {
	mkdir -p "$1"
	mount -t tmpfs -o "$2" "fieldrig-it" "$1" || { ff_fail "mount tmpfs on $1" "exit 0" "failed"; return 1; }
	FF_OTHER_MOUNTS+=("$1")
}

# ff_bg CMD...: a background helper process, killed by the trap.
ff_bg() {
	"$@" &
	FF_LAST_BG=$!
	FF_BGPIDS+=("$FF_LAST_BG")
}

ff_ctl() { "$FAULTFS" ctl "$@"; }

# --- checks -------------------------------------------------------------------

# ff_run CMD...: runs CMD, sets RUN_RC, RUN_OUT, RUN_ERR (trailing newlines cut).
ff_run() {
	FF_LAST_CMD=$(printf '%q ' "$@")
	FF_LAST_CWD=$PWD
	"$@" >"$WORK/.out" 2>"$WORK/.err" </dev/null
	RUN_RC=$?
	RUN_OUT=$(cat "$WORK/.out")
	# A coverage build's binaries, run as another user, add gcov's own
	# "profiling:…gcda:Cannot open" lines: not the program's output.
	RUN_ERR=$(grep -v '^profiling:.*\.gcda:' "$WORK/.err")
}

# ff_expect DESC [rc=N] [rcnot=N] [err=SUBSTR] [errx=EXACT] [errlines=N] [out=EXACT] [outhas=SUBSTR] -- CMD...
ff_expect() {
	local desc=$1 k v ok=1 want=() got=()
	shift
	local -a conds=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do conds+=("$1"); shift; done
	[ "${1:-}" = -- ] && shift
	ff_run "$@"
	FF_CHECKS=$((FF_CHECKS + 1))
	for c in "${conds[@]}"; do
		k=${c%%=*} v=${c#*=}
		case $k in
		rc) [ "$RUN_RC" = "$v" ] || { ok=0; want+=("exit $v"); got+=("exit $RUN_RC"); } ;;
		rcnot) [ "$RUN_RC" != "$v" ] || { ok=0; want+=("exit other than $v"); got+=("exit $RUN_RC"); } ;;
		err) [[ "$RUN_ERR" == *"$v"* ]] || { ok=0; want+=("stderr containing '$v'"); got+=("stderr '$RUN_ERR'"); } ;;
		errx) [ "$RUN_ERR" = "$v" ] || { ok=0; want+=("stderr exactly '$v'"); got+=("stderr '$RUN_ERR'"); } ;;
		out) [ "$RUN_OUT" = "$v" ] || { ok=0; want+=("stdout exactly '$v'"); got+=("stdout '$RUN_OUT'"); } ;;
		errlines) local nl=0
			[ -n "$RUN_ERR" ] && nl=$(printf '%s\n' "$RUN_ERR" | wc -l)
			[ "$nl" = "$v" ] || { ok=0; want+=("$v line(s) on stderr"); got+=("$nl line(s)"); } ;;
		outhas) [[ "$RUN_OUT" == *"$v"* ]] || { ok=0; want+=("stdout containing '$v'"); got+=("stdout '$RUN_OUT'"); } ;;
		*) echo "ff_expect: bad condition $c" >&2; exit 2 ;;
		esac
	done
	if [ $ok = 1 ]; then
		printf 'ok   %s\n' "$desc"
		return 0
	fi
	local w g
	w=$(printf '%s; ' "${want[@]}") g=$(printf '%s; ' "${got[@]}")
	ff_fail "$desc" "${w%; }" "${g%; } (stdout '$RUN_OUT', stderr '$RUN_ERR')" cmd
	return 1
}

# ff_check DESC EXPECTED ACTUAL: equality of two strings.
ff_check() {
	FF_CHECKS=$((FF_CHECKS + 1))
	if [ "$2" = "$3" ]; then
		printf 'ok   %s\n' "$1"
		return 0
	fi
	ff_fail "$1" "$2" "$3"
	return 1
}

# ff_true DESC CMD...: CMD must succeed (a condition, output not judged).
ff_true() {
	local desc=$1
	shift
	ff_run "$@"
	FF_CHECKS=$((FF_CHECKS + 1))
	if [ "$RUN_RC" = 0 ]; then
		printf 'ok   %s\n' "$desc"
		return 0
	fi
	ff_fail "$desc" "success of: $FF_LAST_CMD" "exit $RUN_RC, stdout '$RUN_OUT', stderr '$RUN_ERR'" cmd
	return 1
}

# ff_fail DESC EXPECTED ACTUAL [cmd]: reports a failed check, writes repro.sh.
ff_fail() {
	FF_FAILS=$((FF_FAILS + 1))
	printf 'FAIL %s\n     expected: %s\n     actual:   %s\n' "$1" "$2" "$3"
	[ "${4:-}" = cmd ] && printf '     command:  (cd %q && %s)\n' "$FF_LAST_CWD" "$FF_LAST_CMD"
	ff_write_repro "$1" "$2" "$3" "${4:-}"
}

# The repro mounts a faultfs like each live one of the test (with the rules
# active at the time of failure, read back with `ctl list`), runs the failing
# command in the kept work dir, and unmounts.
ff_write_repro() {
	local desc=$1 exp=$2 act=$3 withcmd=$4 m f umounts
	for f in "$WORK/repro.sh" "$FF_REPRO_LOG"; do
		{
			if [ ! -s "$f" ]; then
				echo '#!/bin/bash'
				echo "# Reproduces failed checks of the faultfs integration test $FF_NAME."
				echo "# The test's work dir $WORK is kept; run as root: bash $f"
				printf 'FAULTFS=%q\n' "$FAULTFS"
			fi
			echo
			echo "# --- FAILED: $desc"
			printf '#     expected: %s\n' "${exp//$'\n'/$'\n#               '}"
			printf '#     actual:   %s\n' "${act//$'\n'/$'\n#               '}"
			echo '('
			umounts=""
			for m in "${FF_MOUNTS[@]}"; do
				ff_is_mounted "$m" || continue
				local -a a=()
				eval "a=(${FF_ARGS[$m]})"
				local -a keep=() i=0
				while [ $i -lt ${#a[@]} ]; do
					case ${a[$i]} in
					--rule|--rules|--profile) i=$((i + 2)); continue ;;
					esac
					keep+=("${a[$i]}")
					i=$((i + 1))
				done
				local rules=()
				while IFS=$'\t' read -r _ expr; do
					[ -n "$expr" ] && rules+=(--rule "$expr")
				done < <("$FAULTFS" ctl "$m" list 2>/dev/null)
				# (printf '%q ' with no arguments would print '' -- an extra argument)
				printf '  "$FAULTFS" %s' "$(printf '%q ' "${keep[@]}")"
				[ ${#rules[@]} -gt 0 ] && printf '%s' "$(printf '%q ' "${rules[@]}")"
				printf ' || exit 1\n'
				umounts+="fusermount3 -u $(printf '%q' "$m"); "
			done
			[ -n "$umounts" ] && printf '  trap %q EXIT\n' "cd /; $umounts"
			if [ "$withcmd" = cmd ]; then
				printf '  (cd %q && %s)\n' "$FF_LAST_CWD" "$FF_LAST_CMD"
				echo '  echo "exit status: $?"'
			fi
			echo ')'
		} >>"$f"
	done
	chmod +x "$WORK/repro.sh" 2>/dev/null
}

# --- end ----------------------------------------------------------------------

ff_cleanup() {
	local m pid i left out
	cd /
	for pid in "${FF_BGPIDS[@]}"; do
		if ff_proc_alive "$pid"; then
			kill -TERM "$pid" 2>/dev/null
			ff_wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
	done
	FF_BGPIDS=()
	for ((i = ${#FF_MOUNTS[@]} - 1; i >= 0; i--)); do
		m=${FF_MOUNTS[$i]}
		if ff_is_mounted "$m" && ! out=$(fusermount3 -u "$m" 2>&1); then
			ff_log "note: fusermount3 -u $m: $out; processes using it: $(ff_holders "$m")"
			ff_log "note: unmounting lazily (-uz); the daemon lives until they let go"
			fusermount3 -uz "$m" 2>/dev/null
		fi
		pid=${FF_PID[$m]:-}
		[ -n "$pid" ] && ff_reap "$m"
	done
	for m in "${FF_OTHER_MOUNTS[@]}"; do
		if ff_is_mounted "$m"; then
			umount "$m" 2>/dev/null || umount -l "$m"
		fi
	done
	# Nothing of ours may remain: no mount under $WORK, no process naming it.
	left=$(awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts)
	if [ -n "$left" ]; then
		ff_fail "no mounts left behind" "none under $WORK" "$left"
		for m in $left; do umount -l "$m"; done
	fi
	left=$(pgrep -f -- "$WORK" | grep -vx "$$" || true)
	if [ -n "$left" ]; then
		ff_fail "no processes left behind" "none" "$(ps -o pid=,args= -p "$(echo $left | tr ' ' ,)")"
	fi
}

ff_on_exit() {
	local rc=$?
	trap - EXIT INT TERM
	ff_cleanup
	if [ "$FF_FAILS" -gt 0 ] || [ "$rc" != 0 ]; then
		[ "$FF_FAILS" -gt 0 ] || ff_log "FAIL: the test script stopped with status $rc"
		ff_log "# $FF_NAME: $FF_FAILS failure(s), $FF_CHECKS checks run; work dir kept: $WORK"
		[ -s "$WORK/repro.sh" ] && ff_log "# repro: $WORK/repro.sh (also $FF_REPRO_LOG)"
		exit 1
	fi
	rm -rf "$WORK"
	ff_log "# $FF_NAME: all $FF_CHECKS checks passed"
	exit 0
}

ff_end() {
	exit 0
}
