#!/bin/bash
# ENOSPC on write: dd and Python writes fail with "No space left on device"
# (errno 28); count=, nth= and after= pick exactly which writes fail; the
# disk-full profile.
. "$(dirname "$0")/lib.sh"
ff_begin

B=$WORK/back M=$WORK/mnt
mkdir -p "$B/full" "$B/seq"
ff_mount "$B" "$M" \
	--rule 'op=write,path=full/*,error=ENOSPC' \
	--rule 'op=write,path=seq/nth,nth=3,error=ENOSPC' \
	--rule 'op=write,path=seq/count,count=2,error=ENOSPC' \
	--rule 'op=write,path=seq/after,after=4,error=ENOSPC'
cd "$M"

ff_expect "dd to full/f fails with No space left on device" rc=1 \
	err="dd: error writing 'full/f': No space left on device" -- dd if=/dev/zero of=full/f bs=4k count=4 status=none
ff_expect "shell echo > full/g fails with ENOSPC" rc=1 err="No space left on device" -- bash -c 'echo hello > full/g'
ff_expect "Python os.write raises OSError 28" rc=0 out="28 No space left on device" -- "$PY" -c '
import os
fd = os.open("full/p", os.O_WRONLY | os.O_CREAT, 0o644)
try:
    os.write(fd, b"x" * 100)
except OSError as e:
    print(e.errno, e.strerror)'
ff_expect "Python f.write + close raises OSError 28" rc=0 out="28" -- "$PY" -c '
try:
    with open("full/q", "w") as f:
        f.write("hello\n")
except OSError as e:
    print(e.errno)'
ff_expect "the failed files are empty in the backing dir" out="0 0 0 0" -- \
	bash -c "stat -c %s $B/full/f $B/full/g $B/full/p $B/full/q | tr '\n' ' ' | sed 's/ \$//'"

# Eight separate write(2)s of 10 bytes each; which ones fail?
PATTERN='
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
res = []
for i in range(8):
    try:
        os.write(fd, b"%09d\n" % i)
        res.append("ok")
    except OSError as e:
        res.append(str(e.errno))
os.close(fd)
print(" ".join(res))'
ff_expect "nth=3: only the 3rd write fails" out="ok ok 28 ok ok ok ok ok" -- "$PY" -c "$PATTERN" seq/nth
ff_expect "nth: the backing file holds the 7 writes that succeeded" out=7 -- bash -c "wc -l < $B/seq/nth"
ff_expect "nth=3: a second writer is not affected (the 3rd call is past)" out="ok ok ok ok ok ok ok ok" -- "$PY" -c "$PATTERN" seq/nth
ff_expect "count=2: the first 2 writes fail, then they work" out="28 28 ok ok ok ok ok ok" -- "$PY" -c "$PATTERN" seq/count
ff_expect "after=4: the first 4 writes work, then all fail" out="ok ok ok ok 28 28 28 28" -- "$PY" -c "$PATTERN" seq/after
cd /
ff_umount "$M"

ff_mount "$B" "$M" --profile disk-full
cd "$M"
ff_expect "disk-full: touch new fails with ENOSPC" rc=1 err="No space left on device" -- touch seq/new
ff_expect "disk-full: mkdir fails with ENOSPC" rc=1 err="No space left on device" -- mkdir newdir
ff_expect "disk-full: appending to an existing file fails with ENOSPC" rc=1 err="No space left on device" -- \
	bash -c 'echo more >> seq/nth'
ff_expect "disk-full: fallocate fails with ENOSPC" rc=1 err="No space left on device" -- fallocate -l 1M seq/nth
ff_expect "disk-full: reading still works" out=8 -- bash -c 'wc -l < seq/nth'
ff_expect "disk-full: deleting still works (cleanup frees space)" rc=0 -- rm seq/count
cd /
ff_umount "$M"
ff_end
