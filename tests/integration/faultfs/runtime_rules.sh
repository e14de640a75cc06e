#!/bin/bash
# Runtime add and remove: when `ctl add` returns, the very next operation
# faults, even when the kernel's page, attribute and entry caches are warm
# (the file was just read or stat'ed); after `ctl remove` the very next
# operation works again.  No sleeps anywhere: that is the point.
. "$(dirname "$0")/lib.sh"
ff_begin

B=$WORK/back M=$WORK/mnt
mkdir -p "$B"
echo hello >"$B/f"
echo world >"$B/g"
echo x >"$B/h"
printf '#!/bin/sh\necho ran\n' >"$B/s.sh"
chmod 755 "$B/s.sh"
cp "$B/s.sh" "$B/m.sh"
# A long default cache timeout, so only the daemon's invalidation can make
# these pass.
ff_mount "$B" "$M" --timeout 60
cd "$M"

add() { # EXPR -> sets RID
	RID=$("$FAULTFS" ctl "$M" add "$1")
	[[ $RID =~ ^[0-9]+$ ]] || ff_fail "ctl add $1" "a rule id" "'$RID'"
}
rm_rule() {
	"$FAULTFS" ctl "$M" remove "$1" || ff_fail "ctl remove $1" "exit 0" "exit $?"
}

# read rule on a file whose pages are cached
for i in 1 2 3; do
	ff_expect "[$i] cat f works (page cache warm)" rc=0 out=hello -- cat f
	add 'op=read,path=f,error=EIO'
	ff_expect "[$i] right after add: cat f fails with Input/output error" rc=1 \
		errx='cat: f: Input/output error' -- cat f
	rm_rule "$RID"
	ff_expect "[$i] right after remove: cat f works" rc=0 out=hello -- cat f
done

# open rule on a file just opened
ff_expect "cat g works" rc=0 out=world -- cat g
add 'op=open,path=g,error=EACCES'
ff_expect "right after add op=open: cat g fails with Permission denied" rc=1 errx='cat: g: Permission denied' -- cat g
rm_rule "$RID"
ff_expect "right after remove: cat g works" rc=0 out=world -- cat g

# getattr rule on a just-stat'ed path (attribute cache warm)
ff_expect "stat h works" rc=0 out=2 -- stat -c %s h
add 'op=getattr,path=h,error=EIO'
ff_expect "right after add op=getattr: stat h fails" rc=1 err='Input/output error' -- stat -c %s h
rm_rule "$RID"
ff_expect "right after remove: stat h works" rc=0 out=2 -- stat -c %s h

# lookup rule on a just-stat'ed path (entry cache warm)
ff_expect "stat h works (entry cached)" rc=0 -- stat h
add 'op=lookup,path=h,error=ENOENT'
ff_expect "right after add op=lookup: stat h says No such file" rc=1 err='No such file or directory' -- stat h
ff_expect "right after add op=lookup: test -e h is false" rc=1 -- test -e h
rm_rule "$RID"
ff_expect "right after remove: stat h works" rc=0 -- stat h

# mode_clear on a just-stat'ed and just-exec'd file
ff_expect "m.sh shows 755" out=755 -- stat -c %a m.sh
ff_expect "m.sh runs" rc=0 out=ran -- bash -c ./m.sh
add 'op=lookup|getattr,path=m.sh,mode_clear=0111'
ff_expect "right after add mode_clear: stat shows 644" out=644 -- stat -c %a m.sh
ff_expect "right after add mode_clear: exec fails" rc=126 err='Permission denied' -- bash -c ./m.sh
rm_rule "$RID"
ff_expect "right after remove: stat shows 755" out=755 -- stat -c %a m.sh
ff_expect "right after remove: exec works" rc=0 out=ran -- bash -c ./m.sh

# readdir rule on a just-listed directory, mode_clear on a just-listed
# (readdirplus) directory
mkdir -p "$B/d" && echo x >"$B/d/f" && chmod 755 "$B/d/f"
ff_expect "ls d works" out=f -- ls d
add 'op=readdir,path=d,error=EIO'
ff_expect "right after add op=readdir: ls d fails" rc=2 err='Input/output error' -- ls d
rm_rule "$RID"
ff_expect "right after remove: ls d works" out=f -- ls d
ff_expect "ls -l d shows x bits" outhas='-rwxr-xr-x' -- ls -l d
add 'op=lookup|getattr|readdir,path=d/*,mode_clear=0111'
ff_expect "right after add mode_clear: ls -l d shows none" outhas='-rw-r--r--' -- ls -l d
rm_rule "$RID"
ff_expect "right after remove: ls -l d shows them again" outhas='-rwxr-xr-x' -- ls -l d

# exec rule on a just-exec'd script
ff_expect "s.sh runs" rc=0 out=ran -- bash -c ./s.sh
add 'op=exec,path=s.sh,error=EACCES'
ff_expect "right after add op=exec: ./s.sh is refused" rc=126 err='Permission denied' -- bash -c ./s.sh
ff_expect "right after add op=exec: test -x is false" rc=1 -- test -x s.sh
rm_rule "$RID"
ff_expect "right after remove: ./s.sh runs" rc=0 out=ran -- bash -c ./s.sh

# A held-open file: the rule applies to the next read(2) on the same fd.
ff_expect "an open fd sees a rule added while it is open" rc=0 out="hello|5" -- "$PY" -c '
import os, subprocess, sys
fd = os.open("f", os.O_RDONLY)
a = os.pread(fd, 100, 0).decode().strip()
rid = subprocess.check_output([sys.argv[1], "ctl", sys.argv[2], "add", "op=read,path=f,error=EIO"]).decode().strip()
try:
    os.pread(fd, 100, 0)
    b = "no error"
except OSError as e:
    b = str(e.errno)
subprocess.check_call([sys.argv[1], "ctl", sys.argv[2], "remove", rid])
print(a + "|" + b)' "$FAULTFS" "$M"

# Rules follow renames: a path rule matches an inode by its current name,
# even when the kernel knew it under the old one.
mkdir -p "$B/old/sub"
echo of >"$B/old/f"
echo og >"$B/old/sub/g"
add 'op=read,path=new/**,error=EIO'
ff_expect "old/f and old/sub/g read fine (caches warm)" out=$'of\nog' -- cat old/f old/sub/g
ff_true "mv old new" mv old new
ff_expect "after the rename: new/f is under the rule" rc=1 err='Input/output error' -- cat new/f
ff_expect "after the rename: new/sub/g is under the rule" rc=1 err='Input/output error' -- cat new/sub/g
ff_true "mv new old2 (back out of the rule)" mv new old2
ff_expect "after renaming back out: old2/f reads fine" out=of -- cat old2/f
ff_true "mv old2/f into a matched name: mkdir new && mv old2/f new/f" bash -c 'mkdir new && mv old2/f new/f'
ff_expect "a file renamed into the rule is under it" rc=1 err='Input/output error' -- cat new/f
rm_rule "$RID"

# Rule churn while readers run: no crash, no lost request, clean unmount
# (and, under --setup valgrind, no memory error).
for i in $(seq 20); do echo "c$i" >"$B/churn$i"; done
cat >"$WORK/reader.py" <<'PYEOF2'
import os, sys, time
end = time.monotonic() + float(sys.argv[1])
n = err = 0
while time.monotonic() < end:
    for i in range(1, 21):
        try:
            with open("churn%d" % i) as f:
                f.read()
            os.stat("churn%d" % i)
        except OSError as e:
            if e.errno != 5:
                print("unexpected", e); sys.exit(1)
            err += 1
        n += 1
print("reader ok", n, err)
PYEOF2
readers=()
for r in 1 2 3; do
	"$PY" "$WORK/reader.py" 3 >"$WORK/reader$r.out" 2>&1 &
	readers+=($!)
	FF_BGPIDS+=($!)
done
churn_ok=0
for i in $(seq 40); do
	id1=$("$FAULTFS" ctl "$M" add "op=read,path=churn$((i % 20 + 1)),error=EIO") &&
		id2=$("$FAULTFS" ctl "$M" add 'op=getattr|lookup,path=churn1*,mode_clear=0111') &&
		"$FAULTFS" ctl "$M" remove "$id1" && "$FAULTFS" ctl "$M" remove "$id2" && churn_ok=$((churn_ok + 1))
done
ff_check "40 rounds of add/add/remove/remove while 3 readers run" 40 "$churn_ok"
for r in 1 2 3; do
	wait "${readers[$((r - 1))]}"
	ff_expect "reader $r finished without unexpected errors" rc=0 outhas='reader ok' -- cat "$WORK/reader$r.out"
done
ff_expect "after the churn no rule is left" out='' -- "$FAULTFS" ctl "$M" list
ff_expect "after the churn every file reads" rc=0 -- bash -c 'for i in $(seq 20); do [ "$(cat churn$i)" = "c$i" ] || exit 1; done'

# clear removes everything at once
add 'op=read,path=f,error=EIO'
add 'op=getattr,path=h,error=EIO'
ff_expect "ctl list shows both rules" rc=0 outhas='op=getattr,path=h,error=EIO' -- "$FAULTFS" ctl "$M" list
ff_expect "with rules: cat f fails" rc=1 -- cat f
ff_expect "ctl clear" rc=0 -- "$FAULTFS" ctl "$M" clear
ff_expect "right after clear: cat f works" rc=0 out=hello -- cat f
ff_expect "right after clear: stat h works" rc=0 -- stat h
ff_expect "ctl remove of an unknown id fails with exit 1" rc=1 err='faultfs ctl:' -- "$FAULTFS" ctl "$M" remove 9999
ff_expect "ctl add of a bad rule is an input error: exit 2, one line naming it" rc=2 errlines=1 err='EBUZY' -- "$FAULTFS" ctl "$M" add 'op=read,error=EBUZY'
cd /
ff_umount "$M"
ff_end
