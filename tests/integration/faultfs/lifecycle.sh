#!/bin/bash
# Lifecycle: SIGTERM and SIGINT unmount cleanly and the daemon exits 0;
# `fusermount3 -u` from outside makes it exit; background mode returns once
# mounted; --help/--version; usage and input errors exit 2 with one line.
. "$(dirname "$0")/lib.sh"
ff_begin

B=$WORK/back M=$WORK/mnt
mkdir -p "$B" "$M"
echo hello >"$B/f"

for sig in TERM INT; do
	ff_mount "$B" "$M" --rule 'op=read,path=nothing,error=EIO' || continue
	pid=$FF_LAST_PID
	ff_expect "SIG$sig: the mount works" out=hello -- cat "$M/f"
	kill -"$sig" "$pid"
	ff_expect "SIG$sig: the mount goes away" rc=0 -- ff_wait_unmounted "$M" "$FF_WAIT"
	ff_reap "$M" 0 && ff_check "SIG$sig: the daemon exits 0" 0 "$FF_LAST_RC"
	ff_expect "SIG$sig: the mountpoint is a plain empty dir again" out='' -- ls -A "$M"
done

# SIGTERM while a process sits in the mount (cwd and an open file).
ff_mount "$B" "$M"
pid=$FF_LAST_PID
ff_bg bash -c "cd '$M' && exec 3<f && exec sleep 600"
sitter=$FF_LAST_BG
sleep_exe=$(readlink -f "$(command -v sleep)")
sitting() { [ "$(readlink "/proc/$sitter/cwd" 2>/dev/null)" = "$M" ] && [ "$(readlink "/proc/$sitter/exe")" = "$sleep_exe" ]; }
ff_wait_for "$FF_WAIT" sitting
ff_expect "busy mount: a process has its cwd in it" out="$M" -- readlink "/proc/$sitter/cwd"
kill -TERM "$pid"
ff_expect "busy mount: SIGTERM still takes the mount away" rc=0 -- ff_wait_unmounted "$M" "$FF_WAIT"
ff_reap "$M" 0 && ff_check "busy mount: the daemon exits 0" 0 "$FF_LAST_RC"
kill "$sitter"; wait "$sitter" 2>/dev/null

# SIGTERM while a call sits in a delay= rule: clean exit, bounded.
ff_mount "$B" "$M" --rule 'op=read,path=f,delay=2s'
pid=$FF_LAST_PID
ff_bg cat "$M/f" >/dev/null 2>&1
reader=$FF_LAST_BG
in_delay() { "$FAULTFS" ctl "$M" stats --json | "$PY" -c 'import json,sys; sys.exit(json.load(sys.stdin)["rules"][0]["matched"] < 1)'; }
ff_expect "delayed call: the reader is inside the delay" rc=0 -- ff_wait_for "$FF_WAIT" in_delay
kill -TERM "$pid"
ff_expect "delayed call: SIGTERM takes the mount away" rc=0 -- ff_wait_unmounted "$M" "$FF_WAIT"
ff_reap "$M" 0 && ff_check "delayed call: the daemon exits 0" 0 "$FF_LAST_RC"
ff_expect "delayed call: the reader ends too" rc=0 -- ff_wait_gone "$reader" "$FF_WAIT"

# fusermount3 -u from outside.
ff_mount "$B" "$M"
ff_expect "fusermount3 -u from outside" rc=0 -- fusermount3 -u "$M"
ff_reap "$M" 0 && ff_check "after fusermount3 -u the daemon exits 0" 0 "$FF_LAST_RC"
ff_expect "after fusermount3 -u nothing is mounted" rc=1 -- ff_is_mounted "$M"

# Background mode (never under valgrind: it forks away from it).
ff_expect "background mode: faultfs BACKING MNT returns 0" rc=0 errlines=0 -- "$FAULTFS" "$B" "$M"
FF_MOUNTS+=("$M")   # the trap unmounts it if something below fails
ff_expect "background mode: mounted as soon as it returned (no waiting)" rc=0 -- ff_is_mounted "$M"
ff_expect "background mode: the mount works" out=hello -- cat "$M/f"
ctlname=$(getfattr --only-values -n user.faultfs.ctl "$M" 2>/dev/null)
dpid=$(printf '%s' "$ctlname" | sed -n 's/^faultfs\.\([0-9]*\)\..*/\1/p')
ff_check "background mode: the daemon's pid is found from its ctl name" yes \
	"$([ -n "$dpid" ] && grep -q faultfs "/proc/$dpid/comm" 2>/dev/null && echo yes || echo "no: ctl name '$ctlname'")"
if [ -n "$dpid" ]; then
	kill -TERM "$dpid"
	ff_expect "background mode: SIGTERM unmounts" rc=0 -- ff_wait_unmounted "$M" "$FF_WAIT"
	ff_expect "background mode: the daemon exits" rc=0 -- ff_wait_gone "$dpid" "$FF_WAIT"
fi
ff_expect "background mode again: mounts" rc=0 -- "$FAULTFS" "$B" "$M"
dpid=$(getfattr --only-values -n user.faultfs.ctl "$M" 2>/dev/null | sed -n 's/^faultfs\.\([0-9]*\)\..*/\1/p')
ff_expect "background mode: fusermount3 -u" rc=0 -- fusermount3 -u "$M"
[ -n "$dpid" ] && ff_expect "background mode: the daemon exits after fusermount3 -u" rc=0 -- ff_wait_gone "$dpid" "$FF_WAIT"

# Help and version.  (Under valgrind these run under it too: leaks on these
# paths count.)
# shellcheck disable=SC2206
FF=(${FAULTFS_WRAPPER:-} "$FAULTFS")
ff_expect "--help exits 0 with usage on stdout" rc=0 outhas='usage: faultfs BACKING MOUNTPOINT' errlines=0 -- "${FF[@]}" --help
ff_expect "-h exits 0" rc=0 outhas='usage: faultfs' -- "${FF[@]}" -h
ff_expect "--version exits 0" rc=0 outhas='faultfs 0.1.0' errlines=0 -- "${FF[@]}" --version
ff_expect "-V exits 0" rc=0 outhas='faultfs ' -- "${FF[@]}" -V
ff_expect "ctl --help exits 0" rc=0 outhas='usage: faultfs ctl' -- "${FF[@]}" ctl --help

# Usage and input errors: exit 2, exactly one line on stderr, nothing mounted.
printf 'rules:\n  - op: read\n    path: "**"\n    error: EBUZY\n' >"$WORK/bad-errno.yaml"
printf 'rules:\n  - op: read\n    pathx: "a"\n    error: EIO\n' >"$WORK/bad-key.yaml"
printf 'rules:\n  - op: read\n    path: [unclosed\n' >"$WORK/bad-yaml.yaml"
bad() { # DESC STDERR-SUBSTRING ARGS...
	local desc=$1 sub=$2
	shift 2
	ff_expect "bad input: $desc -> exit 2, one line" rc=2 errlines=1 err="$sub" -- "${FF[@]}" "$@"
}
bad "unknown flag" "--bogus" --bogus
bad "unknown flag after the dirs" "--frobnicate" "$B" "$M" --frobnicate
bad "no arguments" "BACKING and MOUNTPOINT"
bad "one argument" "BACKING and MOUNTPOINT" "$B"
bad "three arguments" "BACKING and MOUNTPOINT" "$B" "$M" extra
bad "--rule error=EBUZY" "EBUZY" "$B" "$M" --rule 'op=read,error=EBUZY'
bad "--rule unknown key" "bogus" "$B" "$M" --rule 'op=read,bogus=1,error=EIO'
bad "--rule unknown op" "frobnicate" "$B" "$M" --rule 'op=frobnicate,error=EIO'
bad "--rule without an effect" "op=read" "$B" "$M" --rule 'op=read'
bad "--rule missing its argument" "--rule" "$B" "$M" --rule
bad "rules file: bad errno names file:line:col and field" "$WORK/bad-errno.yaml:4:12: rule 1: field 'error'" "$B" "$M" --rules "$WORK/bad-errno.yaml"
bad "rules file: unknown key names file:line:col and field" "$WORK/bad-key.yaml:3:5: rule 1: field 'pathx'" "$B" "$M" --rules "$WORK/bad-key.yaml"
bad "rules file: broken YAML names file:line" "$WORK/bad-yaml.yaml:" "$B" "$M" --rules "$WORK/bad-yaml.yaml"
bad "rules file missing" "/nonexistent/rules.yaml" "$B" "$M" --rules /nonexistent/rules.yaml
bad "unknown profile" "nope" "$B" "$M" --profile nope
bad "bad --timeout" "--timeout" "$B" "$M" --timeout abc
bad "nonexistent backing dir" "$WORK/nonexistent" "$WORK/nonexistent" "$M"
bad "nonexistent mountpoint" "$WORK/nomnt" "$B" "$WORK/nomnt"
bad "backing is a file" "$B/f" "$B/f" "$M"
# A bad -o option once printed libfuse's own line and then faultfs's -- two
# lines where the contract says one (found here, fixed in 0967ba9).
bad "unknown -o option" "bogusopt" "$B" "$M" -o bogusopt
ff_expect "after all the bad invocations nothing is mounted" rc=1 -- ff_is_mounted "$M"

ff_expect "ctl on a plain dir: exit 2, one clear line" rc=2 errlines=1 err="not a faultfs mount" -- "${FF[@]}" ctl "$B" list
ff_expect "ctl on a nonexistent dir: exit 2, one line" rc=2 errlines=1 err="$WORK/nonexistent" -- "${FF[@]}" ctl "$WORK/nonexistent" list
ff_expect "ctl without arguments: exit 2, an error line first" rc=2 err="faultfs ctl: expected MOUNTPOINT" -- "${FF[@]}" ctl
ff_expect "ctl with an unknown command: exit 2" rc=2 err="unknown command 'bogus'" -- "${FF[@]}" ctl "$M" bogus
ff_end
