#!/bin/bash
# A per-path `op=exec,error=EACCES` rule behaves like a real `tmpfs -o noexec`
# for everything a script runner does (./script, sh script, test -x, execv of
# a script and of a binary), except mmap(PROT_EXEC) through ld.so, which only
# a whole-mount `faultfs -o noexec` blocks -- as tmpfs noexec does.
. "$(dirname "$0")/lib.sh"
ff_begin

LDSO=/lib64/ld-linux-x86-64.so.2
[ -x "$LDSO" ] || LDSO=$(ls /lib*/ld-linux*.so.* 2>/dev/null | head -n1)

ff_mount "$WORK/back" "$WORK/rule" --rule 'op=exec,path=bin/*,error=EACCES'
ff_tmpfs "$WORK/tmpfs" noexec,size=16m,mode=0755
ff_mount "$WORK/back-nx" "$WORK/nx" -o noexec

setup_dir() {
	mkdir -p "$1"
	printf '#!/bin/sh\necho ran\n' >"$1/script"
	chmod 0755 "$1/script"
	cp /bin/true "$1/true"
	chmod 0755 "$1/true"
}
setup_dir "$WORK/rule/bin"     # under the rule
setup_dir "$WORK/rule/free"    # the same files outside the rule's path
setup_dir "$WORK/tmpfs/bin"
setup_dir "$WORK/nx/bin"

EXECV=$WORK/execv.py
cat >"$EXECV" <<'EOF'
import os, sys
try:
    os.execv(sys.argv[1], [sys.argv[1]])
except OSError as e:
    print(type(e).__name__, e.errno, e.strerror)
    sys.exit(3)
EOF

# Control: outside the rule's path everything runs.
cd "$WORK/rule/free"
ff_expect "control: ./script runs outside the rule's path" rc=0 out=ran -- bash -c ./script
ff_expect "control: ./true runs outside the rule's path" rc=0 -- bash -c ./true
ff_expect "control: test -x is true outside the rule's path" rc=0 -- test -x script

# Each probe runs with the same relative command line in both directories,
# so exit codes and messages must be byte-for-byte equal.
probe() { # DIR -> "rc|stdout|stderr" lines
	cd "$1" || return
	local cmd
	for cmd in './script' 'sh script' 'test -x script; echo $?' 'test -x true; echo $?' './true' \
		"$PY $EXECV ./script" "$PY $EXECV ./true"; do
		ff_run bash -c "$cmd"
		printf '%s => rc=%s out=%s err=%s\n' "$cmd" "$RUN_RC" "$RUN_OUT" "$RUN_ERR"
	done
}
tmpfs_res=$(probe "$WORK/tmpfs/bin")
rule_res=$(probe "$WORK/rule/bin")
nx_res=$(probe "$WORK/nx/bin")
printf '# tmpfs noexec:\n%s\n' "$tmpfs_res"
ff_check "per-path exec rule behaves like tmpfs noexec (all probes)" "$tmpfs_res" "$rule_res"
ff_check "faultfs -o noexec behaves like tmpfs noexec (all probes)" "$tmpfs_res" "$nx_res"

# And the absolute facts, on each of the three.
for d in "$WORK/tmpfs/bin" "$WORK/rule/bin" "$WORK/nx/bin"; do
	cd "$d"
	ff_expect "$d: ./script is refused with 126 Permission denied" rc=126 \
		errx='bash: line 1: ./script: Permission denied' -- bash -c ./script
	ff_expect "$d: sh script runs" rc=0 out=ran -- sh script
	ff_expect "$d: test -x script is false" rc=1 -- test -x script
	ff_expect "$d: Python os.execv(script) raises PermissionError errno 13" rc=3 \
		out='PermissionError 13 Permission denied' -- "$PY" "$EXECV" ./script
	ff_expect "$d: ./true (a copied binary) is refused with EACCES" rc=126 \
		errx='bash: line 1: ./true: Permission denied' -- bash -c ./true
	ff_expect "$d: Python os.execv(true) raises PermissionError errno 13" rc=3 \
		out='PermissionError 13 Permission denied' -- "$PY" "$EXECV" ./true
done

# The documented difference: ld.so maps the binary with PROT_EXEC itself.
cd "$WORK/tmpfs/bin"
ff_run "$LDSO" ./true
tmpfs_ld="rc=$RUN_RC err=$RUN_ERR"
ff_expect "tmpfs noexec: ld.so ./true fails (mmap PROT_EXEC refused)" rc=127 \
	err='failed to map segment from shared object' -- "$LDSO" ./true
cd "$WORK/nx/bin"
ff_run "$LDSO" ./true
ff_check "faultfs -o noexec: ld.so ./true fails exactly like tmpfs noexec" "$tmpfs_ld" "rc=$RUN_RC err=$RUN_ERR"
cd "$WORK/rule/bin"
ff_expect "per-path exec rule: ld.so ./true runs (documented limitation)" rc=0 -- "$LDSO" ./true

# The rule's faults are in the trace: exec-opens and access(X_OK).
cd /
ff_run "$FAULTFS" ctl "$WORK/rule" stats --json
fired=$(printf '%s' "$RUN_OUT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["rules"][0]["fired"])')
ff_check "the exec rule fired (stats shows > 0)" yes "$([ "${fired:-0}" -gt 0 ] && echo yes || echo "no: $RUN_OUT")"

# noexec never takes away directory search: with an exec rule on every path
# (the noexec-tmp profile), cd, test -x on a directory and mkdir -p through
# it still work, as on the tmpfs.
ff_mount "$WORK/back-all" "$WORK/all" --profile noexec-tmp
mkdir -p "$WORK/all/d/e"
ff_expect "exec rule on **: test -x on a directory is true, as on tmpfs noexec" rc=0 -- test -x "$WORK/all/d"
ff_expect "exec rule on **: cd into a directory works" rc=0 -- sh -c "cd '$WORK/all/d/e' && mkdir -p f/g && test -d f/g"
ff_expect "tmpfs noexec: test -x on a directory is true too" rc=0 -- test -x "$WORK/tmpfs/bin"

ff_umount "$WORK/all"
ff_umount "$WORK/rule"
ff_umount "$WORK/nx"
ff_end
