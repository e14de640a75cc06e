#!/bin/bash
# Integration test of fieldrig itself: exit codes, error lines, reports,
# --keep, and that nothing is left behind (no mount, no process, no world)
# after a pass, a failure, a time limit, Ctrl-C, or two scenarios at once.
# Needs root and /dev/fuse (else exit 77: skipped).
#   FIELDRIG=... FIELDRIG_RUNNER=... FIELDRIG_FAULTFS=... bash fieldrig.sh
set -u

if [ "$(id -u)" != 0 ] || [ ! -w /dev/fuse ]; then
	echo "1..0 # SKIP needs root and /dev/fuse"
	exit 77
fi

T=$(mktemp -d /tmp/fieldrig-it.XXXXXX)
export FIELDRIG_TMPDIR=$T/worlds
mkdir -p "$FIELDRIG_TMPDIR" "$T/s"
n=0
failed=0

cleanup() {
	# Whatever a failed check left: unmount, then remove.
	grep -o " $T/[^ ]*" /proc/self/mounts | while read -r m; do fusermount3 -uz "$m"; done
	rm -rf --one-file-system "$T"
}
trap cleanup EXIT

ok() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
	fi
}

# Nothing of any world is left: no mount under the worlds dir, no world
# dir, no process carrying a world marker.
nothing_left() {
	local left=0
	grep -q " $FIELDRIG_TMPDIR/" /proc/self/mounts && { echo "# mounts left:"; grep " $FIELDRIG_TMPDIR/" /proc/self/mounts; left=1; }
	[ -n "$(ls -A "$FIELDRIG_TMPDIR")" ] && { echo "# worlds left: $(ls "$FIELDRIG_TMPDIR")"; left=1; }
	# One process scans /proc (a shell loop forking per process is slow
	# under `meson test --setup valgrind`, which wraps this shell).
	python3 - "$FIELDRIG_TMPDIR/" <<'PY' || left=1
import os, sys
left = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ")
    except OSError:
        continue
    if any(e.split(b"=", 1)[0] in (b"FIELDRIG_WORLD", b"FIELDRIG_WORLD_DAEMON")
           and e.split(b"=", 1)[1].startswith(sys.argv[1].encode()) for e in env if b"=" in e):
        print("# process left:", cmd.decode(errors="replace"))
        left = 1
sys.exit(left)
PY
	return $left
}

cat > "$T/s/pass.yaml" <<'Y'
name: it-pass
world:
  mounts:
    tmp: {rules: ["op=exec,path=**/*.sh,error=EACCES"]}
  files:
    - {path: mnt/tmp/x.sh, content: "#!/bin/sh\necho hi\n", mode: "0755"}
steps:
  - sh: '"{{mount.tmp}}/x.sh"'
    expect:
      exit_code: 126
      stderr: {contains: "Permission denied"}
      faults: [{op: exec, path: x.sh, count: 1}]
  - sh: 'sh "{{mount.tmp}}/x.sh"'
    expect: {stdout: {contains: hi}}
Y
cat > "$T/s/fail.yaml" <<'Y'
name: it-fail
world:
  mounts:
    tmp: {}
steps:
  - sh: 'echo "<out> & \"quotes\""; exit 3'
    expect:
      exit_code: 0
Y
cat > "$T/s/slow.yaml" <<'Y'
name: it-slow
timeout: 1s
world:
  mounts:
    tmp: {}
steps:
  - sh: 'setsid sleep 300 & cd "{{mount.tmp}}" && sleep 300'
Y
cat > "$T/s/bad.yaml" <<'Y'
name: it-bad
steps:
  - sh: x
    expect:
      exit_code: 12abc
Y

# 1. check: a bad file is one line with FILE:LINE:COL: field, exit 2.
out=$("$FIELDRIG" check "$T/s/bad.yaml" 2>&1); rc=$?
[ $rc = 2 ] && [ "$out" = "$T/s/bad.yaml:5:18: field 'steps.0.expect.exit_code': invalid number '12abc': expected a whole number such as 3" ]
ok $? "check: bad file exits 2 with FILE:LINE:COL: field ($rc: $out)"
"$FIELDRIG" check "$T/s/pass.yaml" >/dev/null; ok $? "check: good file exits 0"
"$FIELDRIG" run "$T/s/bad.yaml" >/dev/null 2>&1; [ $? = 2 ]; ok $? "run: an input error exits 2 before anything runs"
"$FIELDRIG" run --bogus >/dev/null 2>&1; [ $? = 2 ]; ok $? "run: a usage error exits 2"

# 2. a passing scenario: exit 0, reports written, nothing left.
"$FIELDRIG" run "$T/s/pass.yaml" --junit "$T/r/j.xml" --json "$T/r/r.json" --html "$T/r/html" --reports "$T/r" > "$T/out" 2>&1
rc=$?
[ $rc = 0 ] && tail -1 "$T/out" | grep -q "^1 passed, 0 failed, 0 skipped"
ok $? "run: passing scenario exits 0 with the summary line ($rc)"
python3 -c 'import sys, xml.dom.minidom as m; d=m.parse(sys.argv[1]); t=d.getElementsByTagName("testcase")[0]; assert t.getAttribute("classname")=="s" and t.getAttribute("name")=="it-pass" and t.getAttribute("file").endswith("pass.yaml")' "$T/r/j.xml"
ok $? "JUnit: well-formed, classname = folder, name, file"
python3 -c 'import json, sys; d=json.load(open(sys.argv[1])); s=d["scenarios"][0]; assert d["summary"]["passed"]==1 and s["faults"]["tmp"][0]["op"]=="exec"' "$T/r/r.json"
ok $? "JSON: summary and the injected fault from the trace"
grep -q "1 passed" "$T/r/html/index.html" && [ "$(grep -o "<script" "$T/r/html/index.html" | wc -l)" = 2 ]
ok $? "HTML: summary, only the report's own two scripts (html_chromium.sh renders it)"
nothing_left; ok $? "pass: nothing left behind"

# 3. a failing scenario: exit 1, expectation with FILE:LINE, repro.sh, escaped JUnit.
"$FIELDRIG" run "$T/s/fail.yaml" --junit "$T/r/j2.xml" --reports "$T/r" > "$T/out" 2>&1
rc=$?
[ $rc = 1 ] && grep -q "$T/s/fail.yaml:8: exit_code" "$T/out" && grep -q "expected: exit code 0" "$T/out" \
	&& grep -q "actual:   exit code 3" "$T/out" && [ -x "$T/r/repro/it-fail.sh" ]
ok $? "fail: exits 1, names FILE:LINE, expected and actual, writes repro.sh ($rc)"
python3 -c 'import sys, xml.dom.minidom as m; d=m.parse(sys.argv[1]); f=d.getElementsByTagName("failure")[0]; o=d.getElementsByTagName("system-out")[0].firstChild.data; assert "<out> & \"quotes\"" in o, o' "$T/r/j2.xml"
ok $? "JUnit: failure body and escaped output in system-out"
nothing_left; ok $? "fail: nothing left behind"

# 4. the time limit: killed, torn down, the setsid escapee too.
start=$(date +%s%N)
"$FIELDRIG" run "$T/s/slow.yaml" --reports "$T/r" > "$T/out" 2>&1
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $rc = 1 ] && grep -q "\[time limit\]" "$T/out" && [ $ms -lt 15000 ]
ok $? "time limit: exits 1 and says so, within bounds ($rc, $ms ms)"
nothing_left; ok $? "time limit: nothing left behind (mount busy with a killed cwd, setsid escapee)"

# 5. Ctrl-C: everything is torn down.
"$FIELDRIG" run "$T/s/slow.yaml" --timeout 60s --reports "$T/r" > "$T/out" 2>&1 &
pid=$!
for _ in $(seq 1 200); do grep -q " $FIELDRIG_TMPDIR/" /proc/self/mounts && break; sleep 0.02; done
kill -INT $pid
wait $pid; rc=$?
[ $rc = 1 ] && grep -q "interrupted" "$T/out"
ok $? "SIGINT: exits 1, reports the interruption ($rc)"
nothing_left; ok $? "SIGINT: nothing left behind"

# 6. --keep: the failed world stays mounted; its teardown.sh takes it down.
"$FIELDRIG" run "$T/s/fail.yaml" --keep --reports "$T/r" > "$T/out" 2>&1
kept=$(sed -n 's/^  kept:  //p' "$T/out")
[ -n "$kept" ] && grep -q " $kept/mnt/tmp " /proc/self/mounts && [ -f "$kept/env.sh" ] && [ -f "$kept/repro.sh" ]
ok $? "--keep: world kept mounted with env.sh and repro.sh ($kept)"
sh "$kept/teardown.sh"
nothing_left; ok $? "--keep: teardown.sh leaves nothing"

# 7. the scenario's own process dies (SIGKILL): the parent reaps its world
#    from outside (marker sweep, lazy unmount, removal) and reports it.
"$FIELDRIG" run "$T/s/slow.yaml" --timeout 60s --reports "$T/r" > "$T/out" 2>&1 &
pid=$!
for _ in $(seq 1 200); do grep -q " $FIELDRIG_TMPDIR/" /proc/self/mounts && break; sleep 0.02; done
child=$(pgrep -P $pid | head -1)
[ -n "$child" ] && kill -KILL "$child"
wait $pid; rc=$?
[ $rc = 1 ] && grep -q "scenario process died of signal 9" "$T/out"
ok $? "scenario process killed: exits 1, says why ($rc)"
nothing_left; ok $? "scenario process killed: nothing left behind"

# 8. --keep-all keeps a passing world too.
"$FIELDRIG" run "$T/s/pass.yaml" --keep-all --reports "$T/r" > "$T/out" 2>&1
kept=$(sed -n 's/^KEPT s\/it-pass: //p' "$T/out")
[ -n "$kept" ] && grep -q " $kept/mnt/tmp " /proc/self/mounts
ok $? "--keep-all: a passing world is kept ($kept)"
sh "$kept/teardown.sh"
nothing_left; ok $? "--keep-all: teardown.sh leaves nothing"

# 9. two at once: private worlds, no shared path, all torn down.
for i in 1 2 3 4; do sed "s/name: it-pass/name: it-pass-$i/" "$T/s/pass.yaml" > "$T/s/p$i.yaml"; done
"$FIELDRIG" run "$T"/s/p[1-4].yaml -j 2 --json "$T/r/par.json" > "$T/out" 2>&1; rc=$?
python3 -c 'import json, sys; d=json.load(open(sys.argv[1])); assert d["summary"]["passed"]==4' "$T/r/par.json"
[ $? = 0 ] && [ $rc = 0 ]
ok $? "-j 2: four scenarios pass ($rc)"
nothing_left; ok $? "-j 2: nothing left behind"

echo "1..$n"
[ $failed = 0 ]
