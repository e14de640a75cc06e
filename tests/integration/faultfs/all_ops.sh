#!/bin/bash
# Every operation name can fault: one rule per op (each on its own path,
# error=EPERM), the command that makes exactly that call fails with
# "Operation not permitted" (errno 1), the same command on a path no rule
# names works, and `ctl stats` shows each rule fired.
. "$(dirname "$0")/lib.sh"
ff_begin

B=$WORK/back M=$WORK/mnt
mkdir -p "$B"/{rd,rd-ok,cr,cr-ok,rm-me,rm-ok,mk,mk-ok,ln,ln-ok,sl,sl-ok,nod,nod-ok}
for f in lk lk-ok ga ga-ok op op-ok ow ow-ok rdf rdf-ok wr wr-ok fl fl-ok fs fs-ok ul ul-ok \
	mv mv-ok lsrc chm chm-ok cho cho-ok tr tr-ok ut ut-ok ac ac-ok gx gx-ok sx sx-ok lx lx-ok \
	rx rx-ok fa fa-ok ex ex-ok rl0; do
	echo data >"$B/$f"
done
printf '#!/bin/sh\necho ran\n' >"$B/ex"; printf '#!/bin/sh\necho ran\n' >"$B/ex-ok"; chmod 755 "$B/ex" "$B/ex-ok"
ln -s rl0 "$B/rl"; ln -s rl0 "$B/rl-ok"
for f in gx gx-ok rx rx-ok lx lx-ok; do setfattr -n user.k -v v "$B/$f"; done

rules=(
	'op=lookup,path=lk' 'op=getattr,path=ga' 'op=readdir,path=rd' 'op=open,path=op'
	'op=open_write,path=ow' 'op=create,path=cr/*' 'op=read,path=rdf' 'op=write,path=wr'
	'op=flush,path=fl' 'op=fsync,path=fs' 'op=mkdir,path=mk/*' 'op=rmdir,path=rm-me'
	'op=unlink,path=ul' 'op=rename,path=mv' 'op=link,path=ln/*' 'op=symlink,path=sl/*'
	'op=readlink,path=rl' 'op=chmod,path=chm' 'op=chown,path=cho' 'op=truncate,path=tr'
	'op=utimens,path=ut' 'op=access,path=ac' 'op=getxattr,path=gx' 'op=setxattr,path=sx'
	'op=listxattr,path=lx' 'op=removexattr,path=rx' 'op=fallocate,path=fa' 'op=mknod,path=nod/*'
	'op=exec,path=ex'
)
args=()
for r in "${rules[@]}"; do args+=(--rule "$r,error=EPERM"); done
ff_mount "$B" "$M" "${args[@]}"
cd "$M"

EPERM='Operation not permitted'
PYERR='import os, sys
try:
    exec(sys.argv[1])
    print("ok")
except OSError as e:
    print(e.errno)'
# check OP BAD-COMMAND... -- uses {} for the path: runs it on the rule's path
# (must fail with EPERM) and on the -ok twin (must work).
check() {
	local op=$1 p=$2 ok=$3 how=$4
	shift 4
	local cmd=$*
	case $how in
	sh) ff_expect "op=$op: '${cmd//\{\}/$p}' fails with EPERM" rcnot=0 err="$EPERM" -- bash -c "${cmd//\{\}/$p}"
		ff_expect "op=$op: '${cmd//\{\}/$ok}' works" rc=0 -- bash -c "${cmd//\{\}/$ok}" ;;
	rc) ff_expect "op=$op: '${cmd//\{\}/$p}' fails" rcnot=0 -- bash -c "${cmd//\{\}/$p}"
		ff_expect "op=$op: '${cmd//\{\}/$ok}' works" rc=0 -- bash -c "${cmd//\{\}/$ok}" ;;
	py) ff_expect "op=$op: Python ${cmd//\{\}/$p} raises errno 1" out=1 -- "$PY" -c "$PYERR" "${cmd//\{\}/$p}"
		ff_expect "op=$op: Python ${cmd//\{\}/$ok} works" out=ok -- "$PY" -c "$PYERR" "${cmd//\{\}/$ok}" ;;
	esac
}
check lookup      lk     lk-ok     sh 'stat {} >/dev/null'
check getattr     ga     ga-ok     sh 'stat {} >/dev/null'
check readdir     rd     rd-ok     sh 'ls {}'
check open        op     op-ok     sh 'cat {} >/dev/null'
ff_expect "op=open_write: reading ow still works" out=data -- cat ow
check open_write  ow     ow-ok     sh 'echo more >> {}'
check create      cr/new cr-ok/new sh 'touch {}'
check read        rdf    rdf-ok    sh 'cat {} >/dev/null'
check write       wr     wr-ok     sh 'echo more >> {}'
check flush       fl     fl-ok     sh 'cat {} >/dev/null'
check fsync       fs     fs-ok     py 'fd = os.open("{}", os.O_RDWR); os.fsync(fd)'
check mkdir       mk/d   mk-ok/d   sh 'mkdir {}'
check rmdir       rm-me  rm-ok     sh 'rmdir {}'
check unlink      ul     ul-ok     sh 'rm {}'
check rename      mv     mv-ok     sh 'mv {} {}.moved'
check link        ln/h   ln-ok/h   sh 'ln lsrc {}'
check symlink     sl/s   sl-ok/s   sh 'ln -s lsrc {}'
check readlink    rl     rl-ok     py 'os.readlink("{}")'
check chmod       chm    chm-ok    sh 'chmod 600 {}'
check chown       cho    cho-ok    sh 'chown 65534 {}'
check truncate    tr     tr-ok     sh 'truncate -s 1 {}'
check utimens     ut     ut-ok     sh 'touch -d 2001-01-01 {}'
check access      ac     ac-ok     rc 'test -r {}'
check getxattr    gx     gx-ok     sh 'getfattr -n user.k {} >/dev/null'
check setxattr    sx     sx-ok     sh 'setfattr -n user.k -v w {}'
check listxattr   lx     lx-ok     sh 'getfattr -d {} >/dev/null'
check removexattr rx     rx-ok     sh 'setfattr -x user.k {}'
check fallocate   fa     fa-ok     sh 'fallocate -l 64K {}'
check mknod       nod/p  nod-ok/p  sh 'mkfifo {}'
check exec        ex     ex-ok     sh './{} >/dev/null'
cd /

ff_run "$FAULTFS" ctl "$M" stats --json
ff_expect "ctl stats: every one of the ${#rules[@]} rules fired at least once" out=all -- "$PY" -c '
import json, sys
r = json.loads(sys.argv[1])["rules"]
idle = [x["expr"] for x in r if x["fired"] < 1]
print("all" if len(r) == int(sys.argv[2]) and not idle else "idle: %r (of %d)" % (idle, len(r)))' "$RUN_OUT" "${#rules[@]}"
ff_umount "$M"

# statfs: a whole-mount call (path "" = the root), checked on its own mount.
ff_mount "$B" "$M" --rule 'op=statfs,path=**,error=EPERM'
ff_expect "op=statfs: df fails with EPERM" rc=1 err="$EPERM" -- df "$M"
ff_expect "op=statfs: stat -f fails with EPERM" rc=1 err="$EPERM" -- stat -f "$M"
ff_umount "$M"
ff_end
