#!/bin/bash
# The test library itself: a test that is interrupted (SIGTERM, SIGINT) or
# fails leaves no mount and no process behind, keeps its work dir on
# failure, and writes a repro.sh that really reproduces the failing command.
. "$(dirname "$0")/lib.sh"
ff_begin

LIB=$(cd "$(dirname "$0")" && pwd)/lib.sh
cat >"$WORK/child.sh" <<EOF2
. '$LIB'
ff_begin
echo "WORK=\$WORK" >'$WORK/child.work'
ff_mount "\$WORK/b1" "\$WORK/m1" --rule 'op=read,path=f,error=EIO'
ff_mount "\$WORK/b2" "\$WORK/m2"
ff_tmpfs "\$WORK/t" size=1m
echo hello >"\$WORK/m1/f"
ff_bg sleep 600
echo "\${FF_PID[\$WORK/m1]} \${FF_PID[\$WORK/m2]} \$FF_LAST_BG" >'$WORK/child.pids'
case "\${1:-}" in
fail) cd "\$WORK/m1" && ff_expect "cat f works (it will not: the rule)" rc=0 out=hello -- cat f ;;
*) ff_bg sleep 600; echo \$FF_LAST_BG >'$WORK/child.waitpid'; echo READY >'$WORK/child.ready'; wait \$FF_LAST_BG ;;
esac
ff_end
EOF2

run_child() { # MODE SIGNAL
	rm -f "$WORK/child.ready" "$WORK/child.pids" "$WORK/child.work"
	env --default-signal=INT bash "$WORK/child.sh" "$1" >"$WORK/child.out" 2>&1 &
	local child=$! rc
	FF_BGPIDS+=("$child")
	if [ "$1" = wait ]; then
		ff_wait_for "$FF_WAIT" test -s "$WORK/child.ready" || ff_fail "child ready" READY "$(cat "$WORK/child.out")"
		kill -"$2" "$child"
	fi
	ff_wait_gone "$child" "$FF_WAIT"
	wait "$child"
	CHILD_RC=$?
	CHILD_WORK=$(sed -n 's/^WORK=//p' "$WORK/child.work")
	read -r CP1 CP2 CBG <"$WORK/child.pids"
}
gone() { ! ff_proc_alive "$1"; }
for sig in TERM INT; do
	run_child wait "$sig"
	ff_check "SIG$sig: the interrupted test exits 1" 1 "$CHILD_RC"
	ff_expect "SIG$sig: it says it was interrupted" rc=0 outhas="interrupted" -- bash -c "grep -iE 'terminated|interrupted' '$WORK/child.out' | tr A-Z a-z | sed 's/terminated/interrupted/'"
	ff_expect "SIG$sig: no mount left under its work dir" out='' -- awk -v w="$CHILD_WORK/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts
	ff_expect "SIG$sig: both daemons are gone" rc=0 -- bash -c "! kill -0 $CP1 2>/dev/null && ! kill -0 $CP2 2>/dev/null"
	ff_expect "SIG$sig: its background process is gone" rc=1 -- kill -0 "$CBG"
	ff_expect "SIG$sig: the process it was waiting for is gone" rc=1 -- kill -0 "$(cat "$WORK/child.waitpid")"
	ff_expect "SIG$sig: the work dir is kept" rc=0 -- test -d "$CHILD_WORK"
	rm -rf "$CHILD_WORK"
done

run_child fail
ff_check "failed check: the test exits 1" 1 "$CHILD_RC"
ff_expect "failed check: expected and actual are printed" rc=0 -- \
	grep -q "expected: exit 0; stdout exactly 'hello'" "$WORK/child.out"
ff_expect "failed check: no mount left" out='' -- awk -v w="$CHILD_WORK/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts
ff_expect "failed check: daemons and helpers gone" rc=0 -- bash -c "! kill -0 $CP1 2>/dev/null && ! kill -0 $CP2 2>/dev/null && ! kill -0 $CBG 2>/dev/null"
ff_expect "failed check: repro.sh written in the kept work dir" rc=0 -- test -x "$CHILD_WORK/repro.sh"
ff_expect "repro.sh mounts with the rule that was active" rc=0 -- grep -q -- "--rule op=read\\\\,path=f\\\\,error=EIO" "$CHILD_WORK/repro.sh"
ff_expect "running repro.sh reproduces the failure (cat: f: Input/output error)" rc=0 err='cat: f: Input/output error' outhas='exit status: 1' -- bash "$CHILD_WORK/repro.sh"
ff_expect "repro.sh unmounted after itself" out='' -- awk -v w="$CHILD_WORK/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts
left=$(pgrep -f -- "$CHILD_WORK/")
ff_check "repro.sh left no daemon running" "" "$left"
[ -n "$left" ] && kill $left
ff_expect "after repro.sh the mountpoint is a plain dir again" out='' -- ls -A "$CHILD_WORK/m1"
rm -rf "$CHILD_WORK"
ff_end
