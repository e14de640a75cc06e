#!/bin/bash
# Passthrough fidelity: with no rules, the mount behaves like the backing
# filesystem for what a script runner and its tools do.
. "$(dirname "$0")/lib.sh"
ff_begin

B=$WORK/back M=$WORK/mnt
mkdir -p "$B"
ff_mount "$B" "$M"
cd "$M"

# --- python3 -m venv and its python
ff_true "python3 -m venv venv" "$PY" -m venv --without-pip venv
ff_expect "the venv's python runs with the venv as prefix" out="$M/venv" -- venv/bin/python -c 'import sys; print(sys.prefix)'
ff_expect "the venv's python symlink reads back" outhas=python -- readlink venv/bin/python
ff_expect "the venv is in the backing dir" rc=0 -- test -f "$B/venv/pyvenv.cfg"
ff_true "python3 -m venv with pip (ensurepip installs pip onto the mount)" "$PY" -m venv venvpip
ff_expect "the venv's pip runs from the venv" rc=0 outhas="$M/venvpip/lib/python3" -- venvpip/bin/python -m pip --version
ff_expect "pip list sees pip installed in the venv" rc=0 outhas=pip -- venvpip/bin/python -m pip list --disable-pip-version-check

# --- git init + commit
ff_true "git init, add, commit" bash -c 'git init -q repo && cd repo && echo "print(1)" > a.py && mkdir -p d && echo x > d/b &&
	git add . && git -c user.name=t -c user.email=t@example.org commit -q -m first &&
	echo y >> d/b && git -c user.name=t -c user.email=t@example.org commit -q -am second'
ff_expect "git log shows 2 commits" out=2 -- git -C repo rev-list --count HEAD
ff_expect "git fsck is clean" rc=0 -- git -C repo fsck --no-progress
ff_expect "git status is clean" out='' -- git -C repo status --porcelain
ff_expect "the backing copy of the repo agrees" out=2 -- git -C "$B/repo" rev-list --count HEAD

# --- tar x of an archive with symlinks, hard links, modes
src=$WORK/src
mkdir -p "$src/tree/sub/deeper" "$src/tree/empty"
echo one >"$src/tree/one"
printf '#!/bin/sh\necho x\n' >"$src/tree/sub/run.sh"
chmod 750 "$src/tree/sub/run.sh"
head -c 300000 /dev/urandom >"$src/tree/sub/deeper/blob"
ln -s ../one "$src/tree/sub/link-to-one"
ln -s sub/deeper "$src/tree/dirlink"
ln -s nowhere "$src/tree/dangling"
ln "$src/tree/one" "$src/tree/hard-one"
chmod 700 "$src/tree/sub/deeper"
touch -d '2001-02-03 04:05:06' "$src/tree/one"
tar -C "$src" -cf "$WORK/tree.tar" tree
listing() { # DIR: names, types, modes, sizes, link targets, link counts, mtimes of files
	(cd "$1" && find . -printf '%p %y %m %s %l %n\n' | sort)
}
mkdir -p untar
ff_true "tar xf on the mount" tar -C untar -xf "$WORK/tree.tar"
ff_check "tar x: names, types, modes, sizes, link targets, link counts match the source" "$(listing "$src/tree")" "$(listing untar/tree)"
ff_expect "tar x: diff -r against the source is empty" rc=0 out='' -- diff -r --no-dereference "$src/tree" untar/tree
ff_expect "tar x: the hard link shares its inode" rc=0 -- test untar/tree/one -ef untar/tree/hard-one

# --- cp -a + diff -r, both ways
ff_true "cp -a tree onto the mount" cp -a "$src/tree" copy
ff_check "cp -a: listing matches the source" "$(listing "$src/tree")" "$(listing copy)"
ff_expect "cp -a: diff -r is empty" rc=0 out='' -- diff -r --no-dereference "$src/tree" copy
ff_expect "cp -a: mtimes are kept (utimens)" out="$(stat -c %Y "$src/tree/one")" -- stat -c %Y copy/one
ff_true "cp -a back off the mount" cp -a copy "$WORK/back-out"
ff_check "cp -a off the mount: listing matches" "$(listing "$src/tree")" "$(listing "$WORK/back-out")"
ff_true "cp -a of a real tree (python's json package)" cp -a /usr/lib/python3.11/json pyjson
ff_expect "cp -a of /usr/lib/python3.11/json: diff -r is empty" rc=0 out='' -- diff -r --no-dereference /usr/lib/python3.11/json pyjson

# --- rm -rf
ff_expect "rm -rf of a tree" rc=0 -- rm -rf copy pyjson
ff_expect "rm -rf: gone on the mount and in the backing dir" rc=1 -- bash -c "test -e copy || test -e '$B/copy' || test -e '$B/pyjson'"

# --- 10 MiB written and read back with a checksum
ff_expect "Python writes 10 MiB and reads it back with the same sha256" out=same -- "$PY" -c '
import hashlib, os
data = os.urandom(10 << 20)
with open("big", "wb") as f:
    for i in range(0, len(data), 65536 + 17):
        f.write(data[i:i + 65536 + 17])
    f.flush(); os.fsync(f.fileno())
with open("big", "rb") as f:
    back = f.read()
print("same" if hashlib.sha256(back).digest() == hashlib.sha256(data).digest() and len(back) == 10 << 20 else "differ")'
ff_check "the backing file has the same sha256 as the mount's" "$(sha256sum <"$B/big")" "$(sha256sum <big)"
ff_expect "pread/pwrite in the middle of the file" out=ok -- "$PY" -c '
import os
fd = os.open("big", os.O_RDWR)
os.pwrite(fd, b"MIDDLE", 5 << 20)
print("ok" if os.pread(fd, 6, 5 << 20) == b"MIDDLE" else "bad")'

# --- renameat2: RENAME_NOREPLACE and RENAME_EXCHANGE
cat >"$WORK/renameat2.py" <<'PYEOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
flags = {"noreplace": 1, "exchange": 2, "none": 0}[sys.argv[1]]
r = libc.renameat2(AT_FDCWD, sys.argv[2].encode(), AT_FDCWD, sys.argv[3].encode(), flags)
print("ok" if r == 0 else os.strerror(ctypes.get_errno()))
PYEOF
echo A >ra
echo B >rb
ff_expect "RENAME_NOREPLACE onto an existing file fails with File exists" out='File exists' -- "$PY" "$WORK/renameat2.py" noreplace ra rb
ff_expect "... and both files are unchanged" out=$'A\nB' -- cat ra rb
ff_expect "RENAME_NOREPLACE to a new name works" out=ok -- "$PY" "$WORK/renameat2.py" noreplace ra rc
ff_expect "... ra is gone, rc has A" out='A' -- bash -c 'test ! -e ra && cat rc'
ff_expect "RENAME_EXCHANGE swaps two files" out=ok -- "$PY" "$WORK/renameat2.py" exchange rb rc
ff_expect "... rb now has A, rc has B (on the mount)" out=$'A\nB' -- cat rb rc
ff_expect "... and in the backing dir" out=$'A\nB' -- cat "$B/rb" "$B/rc"
mkdir -p xd
ff_expect "RENAME_EXCHANGE of a file and a dir" out=ok -- "$PY" "$WORK/renameat2.py" exchange rb xd
ff_expect "... types swapped" out='directory regular file' -- bash -c 'echo $(stat -c %F rb) $(stat -c %F xd)'
ff_expect "plain rename over an existing file replaces it" rc=0 out=B -- bash -c 'mv rc xd && cat xd'

# --- hard links, symlinks
echo L >lnk
ff_true "ln lnk lnk2" ln lnk lnk2
ff_expect "link count is 2 on the mount" out=2 -- stat -c %h lnk
ff_expect "link count is 2 in the backing dir" out=2 -- stat -c %h "$B/lnk"
ff_expect "both names are the same inode" rc=0 -- test lnk -ef lnk2
ff_expect "the mount's inode numbers match the backing's" out="$(stat -c %i "$B/lnk")" -- stat -c %i lnk2
ff_true "write through one name" bash -c 'echo M >> lnk2'
ff_expect "read through the other" out=$'L\nM' -- cat lnk
ff_true "rm one name" rm lnk2
ff_expect "link count back to 1" out=1 -- stat -c %h lnk
ff_true "ln -s" ln -s some/where sym
ff_expect "readlink on the mount" out=some/where -- readlink sym
ff_expect "readlink in the backing dir" out=some/where -- readlink "$B/sym"
ff_expect "lstat says symlink" out='symbolic link' -- stat -c %F sym
ff_true "ln -s to a file" ln -s lnk sym2
ff_expect "reading through a symlink" out=$'L\nM' -- cat sym2

# --- chmod, chown, truncate, touch -d (utimens)
echo data >attrs
ff_true "chmod 640" chmod 640 attrs
ff_expect "mode 640 on the mount and in the backing dir" out='640 640' -- bash -c "echo \$(stat -c %a attrs) \$(stat -c %a '$B/attrs')"
ff_true "chown 65534:65534" chown 65534:65534 attrs
ff_expect "owner 65534:65534 on the mount and in the backing dir" out='65534:65534 65534:65534' -- \
	bash -c "echo \$(stat -c %u:%g attrs) \$(stat -c %u:%g '$B/attrs')"
ff_true "truncate -s 12345" truncate -s 12345 attrs
ff_expect "size 12345 on both" out='12345 12345' -- bash -c "echo \$(stat -c %s attrs) \$(stat -c %s '$B/attrs')"
ff_true "truncate -s 2" truncate -s 2 attrs
ff_expect "content after truncating to 2 bytes" out=da -- cat attrs
ff_true "touch -d 2001-02-03 04:05:06" touch -d '2001-02-03 04:05:06' attrs
ff_expect "mtime 981173106 on both" out='981173106 981173106' -- bash -c "echo \$(stat -c %Y attrs) \$(stat -c %Y '$B/attrs')"
ff_true "touch -a -d (atime only)" touch -a -d '2002-01-01 00:00:00' attrs
ff_expect "atime 1009843200, mtime unchanged" out='1009843200 981173106' -- stat -c '%X %Y' attrs
ff_expect "touch -h -d on a symlink changes the link, not the target" out="1009843200 $(stat -c %Y "$B/lnk")" -- \
	bash -c "touch -h -d '2002-01-01 00:00:00' sym2 && echo \$(stat -c %Y sym2) \$(stat -L -c %Y sym2)"

# --- xattrs (user.*)
ff_true "setfattr user.test" setfattr -n user.test -v hello attrs
ff_expect "getfattr reads it back" out=hello -- getfattr --only-values -n user.test attrs
ff_expect "the backing file has it" out=hello -- getfattr --only-values -n user.test "$B/attrs"
ff_true "setfattr user.two" setfattr -n user.two -v 2 attrs
ff_expect "getfattr -d lists both" out=$'user.test\nuser.two' -- bash -c "getfattr --absolute-names -d attrs | grep '^user' | cut -d= -f1 | sort"
ff_true "setfattr -x user.test" setfattr -x user.test attrs
ff_expect "the removed xattr is gone" rc=1 err='No such attribute' -- getfattr -n user.test attrs
ff_expect "Python os.listxattr agrees with the backing file" out="$(getfattr --absolute-names -d "$B/attrs" | grep -c '^user')" -- \
	"$PY" -c 'import os; print(len([x for x in os.listxattr("attrs") if x.startswith("user.")]))'
ff_expect "xattr on a directory" out=dirval -- bash -c 'mkdir -p xdir && setfattr -n user.d -v dirval xdir && getfattr --only-values -n user.d xdir'

# --- statfs
ff_expect "df: block size and total blocks equal the backing fs" out="$(stat -f -c '%S %b %c' "$B")" -- stat -f -c '%S %b %c' .
ff_expect "df -P size column equals the backing fs" out="$(df -P "$B" | awk 'NR==2{print $2}')" -- bash -c "df -P . | awk 'NR==2{print \$2}'"
ff_expect "statvfs f_namemax is 255" out=255 -- "$PY" -c 'import os; print(os.statvfs(".").f_namemax)'

# --- fallocate
ff_true "fallocate -l 1M" fallocate -l 1M falloc
ff_expect "size 1048576 on the mount" out=1048576 -- stat -c %s falloc
ff_expect "blocks allocated in the backing file (>= 2048 x 512)" out=yes -- bash -c "[ \$(stat -c %b '$B/falloc') -ge 2048 ] && echo yes"
ff_true "fallocate --keep-size -o 1M -l 1M" fallocate -n -o 1M -l 1M falloc
ff_expect "keep-size: size unchanged" out=1048576 -- stat -c %s falloc
ff_true "fallocate --punch-hole" fallocate -p -o 0 -l 512K falloc
ff_expect "punch-hole: first bytes read as zeros" out=0000000 -- bash -c 'head -c 16 falloc | od -An -c | tr -d " \n" | sed "s/\\\\0/0/g" | head -c 7'

# --- access
cat >"$WORK/access.py" <<'PYEOF'
import os, sys
out = []
for name in sys.argv[1:]:
    out.append("".join(c if os.access(name, m) else "-" for c, m in (("r", os.R_OK), ("w", os.W_OK), ("x", os.X_OK))) + ("e" if os.access(name, os.F_OK) else "-"))
print(" ".join(out))
PYEOF
printf '#!/bin/sh\n' >acc-x
chmod 755 acc-x
echo >acc-ro
chmod 444 acc-ro
echo >acc-none
chmod 000 acc-none
names="acc-x acc-ro acc-none venv nonexistent"
ff_expect "access(): R/W/X/F_OK as root equal the backing dir's" \
	out="$(cd "$B" && "$PY" "$WORK/access.py" $names)" -- "$PY" "$WORK/access.py" $names
ff_expect "access() as nobody equals the backing dir's" \
	out="$(cd "$B" && "${NOBODY[@]}" "$PY" "$WORK/access.py" $names)" -- "${NOBODY[@]}" "$PY" "$WORK/access.py" $names

# --- readdir, mknod (fifo), unlink, rmdir
ff_check "ls -A matches the backing dir" "$(ls -A "$B")" "$(ls -A .)"
ff_expect "ls -la: dir sizes/owners/modes/names/times equal the backing's" out="$(cd "$B" && ls -la --time-style=+%s . | tail -n +2 | awk '{print $1,$3,$4,$6,$7}' | grep -v ' \.$' | grep -v ' \.\.$')" -- \
	bash -c "ls -la --time-style=+%s . | tail -n +2 | awk '{print \$1,\$3,\$4,\$6,\$7}' | grep -v ' \.\$' | grep -v ' \.\.\$'"
ff_true "mkfifo" mkfifo fifo
ff_expect "the fifo is a fifo in the backing dir" out=fifo -- stat -c %F "$B/fifo"
ff_expect "a fifo on the mount carries data" out=through -- bash -c '(echo through > fifo &) ; cat fifo'
ff_expect "rmdir of a non-empty dir fails with ENOTEMPTY" rc=1 err='Directory not empty' -- rmdir untar
ff_expect "unlink of a missing file fails with ENOENT" rc=1 err='No such file or directory' -- rm nonexistent
ff_expect "mkdir of an existing name fails with EEXIST" rc=1 err='File exists' -- mkdir venv
ff_expect "O_EXCL create of an existing file fails with EEXIST" out=17 -- "$PY" -c '
import os
try: os.open("lnk", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
except OSError as e: print(e.errno)'
ff_expect "O_TMPFILE or a clean EOPNOTSUPP" rc=0 -- "$PY" -c '
import os, errno
try:
    fd = os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o600); os.write(fd, b"x"); os.close(fd)
except OSError as e:
    assert e.errno in (errno.EOPNOTSUPP, errno.EISDIR), e'
ff_expect "fsync and fdatasync of a file and a dir" rc=0 -- "$PY" -c '
import os
fd = os.open("rb", os.O_RDONLY); os.fsync(fd); os.fdatasync(fd); os.close(fd)
fd = os.open(".", os.O_RDONLY); os.fsync(fd); os.close(fd)'

# --- SQLite in WAL mode (shared-memory mmap of the -shm file), mmap writes
ff_expect "SQLite WAL database: create, insert 1000 rows, read back" out='wal 1000' -- "$PY" -c '
import sqlite3
c = sqlite3.connect("jobs.sqlite")
mode = c.execute("pragma journal_mode=wal").fetchone()[0]
c.execute("create table t(a)")
c.executemany("insert into t values(?)", [(i,) for i in range(1000)])
c.commit()
c2 = sqlite3.connect("jobs.sqlite")
print(mode, c2.execute("select count(*) from t").fetchone()[0])'
ff_expect "SQLite integrity_check" out=ok -- "$PY" -c 'import sqlite3; print(sqlite3.connect("jobs.sqlite").execute("pragma integrity_check").fetchone()[0])'
ff_expect "MAP_SHARED writes reach the file (and the backing file)" out="hello hello" -- bash -c "$PY -c '
import mmap
with open(\"mm\", \"wb\") as f:
    f.write(bytes(8192))
with open(\"mm\", \"r+b\") as f:
    m = mmap.mmap(f.fileno(), 8192)
    m[100:105] = b\"hello\"
    m.flush(); m.close()
' && echo \$(dd if=mm bs=1 skip=100 count=5 status=none) \$(dd if='$B/mm' bs=1 skip=100 count=5 status=none)"

# --- a large directory
ff_true "create 2000 files" "$PY" -c '
import os
os.mkdir("many")
for i in range(2000):
    open("many/f%04d" % i, "w").close()'
ff_expect "readdir of 2000 entries: ls | wc -l" out=2000 -- bash -c 'ls many | wc -l'
ff_check "readdir of 2000 entries: names equal the backing dir's" "$(ls "$B/many" | md5sum)" "$(ls many | md5sum)"
ff_expect "find sees every entry once" out=2000 -- bash -c 'find many -type f | sort -u | wc -l'
ff_expect "rm -rf of 2000 files: gone in the backing dir" rc=0 out=gone -- bash -c "rm -rf many && { test -e '$B/many' || echo gone; }"
cd /
ff_umount "$M"
ff_end
