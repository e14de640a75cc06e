#!/bin/bash
# Operations and corners the other scripts leave out: flock (held in the
# backing file), lseek SEEK_DATA/SEEK_HOLE, copy_file_range (with short and
# error rules), fsync/fdatasync of files and directories, a directory read
# twice through one descriptor, the control attribute (read-only, ERANGE
# for a small buffer), xattrs on symlinks, trace lines for operations that
# fail by themselves and for errno numbers without a name, a file name that
# is not UTF-8, paths longer than PATH_MAX, and a bind mount in the backing
# tree that leads back to its root.
. "$(dirname "$0")/lib.sh"
ff_begin

B=$WORK/back M=$WORK/mnt
mkdir -p "$B/dir"
echo hello >"$B/f"
ln -s f "$B/link0"
mkdir -p "$B/rd"
for i in 1 2 3 4 5; do echo "$i" >"$B/dir/e$i"; done
ff_mount "$B" "$M" --trace-all \
	--rule 'op=write,path=cfr-short,short=3' \
	--rule 'op=write,path=cfr-err,error=ENOSPC' \
	--rule 'op=read,path=e200,error=200' \
	--rule 'op=read,path=bad*,error=EIO' \
	--rule 'op=rename,path=nothing,error=EIO' \
	--rule 'op=readdir,path=rd,nth=2,error=EIO'
cd "$M"

# --- flock: the lock is taken on the backing file
cat >"$WORK/hold.py" <<'PYEOF'
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
open(sys.argv[2], "w").write("locked\n")
time.sleep(30)
PYEOF
ff_expect "flock -n on a free file" rc=0 -- flock -n f true
ff_bg "$PY" "$WORK/hold.py" "$M/f" "$WORK/locked"
holder=$FF_LAST_BG
ff_wait_for "$FF_WAIT" test -s "$WORK/locked"
ff_expect "flock -n while another process holds it (through the mount)" rc=1 -- flock -n f true
ff_expect "the backing file is locked too" rc=1 -- flock -n "$B/f" true
kill "$holder"
wait "$holder" 2>/dev/null
ff_expect "once the holder is gone, flock -n works" rc=0 -- ff_wait_for "$FF_WAIT" flock -n f true

# --- lseek SEEK_DATA / SEEK_HOLE answer as the backing file does
"$PY" -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.ftruncate(fd, 4 << 20)
os.pwrite(fd, b"x" * 4096, 2 << 20)
os.close(fd)' "$B/sparse"
seeks='
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
out = [os.lseek(fd, 0, os.SEEK_DATA), os.lseek(fd, 2 << 20, os.SEEK_HOLE)]
try:
    os.lseek(fd, 8 << 20, os.SEEK_DATA)
    out.append("no error")
except OSError as e:
    out.append(errno.errorcode[e.errno])
print(*out)'
ff_run "$PY" -c "$seeks" "$B/sparse"
want=$RUN_OUT
ff_expect "SEEK_DATA, SEEK_HOLE and SEEK_DATA past the end match the backing file ($want)" out="$want" -- \
	"$PY" -c "$seeks" "$M/sparse"
ff_check "the backing file really is sparse here (else the check above proves little)" "ENXIO" "${want##* }"

# --- copy_file_range
printf 'abcdefghij' >"$B/src"
cfr='
import os, sys
src = os.open(sys.argv[1], os.O_RDONLY)
dst = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
try:
    print(os.copy_file_range(src, dst, 10))
except OSError as e:
    print(e.strerror)'
ff_expect "copy_file_range copies 10 bytes" out=10 -- "$PY" -c "$cfr" src cfr-ok
ff_expect "the copy is exact" out=abcdefghij -- cat cfr-ok
ff_expect "copy_file_range under short=3 copies 3" out=3 -- "$PY" -c "$cfr" src cfr-short
ff_expect "and 3 bytes arrive" out=abc -- cat "$B/cfr-short"
ff_expect "copy_file_range under error=ENOSPC" out='No space left on device' -- "$PY" -c "$cfr" src cfr-err
ff_expect "nothing arrives" out=0 -- stat -c %s "$B/cfr-err"

# --- fsync and fdatasync of a file and a directory; a directory read twice
ff_expect "fsync/fdatasync of a file and of a directory" out=ok -- "$PY" -c '
import os
fd = os.open("f", os.O_RDWR); os.fsync(fd); os.fdatasync(fd); os.close(fd)
fd = os.open("dir", os.O_RDONLY | os.O_DIRECTORY); os.fsync(fd); os.fdatasync(fd); os.close(fd)
print("ok")'
ff_expect "a directory listed twice through one descriptor (rewound) gives the same names" \
	out='e1 e2 e3 e4 e5|e1 e2 e3 e4 e5' -- "$PY" -c '
import os
fd = os.open("dir", os.O_RDONLY | os.O_DIRECTORY)
a = sorted(os.listdir(fd)); b = sorted(os.listdir(fd))
print(" ".join(a) + "|" + " ".join(b))'

# --- errors the backing filesystem gives, passed through
ff_expect "truncate beyond the largest file size: EFBIG, as on the backing fs" rc=1 err='File too large' -- truncate -s 100P f
ff_expect "fallocate beyond it: EFBIG" rc=1 err='File too large' -- fallocate -o 0 -l 100P f
ff_expect "f is unchanged" out=6 -- stat -c %s f
chmod 644 "$B/f"
utime='
import errno, os, sys
try:
    os.utime(sys.argv[1], (1000, 1000), follow_symlinks=False)
    print("no error")
except OSError as e:
    print(errno.errorcode[e.errno])'
ff_expect "nobody may not set the times of root's file (EPERM, as on the backing fs)" out=EPERM -- \
	"${NOBODY[@]}" "$PY" -c "$utime" "$M/f"
ff_expect "nor of root's symlink itself" out=EPERM -- "${NOBODY[@]}" "$PY" -c "$utime" "$M/link0"
ff_expect "the backing fs says the same (file)" out=EPERM -- "${NOBODY[@]}" "$PY" -c "$utime" "$B/f"
ff_expect "the backing fs says the same (symlink)" out=EPERM -- "${NOBODY[@]}" "$PY" -c "$utime" "$B/link0"
ff_expect "the times are unchanged" out=no -- bash -c "[ \$(stat -c %Y '$B/f') = 1000 ] && echo yes || echo no"
ff_expect "a readdir rule with nth=2 fails the readdir after opendir" out='EIO 2' -- "$PY" -c '
import errno, os
try:
    os.listdir("rd")
    print("no error")
except OSError as e:
    print(errno.errorcode[e.errno], 2)'

# --- the control attribute and xattrs on symlinks
ff_expect "the control attribute cannot be set" rc=1 err='Operation not permitted' -- setfattr -n user.faultfs.ctl -v x "$M"
ff_expect "reading it into a 4-byte buffer: ERANGE; with a big one: the name" out='ERANGE faultfs.' -- "$PY" -c '
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(256)
r = libc.getxattr(sys.argv[1].encode(), b"user.faultfs.ctl", buf, 4)
first = errno.errorcode[ctypes.get_errno()] if r < 0 else "no error"
r = libc.getxattr(sys.argv[1].encode(), b"user.faultfs.ctl", buf, 256)
print(first, buf.raw[:r].decode()[:8])' "$M"
ln -s f "$B/link"
ff_expect "trusted.* xattr on a symlink: set refused" rc=1 err='Operation not supported' -- setfattr -h -n trusted.t -v 1 link
ff_expect "trusted.* xattr on a symlink: remove refused" rc=1 err='Operation not supported' -- setfattr -h -x trusted.t link
ff_expect "removing an xattr that is not there" rc=1 err='No such attribute' -- setfattr -x user.nothing f

# --- trace lines
: >"$B/e200"
ff_expect "a rule with an errno that has no name (200)" rc=1 err='Unknown error 200' -- cat e200
ff_expect "an operation that fails by itself" rc=1 err='No such file or directory' -- cat missing
bad=$'bad\xffname'
echo x >"$B/$bad"
ff_expect "a fault on a file whose name is not UTF-8" rc=1 err='Input/output error' -- cat "$bad"
ff_run "$FAULTFS" ctl "$M" trace
trace_out=$RUN_OUT
ff_expect "trace: 'errno 200', ENOENT for the lookup of missing, the non-UTF-8 name with '?'" \
	out='read e200 errno 200|lookup missing ENOENT|read bad?name EIO' -- "$PY" -c '
import json, sys
recs = [json.loads(l) for l in sys.argv[1].splitlines()]
def find(op, path):
    m = [r for r in recs if r["op"] == op and r["path"] == path]
    return "%s %s %s" % (op, path, m[-1]["result"]) if m else "no %s %s" % (op, path)
print("|".join([find("read", "e200"), find("lookup", "missing"), find("read", "bad?name")]))' "$trace_out"

# --- paths longer than PATH_MAX: served, traced as "?"
comp=$(printf 'd%.0s' $(seq 250))
"$PY" -c '
import os, sys
os.chdir(sys.argv[1])
for i in range(18):
    os.mkdir(sys.argv[2]); os.chdir(sys.argv[2])
open("leaf", "w").write("deep\n")' "$B" "$comp"
deepwalk='
import os, sys
os.chdir(sys.argv[1])
for i in range(18): os.chdir(sys.argv[2])
print(open("leaf").read().strip())
os.rename("leaf", "leaf2")
print(open("leaf2").read().strip())'
ff_expect "a file 4500 bytes deep reads and renames through the mount" out=$'deep\ndeep' -- "$PY" -c "$deepwalk" "$M" "$comp"
ff_run "$FAULTFS" ctl "$M" trace
ff_expect "its trace lines carry path '?' (rename has no path2)" out=yes -- "$PY" -c '
import json, sys
recs = [json.loads(l) for l in sys.argv[1].splitlines()]
ren = [r for r in recs if r["op"] == "rename" and r["path"] == "?"]
print("yes" if ren and "path2" not in ren[-1] and ren[-1]["result"] == "ok" else "no: %r" % recs[-5:])' "$RUN_OUT"

# --- a bind mount inside the backing tree that leads back to its root
mkdir -p "$B/loop"
if mount --bind "$B" "$B/loop"; then
	FF_OTHER_MOUNTS+=("$B/loop")
	ff_expect "loop is the root again (same inode number)" out="$(stat -c %i "$M")" -- stat -c %i "$M/loop"
	ff_expect "and lists the root's entries" rc=0 outhas='sparse' -- ls "$M/loop"
	ff_expect "a file through it reads" out=hello -- cat "$M/loop/f"
else
	ff_log "note: cannot bind-mount here; the loop checks are skipped"
fi
cd /
ff_umount "$M"
ff_end
