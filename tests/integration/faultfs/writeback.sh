#!/bin/bash
# -o writeback_cache (opt-in): data written in small pieces arrives whole and
# in order, appends append, a write-only 0200 file can be written by its
# owner; small writes are gathered into one request; a write rule on a path the rules matched when the file was opened
# still fails write(2) itself (those files bypass the cache); a write rule
# added while a file is open with cached data shows at the latest at
# fsync(2); a read rule added at runtime holds for the very next read.
. "$(dirname "$0")/lib.sh"
ff_begin

B=$WORK/back M=$WORK/mnt
export B
mkdir -p "$B/full" "$B/open" "$B/ro"
chmod 0777 "$B/open"
ff_mount "$B" "$M" -o writeback_cache --rule 'op=write,path=full/*,error=ENOSPC' --trace-all --trace "$WORK/trace.jsonl"
cd "$M"

ff_expect "100 write(2)s of 10 bytes reach the daemon as one WRITE (the cache is on)" out=1 -- bash -c '
	'"$PY"' -c "
import os
fd = os.open(\"many\", os.O_WRONLY | os.O_CREAT, 0o644)
for i in range(100):
    os.write(fd, b\"%09d\\n\" % i)
os.close(fd)" && grep -c "\"op\":\"write\",\"path\":\"many\"" '"$WORK"'/trace.jsonl'

ff_expect "5 MiB written in 1000-byte pieces reads back identical (mount and backing)" out=same -- "$PY" -c '
import hashlib, os
data = os.urandom(5 << 20)
with open("big", "wb", buffering=0) as f:
    for i in range(0, len(data), 1000):
        f.write(data[i:i + 1000])
want = hashlib.sha256(data).hexdigest()
got = [hashlib.sha256(open(p, "rb").read()).hexdigest() for p in ("big", os.environ["B"] + "/big")]
print("same" if got == [want, want] else "differ %s %s %s" % (want, *got))'
ff_expect "appends through two opens land in order" out="a b" -- \
	bash -c 'echo a >> app; echo b >> app; tr "\n" " " < '"$B"'/app | sed "s/ \$//"'
ff_expect "overwrite in the middle of a page keeps the rest" out="0123XY6789" -- \
	bash -c 'printf 0123456789 > mid; printf XY | dd of=mid bs=1 seek=4 conv=notrunc status=none; cat '"$B"'/mid'
ff_expect "nobody writes a 0200 file it owns (write-only open)" out="secret" -- \
	bash -c 'chown nobody open && setpriv --reuid=nobody --regid=nogroup --clear-groups bash -c "umask 077; printf secret > open/wo; chmod 0200 open/wo; printf secret > open/wo" && cat '"$B"'/open/wo'
ff_expect "a write rule matched at open fails write(2) itself" out="28 at write" -- "$PY" -c '
import os
fd = os.open("full/f", os.O_WRONLY | os.O_CREAT, 0o644)
try:
    os.write(fd, b"x" * 100)
    print("write ok")
except OSError as e:
    print(e.errno, "at write")'
ff_expect "a write rule added while the file is open shows by fsync" out="ok 28" -- "$PY" -c '
import os, subprocess, sys
fd = os.open("late", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
res = []
try:
    os.write(fd, b"y" * 100)
    res.append("ok")
except OSError as e:
    res.append(str(e.errno))
subprocess.run([os.environ["FAULTFS"], "ctl", ".", "add", "op=write,path=late,error=ENOSPC"], check=True, stdout=subprocess.DEVNULL)
try:
    os.write(fd, b"z" * 100)
    os.fsync(fd)
    res.append("fsync ok")
except OSError as e:
    res.append(str(e.errno))
try:
    os.close(fd)
except OSError:
    pass
print(" ".join(res))'
printf 'hello\n' >"$B/ro/r"
ff_expect "a cached file reads fine" out=hello -- cat ro/r
ff_ctl "$M" add 'op=read,path=ro/r,error=EIO' >/dev/null
ff_expect "a read rule added at runtime holds for the next read" rc=1 err="Input/output error" -- cat ro/r
ff_ctl "$M" clear >/dev/null
ff_expect "and is gone after ctl clear" out=hello -- cat ro/r
cd /
ff_umount "$M"
ff_end
