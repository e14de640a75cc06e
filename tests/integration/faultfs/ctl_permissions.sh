#!/bin/bash
# Only the user who mounted (and root) may change rules: an unprivileged
# user's `ctl add/remove/clear` on a root mount exits 1 with "permission
# denied" and changes nothing; reading (list, stats) works for them.
. "$(dirname "$0")/lib.sh"
ff_begin

B=$WORK/back M=$WORK/mnt
mkdir -p "$B"
echo hello >"$B/f"
chmod 644 "$B/f"
ff_mount "$B" "$M" --rule 'op=read,path=nothing,error=EIO'
N=("${NOBODY[@]}")
cd /

ff_expect "nobody: ctl list works" rc=0 out=$'1\top=read,path=nothing,error=EIO' -- "${N[@]}" "$FAULTFS" ctl "$M" list
ff_expect "nobody: ctl list --json works" rc=0 outhas='"ok":true' -- "${N[@]}" "$FAULTFS" ctl "$M" list --json
ff_expect "nobody: ctl stats works" rc=0 outhas='rule 1' -- "${N[@]}" "$FAULTFS" ctl "$M" stats
ff_expect "nobody: ctl add is refused with exit 1, permission denied" rc=1 errlines=1 err='permission denied' -- \
	"${N[@]}" "$FAULTFS" ctl "$M" add 'op=read,path=f,error=EIO'
ff_expect "nobody: ctl remove is refused" rc=1 errlines=1 err='permission denied' -- "${N[@]}" "$FAULTFS" ctl "$M" remove 1
ff_expect "nobody: ctl clear is refused" rc=1 errlines=1 err='permission denied' -- "${N[@]}" "$FAULTFS" ctl "$M" clear
ff_expect "the rules are unchanged (as root sees them)" rc=0 out=$'1\top=read,path=nothing,error=EIO' -- "$FAULTFS" ctl "$M" list
ff_expect "nobody's refused add did not take effect: cat f works" out=hello -- "${N[@]}" cat "$M/f"
ff_expect "a user with supplementary group root (gid 0) is still refused" rc=1 err='permission denied' -- \
	setpriv --reuid=65534 --regid=65534 --groups=0 "$FAULTFS" ctl "$M" add 'op=read,path=f,error=EIO'
ff_expect "root: ctl add works" rc=0 out=2 -- "$FAULTFS" ctl "$M" add 'op=read,path=f,error=EIO'
ff_expect "root's rule holds for nobody too" rc=1 err='Input/output error' -- "${N[@]}" cat "$M/f"
ff_expect "root: ctl remove works" rc=0 -- "$FAULTFS" ctl "$M" remove 2
ff_umount "$M"
ff_end
