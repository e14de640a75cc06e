#!/bin/bash
# The daemon's options and start-up errors beyond lifecycle's: -d prints
# every FUSE request, -s serves single-threaded, repeated -o options all
# apply, --trace to a path that cannot be written, --rules naming a
# directory or a large file, --profile from FAULTFS_PROFILE_DIR (and names
# that try to leave the profile dirs); and a daemon run by an ordinary user:
# refused cleanly where that user may not open /dev/fuse, and where it may,
# a mount for that user alone whose rules that user may change.
. "$(dirname "$0")/lib.sh"
ff_begin

B=$WORK/back M=$WORK/mnt
mkdir -p "$B" "$M"
echo hello >"$B/f"
chmod 644 "$B/f"
FF=("$FAULTFS")
cd /

# --- start-up errors: exit 2, one line, nothing mounted
ff_expect "--trace into a missing directory" rc=2 errlines=1 \
	errx="faultfs: $WORK/nodir/t.jsonl: cannot open trace file: No such file or directory" -- \
	"${FF[@]}" "$B" "$M" --trace "$WORK/nodir/t.jsonl"
ff_expect "--trace naming a directory" rc=2 errlines=1 err="cannot open trace file: Is a directory" -- \
	"${FF[@]}" "$B" "$M" --trace "$WORK"
ff_expect "--rules naming a directory" rc=2 errlines=1 errx="faultfs: $WORK: cannot read: Is a directory" -- \
	"${FF[@]}" "$B" "$M" --rules "$WORK"
ff_expect "--profile with a slash" rc=2 errlines=1 err="--profile '../profiles/read-only': no such profile" -- \
	"${FF[@]}" "$B" "$M" --profile ../profiles/read-only
ff_expect "--profile starting with a dot" rc=2 errlines=1 err="--profile '.hidden': no such profile" -- \
	"${FF[@]}" "$B" "$M" --profile .hidden
ff_expect "--profile ''" rc=2 errlines=1 err="--profile '': no such profile" -- "${FF[@]}" "$B" "$M" --profile ''
mkdir -p "$WORK/profiles"
printf 'rules:\n  - op: read\n    path: "**"\n    error: EBUZY\n' >"$WORK/profiles/broken.yaml"
ff_expect "a profile from FAULTFS_PROFILE_DIR with a bad rule: file:line:col" rc=2 errlines=1 \
	err="$WORK/profiles/broken.yaml:4:12: rule 1: field 'error'" -- \
	env FAULTFS_PROFILE_DIR="$WORK/profiles" "${FF[@]}" "$B" "$M" --profile broken
ff_expect "nothing got mounted" rc=1 -- ff_is_mounted "$M"

# --- a profile of one's own, a rules file larger than the first read buffer
printf 'rules:\n  - op: read\n    path: f\n    error: EIO\n' >"$WORK/profiles/mine.yaml"
{
	echo "# 300 rules that match nothing here, then one that does"
	echo "rules:"
	for i in $(seq 300); do printf '  - {op: write, path: "never/%03d/**", error: ENOSPC}\n' "$i"; done
	printf '  - {op: getxattr, path: f, error: ENODATA}\n'
} >"$WORK/big.yaml"
ff_expect "the rules file is bigger than 4 KiB" out=yes -- bash -c "[ \$(stat -c %s '$WORK/big.yaml') -gt 8192 ] && echo yes"
FAULTFS_PROFILE_DIR="$WORK/profiles" ff_mount "$B" "$M" --profile mine --rules "$WORK/big.yaml" -s -o noatime -o ro
ff_expect "ctl list: 1 profile rule + 301 file rules" out=302 -- bash -c '"$1" ctl "$2" list | wc -l' _ "$FAULTFS" "$M"
# (counted once the control thread answered: the mount shows before it starts;
# the thread that served that `ctl list` may still be on its way out, so the
# count is taken again, for up to 5 s, until it is 2 or less)
ff_expect "-s: one serving thread plus the control thread" out=2 -- \
	bash -c "for _ in \$(seq 100); do n=\$(ls /proc/$FF_LAST_PID/task | wc -l); [ \$n -le 2 ] && break; sleep 0.05; done; echo \$n"
ff_expect "the profile's rule holds" rc=1 err='Input/output error' -- cat "$M/f"
ff_expect "both -o options apply: ro" rc=1 err='Read-only file system' -- touch "$M/new"
ff_expect "both -o options apply: noatime in the mount options" out=yes -- \
	bash -c "awk -v m='$M' '\$2 == m { print \$4 }' /proc/self/mounts | tr , '\n' | grep -qx noatime && echo yes"
ff_umount "$M"

# --- -d: every FUSE request on stderr
ff_mount "$B" "$M" -d
ff_expect "-d: the mount works" out=hello -- cat "$M/f"
ff_umount "$M"
ff_expect "-d: the daemon printed the requests (LOOKUP, OPEN, READ)" out=3 -- \
	bash -c "grep -oE 'opcode: (LOOKUP|OPEN|READ) ' '${FF_LOG[$M]}' | sort -u | wc -l"

# --- a daemon run by an ordinary user
U=$WORK/user
mkdir -p "$U/back/d" "$U/mnt"
echo mine >"$U/back/f"
chown -R 65534:65534 "$U"
ff_expect "nobody may not open /dev/fuse: exit 1, one line from libfuse" rc=1 errlines=1 \
	errx='faultfs: fuse: failed to open /dev/fuse: Permission denied' -- \
	"${NOBODY[@]}" "$FAULTFS" "$U/back" "$U/mnt" -f
ff_expect "and nothing is mounted" rc=1 -- ff_is_mounted "$U/mnt"
# In this test's own mount namespace, a /dev/fuse that everyone may open
# (as distributions ship it): the daemon then mounts through fusermount3.
if ff_tmpfs "$WORK/dev" mode=755 && mknod -m 666 "$WORK/dev/fuse" c 10 229 &&
	mount --bind "$WORK/dev/fuse" /dev/fuse; then
	FF_OTHER_MOUNTS+=(/dev/fuse)
	FAULTFS_WRAPPER="${NOBODY[*]}" ff_mount "$U/back" "$U/mnt" --rule 'op=read,path=nothing,error=EIO'
	N=("${NOBODY[@]}")
	ff_expect "user mount: the user reads through it" out=mine -- "${N[@]}" cat "$U/mnt/f"
	ff_expect "user mount: root may not enter it (no allow_other)" rc=1 err='Permission denied' -- cat "$U/mnt/f"
	ff_expect "user mount: root's ctl cannot read the attribute" rc=2 errlines=1 \
		errx="faultfs ctl: $U/mnt: Permission denied" -- "$FAULTFS" ctl "$U/mnt" list
	ff_expect "user mount: the user who mounted may add rules" out=2 -- \
		"${N[@]}" "$FAULTFS" ctl "$U/mnt" add 'op=read,path=f,error=EIO'
	ff_expect "user mount: the rule holds" rc=1 err='Input/output error' -- "${N[@]}" cat "$U/mnt/f"
	ff_expect "user mount: and may remove it" rc=0 -- "${N[@]}" "$FAULTFS" ctl "$U/mnt" remove 2
	ff_expect "user mount: files the user creates are the user's" out='65534 600' -- \
		"${N[@]}" bash -c "umask 077 && echo x >'$U/mnt/new' && stat -c '%u %a' '$U/back/new'"
	ff_expect "user mount: chmod of a directory" out=700 -- \
		"${N[@]}" bash -c "chmod 700 '$U/mnt/d' && stat -c %a '$U/back/d'"
	ff_expect "user mount: the directory is still usable" rc=0 -- "${N[@]}" touch "$U/mnt/d/x"
	ff_umount "$U/mnt"
else
	ff_log "note: cannot give this namespace an open /dev/fuse; the user-mount checks are skipped"
fi
ff_end
