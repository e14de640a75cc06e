#!/bin/bash
# Field failures during upload leave nothing behind and name the path and
# the errno text: a scripts directory the service user cannot write
# (EACCES, as an unprivileged user, since root ignores modes) and a full
# filesystem (ENOSPC, a 64 KiB tmpfs).
. "$(dirname "$0")/lib.sh"
need_root
command -v setpriv >/dev/null || skip "setpriv not installed"

S="$WORK/state"
mkdir -p "$S"
chown 65534:65534 "$S"
printf 'print("hi")\n' >"$WORK/hello.py"
chmod 644 "$WORK/hello.py"

# EACCES: the scripts directory belongs to root, mode 0755.
mkdir -p "$WORK/locked"
chmod 755 "$WORK/locked"
export SCRIPTS_DIR="$WORK/locked"
run_as_nobody 1 --state "$S" upload "$WORK/hello.py"
check "EACCES: message names the path" contains "$ERR" "$WORK/locked/"
check "EACCES: message has the errno text" contains "$ERR" "Permission denied"
check "EACCES: message shows owner and mode" contains "$ERR" "mode 0755"
check "EACCES: one line" [ "$(printf '%s\n' "$ERR" | wc -l)" = 1 ]
check "EACCES: nothing left in the scripts dir" empty_dir "$WORK/locked"
run_as_nobody 0 --state "$S" scripts
check "EACCES: no script recorded" [ -z "$OUT" ]

# ENOSPC: a 64 KiB tmpfs and a 200 KiB script under a 1 MiB cap.
mount_tmpfs "$WORK/full" size=64k,mode=0755
export SCRIPTS_DIR="$WORK/full"
head -c 204800 /dev/zero | tr '\0' '#' >"$WORK/big.py"
run 1 --state "$S" upload "$WORK/big.py" --name big.py
check "ENOSPC: errno text" contains "$ERR" "No space left on device"
check "ENOSPC: names the path" contains "$ERR" "$WORK/full/"
check "ENOSPC: nothing left behind" empty_dir "$WORK/full"
check "ENOSPC: space given back" [ "$(df -k --output=used "$WORK/full" | tail -1 | tr -d ' ')" -le 4 ]
run 0 --state "$S" scripts
check "ENOSPC: no script recorded" [ -z "$OUT" ]
# The same filesystem still takes a script that fits.
run 0 --state "$S" upload "$WORK/hello.py"
check "small upload fits afterwards" [ -f "$WORK/full/$OUT.py" ]

# A read-only mount: EROFS, also nothing recorded.
mount_tmpfs "$WORK/ro" size=64k,ro
export SCRIPTS_DIR="$WORK/ro"
run 1 --state "$S" upload "$WORK/hello.py"
check "EROFS: errno text" contains "$ERR" "Read-only file system"

finish
