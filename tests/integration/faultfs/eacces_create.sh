#!/bin/bash
# EACCES on create and mkdir: touch, mkdir, shell redirection, cp and Python
# open(..., 'w') report "Permission denied", and nothing appears in the
# backing directory.
. "$(dirname "$0")/lib.sh"
ff_begin

B=$WORK/back M=$WORK/mnt
mkdir -p "$B/ro" "$B/rw"
echo old >"$B/ro/existing"
ff_mount "$B" "$M" --rule 'op=create,path=ro/*,error=EACCES' --rule 'op=mkdir,path=ro/**,error=EACCES'
cd "$M"

ff_expect "touch ro/f: Permission denied" rc=1 errx="touch: cannot touch 'ro/f': Permission denied" -- touch ro/f
ff_expect "mkdir ro/d: Permission denied" rc=1 errx="mkdir: cannot create directory 'ro/d': Permission denied" -- mkdir ro/d
ff_expect "mkdir -p ro/a/b: Permission denied" rc=1 err="Permission denied" -- mkdir -p ro/a/b
ff_expect "shell redirection > ro/r: Permission denied" rc=1 err="ro/r: Permission denied" -- bash -c 'echo x > ro/r'
ff_expect "cp into ro/: Permission denied" rc=1 err="Permission denied" -- cp /etc/hostname ro/copy
ff_expect "Python open('ro/p', 'w') raises PermissionError 13" rc=0 \
	out="PermissionError 13 [Errno 13] Permission denied: 'ro/p'" -- "$PY" -c '
try:
    open("ro/p", "w")
except OSError as e:
    print(type(e).__name__, e.errno, e)'
ff_expect "Python os.mkdir('ro/pd') raises PermissionError 13" rc=0 out="PermissionError 13" -- "$PY" -c '
import os
try:
    os.mkdir("ro/pd")
except OSError as e:
    print(type(e).__name__, e.errno)'
ff_expect "nothing was created in the backing ro/ (only the existing file)" out=existing -- ls -A "$B/ro"
ff_expect "ls on the mount agrees" out=existing -- ls -A ro
ff_expect "reading the existing file works" out=old -- cat ro/existing
ff_expect "control: touch rw/f works" rc=0 -- touch rw/f
ff_expect "control: mkdir rw/d works" rc=0 -- mkdir rw/d
ff_expect "control: both exist in the backing dir" out=$'d\nf' -- ls -A "$B/rw"
cd /
ff_expect "stats: the create rule fired 4 times, the mkdir rule 3 times" out='4 3' -- bash -c \
	"'$FAULTFS' ctl '$M' stats --json | $PY -c 'import json,sys; r=json.load(sys.stdin)[\"rules\"]; print(r[0][\"fired\"], r[1][\"fired\"])'"
ff_umount "$M"
ff_end
