#!/bin/bash
# EBUSY on rmdir/rename of a venv dir behaves like a busy Docker volume
# mountpoint: `rm -rf venv` empties it and then fails on the directory
# itself with "Device or resource busy"; `mv venv venv.old` fails too.
. "$(dirname "$0")/lib.sh"
ff_begin

B=$WORK/back M=$WORK/mnt

make_venv() { # DIR: a venv-like tree (a real one from python3 -m venv, plus a package)
	"$PY" -m venv --without-pip "$1" &&
		mkdir -p "$1/lib/python3/site-packages/pkg/sub" &&
		echo 'X = 1' >"$1/lib/python3/site-packages/pkg/__init__.py" &&
		echo data >"$1/lib/python3/site-packages/pkg/sub/data.txt"
}

check_busy_venv() { # LABEL: runs the checks in the current dir (on the mount)
	local l=$1
	ff_true "$l: python3 -m venv venv works on the mount" make_venv venv
	ff_expect "$l: the venv's python runs" rc=0 out="$PWD/venv" -- venv/bin/python -c 'import sys; print(sys.prefix)'
	ff_expect "$l: rm -rf venv fails on the directory itself" rc=1 \
		errx="rm: cannot remove 'venv': Device or resource busy" -- rm -rf venv
	ff_expect "$l: venv itself is still there" rc=0 -- test -d venv
	ff_expect "$l: ... and it is empty" rc=0 out='' -- ls -A venv
	ff_true "$l: refill the venv" make_venv venv
	ff_expect "$l: mv venv venv.old fails with EBUSY" rc=1 err='Device or resource busy' -- mv venv venv.old
	ff_expect "$l: venv is unchanged after the failed mv" rc=0 out=pyvenv.cfg -- bash -c 'ls venv | grep pyvenv'
	ff_expect "$l: venv.old does not exist" rc=1 -- test -e venv.old
	ff_expect "$l: Python shutil.rmtree raises [Errno 16] Device or resource busy" rc=0 \
		out="16 [Errno 16] Device or resource busy: 'venv'" -- "$PY" -c '
import shutil
try:
    shutil.rmtree("venv")
except OSError as e:
    print(e.errno, e)'
	ff_expect "$l: after rmtree venv exists and is empty" rc=0 out='' -- ls -A venv
	ff_expect "$l: os.rename onto the (empty) venv fails with EBUSY" rc=0 out=16 -- bash -c \
		"mkdir -p other && $PY -c '
import os
try:
    os.rename(\"other\", \"venv\")
except OSError as e:
    print(e.errno)'"
	ff_expect "$l: nested a/b/venv is busy too" rc=1 err="cannot remove 'a/b/venv': Device or resource busy" -- \
		bash -c 'mkdir -p a/b/venv/x && touch a/b/venv/x/f && rm -rf a/b/venv'
	ff_expect "$l: ... and emptied" rc=0 out='' -- ls -A a/b/venv
	ff_expect "$l: control: a dir not named venv is removed" rc=0 -- bash -c 'mkdir -p venv2/x && rm -rf venv2 && ! test -e venv2'
	ff_expect "$l: control: mv of another dir works" rc=0 -- bash -c 'mkdir -p d1 && mv d1 d2 && test -d d2'
}

ff_mount "$B" "$M" --rule 'op=rmdir|rename,path=**/venv,error=EBUSY'
cd "$M"
check_busy_venv "rule **/venv"
ff_expect "the backing venv dir exists and is empty" rc=0 out='' -- ls -A "$B/venv"
cd /
ff_run "$FAULTFS" ctl "$M" stats --json
ff_expect "stats: the EBUSY rule fired 5 times (rm, mv, rmtree, rename onto, nested rm)" rc=0 out=5 -- \
	"$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["rules"][0]["fired"])' "$RUN_OUT"
ff_umount "$M"

rm -rf "$B"
ff_mount "$B" "$M" --profile docker-venv-busy
cd "$M"
check_busy_venv "profile docker-venv-busy"
cd /
ff_umount "$M"

# The issue's own example, with a leading slash: rule paths are relative to
# the mount root, so /venv is venv.
rm -rf "$B"
ff_mount "$B" "$M" --rule 'op=rmdir|rename,path=/venv,error=EBUSY'
ff_expect "path=/venv is listed as the mount-relative venv" out=$'1\top=rmdir|rename,path=venv,error=EBUSY' -- "$FAULTFS" ctl "$M" list
cd "$M"
ff_true "make a venv-like tree" bash -c 'mkdir -p venv/bin sub/venv && touch venv/bin/python'
ff_expect "path=/venv: rm -rf venv fails on the directory" rc=1 errx="rm: cannot remove 'venv': Device or resource busy" -- rm -rf venv
ff_expect "path=/venv: only the top-level venv: sub/venv is removable" rc=0 -- rmdir sub/venv
cd /
ff_umount "$M"
ff_end
