#!/bin/bash
# The control channel under bad input: raw protocol lines the client never
# sends (unknown command, malformed ids, an empty rule, an over-long line, a
# client that hangs up mid-line or says nothing for 5 s), trace readers
# that go away (a follower that disconnects, a reader that hangs up while
# the ring streams), the ring keeping only its last 10000 lines, and the
# `faultfs ctl` client's usage errors and its answers to a missing or
# misbehaving daemon.  The daemon must answer each with one clear error and
# keep serving.
. "$(dirname "$0")/lib.sh"
ff_begin

B=$WORK/back M=$WORK/mnt
mkdir -p "$B"
echo hello >"$B/f"
ff_mount "$B" "$M" --trace-all
DPID=$FF_LAST_PID
cd /

# raw.py MNT MODE [LINE]: talks to the daemon of MNT over its socket.
#   send LINE       sends LINE (as given: add "\n" yourself), prints the answer
#   hangup LINE     sends LINE, closes at once, prints nothing
#   idle            sends nothing, waits for the daemon to hang up; prints
#                   "closed after 5 s or a little more" (or the time it took)
#   follow-lines N  sends "trace --follow", reads N lines, hangs up
#   follow-slow F   sends "trace --follow", reads nothing until file F
#                   exists, then all there is; prints "COUNT OP PATH" (last line)
cat >"$WORK/raw.py" <<'PYEOF'
import os, socket, sys, time
mnt, mode = sys.argv[1], sys.argv[2]
name = os.getxattr(mnt, "user.faultfs.ctl")
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(b"\0" + name)
if mode == "send":
    s.sendall(sys.argv[3].encode().decode("unicode_escape").encode("latin-1"))
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    sys.stdout.write(data.decode())
elif mode == "hangup":
    s.sendall(sys.argv[3].encode().decode("unicode_escape").encode("latin-1"))
    s.close()
elif mode == "idle":
    t0 = time.monotonic()
    s.settimeout(30)
    b = s.recv(100)
    dt = time.monotonic() - t0
    print("closed after %s%s" % ("5 s or a little more" if 4.9 <= dt < 25 else "%.1f s" % dt,
                                 "" if not b else " with data %r" % b))
elif mode == "follow-lines":
    s.sendall(b"trace --follow\n")
    f = s.makefile("rb")
    for i in range(int(sys.argv[3])):
        if not f.readline():
            print("EOF early"); sys.exit(1)
    print("read", sys.argv[3])
    s.close()
elif mode == "follow-slow":
    # Asks to follow, then reads nothing until the file argv[3] exists;
    # then reads until 2 s pass without a line.
    s.sendall(b"trace --follow\n")
    while not os.path.exists(sys.argv[3]):
        time.sleep(0.05)
    s.settimeout(2)
    data = b""
    try:
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            data += b
    except socket.timeout:
        pass
    import json
    lines = data.decode().splitlines()
    recs = [json.loads(l) for l in lines]
    print(len(recs), recs[-1]["op"], recs[-1]["path"])
PYEOF
raw() { "$PY" "$WORK/raw.py" "$M" "$@"; }
# The daemon's connected sockets besides the listening one.
daemon_socks() { local n=0 l; for l in /proc/"$DPID"/fd/*; do [[ $(readlink "$l" 2>/dev/null) == socket:* ]] && n=$((n + 1)); done; echo "$n"; }
socks_are() { [ "$(daemon_socks)" = "$1" ]; }
# The mount shows before the control socket listens: count once it answers.
ff_expect "the control socket answers" rc=0 -- "$FAULTFS" ctl "$M" list
base_socks=$(daemon_socks)

# A client that says nothing is dropped after 5 s; meanwhile all else goes on.
"$PY" "$WORK/raw.py" "$M" idle >"$WORK/idle.out" 2>&1 &
idle_pid=$!
FF_BGPIDS+=("$idle_pid")

# --- protocol errors: one JSON answer each, input errors flagged
ff_expect "raw: unknown command -> input error naming it" \
	out='{"ok":false,"error":"unknown command '"'"'frobnicate'"'"'","input":true}' -- raw send 'frobnicate now\n'
rid_err='{"ok":false,"error":"remove: expected a rule id (see `faultfs ctl MOUNTPOINT list`)","input":true}'
for bad in 'remove' 'remove ' 'remove abc' 'remove 12x' 'remove 0' 'remove 4294967296' 'remove -1'; do
	ff_expect "raw: '$bad' -> input error" out="$rid_err" -- raw send "$bad\\n"
done
ff_expect "raw: 'remove 4294967295' (a valid id, no such rule) -> refusal, not input error" \
	out='{"ok":false,"error":"remove: no rule with id 4294967295"}' -- raw send 'remove 4294967295\n'
ff_expect "raw: 'add' without a rule -> input error" outhas='"input":true' -- raw send 'add\n'
ff_expect "raw: 'trace --bogus' reads the ring once (no follow)" rc=0 -- raw send 'trace --bogus\n'
long=$(head -c 8191 /dev/zero | tr '\0' a)
ff_expect "raw: a line of 8191 bytes without newline -> 'command line too long'" \
	out='{"ok":false,"error":"command line too long"}' -- raw send "$long"
ff_true "raw: a client that hangs up mid-line" raw hangup 'lis'
ff_true "raw: a client that sends a command and hangs up before the answer" raw hangup 'stats\n'
ff_expect "the daemon still answers: list" rc=0 out='' -- "$FAULTFS" ctl "$M" list
ff_expect "raw: the answer of list is one JSON line" out='{"ok":true,"rules":[]}' -- raw send 'list\n'

# --- trace readers that go away
ff_true "make some trace lines: cat f" cat "$M/f"
ff_expect "a follower reads 3 lines and hangs up" out='read 3' -- raw follow-lines 3
# (the idle client's connection, too, must be gone: it is, after 5 s)
ff_expect "the daemon closes the follower's connection (within 20 s)" rc=0 -- ff_wait_for 20 socks_are "$base_socks"
# 12000 operations, each leaves a trace line: the ring keeps the last 10000.
# A follower that reads nothing meanwhile falls more than a ring behind: it
# skips what was overwritten and goes on with what the ring still holds.
"$PY" "$WORK/raw.py" "$M" follow-slow "$WORK/go" >"$WORK/slow.out" 2>&1 &
slow_pid=$!
FF_BGPIDS+=("$slow_pid")
ff_true "12000 traced operations" "$PY" -c '
import os, sys
for i in range(4000):
    fd = os.open(sys.argv[1], os.O_RDONLY)
    os.close(fd)' "$M/f"
ff_expect "ctl stats: more than 12000 trace lines written" rc=0 out=yes -- \
	bash -c '"$1" ctl "$2" stats | awk "/^trace_lines/ { print (\$2 > 12000) ? \"yes\" : \"no: \" \$2 }"' _ "$FAULTFS" "$M"
ff_expect "ctl trace prints exactly the last 10000 lines" out=10000 -- bash -c '"$1" ctl "$2" trace | wc -l' _ "$FAULTFS" "$M"
ff_expect "the newest line is last: the release of f" out='release f' -- \
	bash -c '"$1" ctl "$2" trace | tail -n 1 | "$3" -c "import json,sys; r=json.load(sys.stdin); print(r[\"op\"], r[\"path\"])"' _ "$FAULTFS" "$M" "$PY"
touch "$WORK/go"
ff_true "the slow follower ended" ff_wait_gone "$slow_pid" 60
ff_expect "the slow follower got valid JSON lines, ending with the newest (release f), fewer than were written" \
	out=yes -- bash -c 'read -r n op path <"$1" && [ "$op $path" = "release f" ] && [ "$n" -ge 10000 ] && [ "$n" -lt 12000 ] && echo yes || cat "$1"' _ "$WORK/slow.out"
for i in 1 2 3; do
	ff_true "raw: hang up right after asking for the 10000-line trace ($i)" raw hangup 'trace\n'
done
ff_expect "the daemon drops those connections (within 20 s)" rc=0 -- ff_wait_for 20 socks_are "$base_socks"
ff_expect "the daemon still serves the filesystem" out=hello -- cat "$M/f"

# --- the client's usage errors (exit 2, one line, nothing sent)
C=("$FAULTFS" ctl)
ff_expect "ctl --json before the mountpoint" out='{"ok":true,"rules":[]}' -- "${C[@]}" --json "$M" list
ff_expect "ctl --follow before the mountpoint, with list" rc=2 errx='faultfs ctl: --follow applies to trace only' -- "${C[@]}" --follow "$M" list
ff_expect "ctl --bogus" rc=2 err="faultfs ctl: unknown option '--bogus'" -- "${C[@]}" --bogus "$M" list
ff_expect "ctl -h prints the usage" rc=0 outhas='usage: faultfs ctl MOUNTPOINT' -- "${C[@]}" -h
ff_expect "ctl with only a mountpoint" rc=2 err='expected MOUNTPOINT and a command' -- "${C[@]}" "$M"
ff_expect "ctl add with two arguments" rc=2 err="faultfs ctl: unexpected argument 'b'" -- "${C[@]}" "$M" add a b
ff_expect "ctl add without an argument" rc=2 err='faultfs ctl: add needs an argument' -- "${C[@]}" "$M" add
ff_expect "ctl remove without an argument" rc=2 err='faultfs ctl: remove needs an argument' -- "${C[@]}" "$M" remove
ff_expect "ctl list with an argument" rc=2 err='faultfs ctl: list takes no argument' -- "${C[@]}" "$M" list x
ff_expect "ctl with an unknown command" rc=2 err="faultfs ctl: unknown command 'frob'" -- "${C[@]}" "$M" frob
ff_expect "ctl add with a newline in the rule" rc=2 errx='faultfs ctl: argument contains a newline' -- \
	"${C[@]}" "$M" add $'op=read\n,error=EIO'
ff_expect "ctl remove abc: the daemon's input error, exit 2" rc=2 errlines=1 err='remove: expected a rule id' -- "${C[@]}" "$M" remove abc
ff_expect "ctl remove 77 --json: refusal, exit 1" rc=1 errx='faultfs ctl: remove: no rule with id 77' -- "${C[@]}" "$M" remove 77 --json
ff_expect "ctl add --json prints the JSON answer" out='{"ok":true,"id":1}' -- "${C[@]}" "$M" add 'op=read,path=nothing,error=EIO' --json
ff_expect "the usage errors changed nothing: one rule" out=$'1\top=read,path=nothing,error=EIO' -- "${C[@]}" "$M" list
# The client refuses what the channel cannot carry, before connecting: one
# line, usage exit code; an argument that just fits reaches the daemon.
ff_expect "ctl add with an argument longer than a command line -> exit 2, one line" \
	rc=2 errlines=1 err="faultfs ctl: add: argument too long (8187 bytes; a command line holds at most 8191)" \
	-- "$FAULTFS" ctl "$M" add "op=read,path=$(head -c 8164 /dev/zero | tr '\0' a),error=EIO"
ff_expect "ctl add with an argument that just fits -> the daemon takes the rule" \
	rc=0 errlines=0 \
	-- "$FAULTFS" ctl "$M" add "op=read,path=$(head -c 8163 /dev/zero | tr '\0' a),error=EIO"
ff_true "and clear takes it away again" "$FAULTFS" ctl "$M" clear

# --- no daemon, or one that misbehaves
ff_expect "ctl on a missing path" rc=2 errx="faultfs ctl: $WORK/nothing: No such file or directory" -- "${C[@]}" "$WORK/nothing" list
mkdir -p "$WORK/fake"
if setfattr -n user.faultfs.ctl -v "faultfs.fieldrig-test.$$" "$WORK/fake" 2>/dev/null; then
	ff_expect "ctl where the attribute names no socket: cannot reach the daemon" rc=2 errlines=1 \
		err="faultfs ctl: $WORK/fake: cannot reach the daemon: Connection refused" -- "${C[@]}" "$WORK/fake" list
	# A peer that is not a faultfs daemon: it hangs up, or answers garbage.
	cat >"$WORK/fake.py" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(b"\0" + sys.argv[1].encode())
s.listen(4)
print("ready", flush=True)
for answer in (b"", b"this is not json\n"):
    c, _ = s.accept()
    c.recv(100)
    c.sendall(answer)
    c.close()
PYEOF
	ff_bg "$PY" "$WORK/fake.py" "faultfs.fieldrig-test.$$" >"$WORK/fake.out"
	ff_wait_for "$FF_WAIT" grep -q ready "$WORK/fake.out"
	ff_expect "a peer that hangs up without answering" rc=2 \
		errx="faultfs ctl: $WORK/fake: the daemon closed the connection without answering" -- "${C[@]}" "$WORK/fake" stats
	ff_expect "a peer that answers something not JSON" rc=2 errlines=1 \
		err="faultfs ctl: $WORK/fake: unreadable answer:" -- "${C[@]}" "$WORK/fake" list
else
	ff_log "note: $WORK does not take user xattrs; the missing-daemon checks are skipped"
fi

# The idle client: dropped by the daemon after 5 s (not before).
ff_true "the idle client ended" ff_wait_gone "$idle_pid" 30
ff_expect "the daemon hung up on the idle client after 5 s" out='closed after 5 s or a little more' -- cat "$WORK/idle.out"
ff_umount "$M"
ff_end
