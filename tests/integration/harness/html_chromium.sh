#!/bin/bash
# Renders fieldrig's HTML report in headless Chromium and checks what a
# reader would see: `fieldrig run` over a few scenarios, one of which fails
# on purpose (html-fixtures/fails.yaml), writes --html; Chromium loads it
# with the failed scenario named in the URL's #fragment, and then with a
# passing one (closed by itself, so only the report's script can open it).
# From the DOM Chromium dumps after the scripts ran:
#   - the summary's counts;
#   - the failed scenario open, its failure table laid out with a size
#     (data-shown="1", measured by the page), with the expectation, the
#     expected and the actual value;
#   - the fragment's passing scenario opened and laid out;
#   - no script error: the collector installed first in <head> counted none
#     (#script-errors data-count="0"), the last script ran through
#     (<body data-ready="1">), and Chromium's log has no console message.
# Every Chromium process (it forks zygotes and renderers) is killed on exit,
# and the test checks that none is left.
# Needs root and /dev/fuse (the fixtures mount faultfs) and chromium (else
# exit 77: skipped; with CI set, a missing chromium fails: ci/setup
# installs it).  FIELDRIG=... FIELDRIG_RUNNER=... FIELDRIG_FAULTFS=... bash html_chromium.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
CHROMIUM=${CHROMIUM:-chromium}

if [ "$(id -u)" != 0 ] || [ ! -w /dev/fuse ]; then
	echo "1..0 # SKIP needs root and /dev/fuse"
	exit 77
fi
if ! command -v "$CHROMIUM" >/dev/null; then
	if [ -n "${CI:-}" ]; then
		echo "html_chromium: $CHROMIUM not found and CI is set: run ci/setup (installs Debian's chromium)" >&2
		exit 1
	fi
	echo "1..0 # SKIP $CHROMIUM not found (ci/setup installs Debian's chromium)"
	exit 77
fi

T=$(mktemp -d /tmp/fieldrig-html.XXXXXX)
export FIELDRIG_TMPDIR=$T/worlds
mkdir -p "$FIELDRIG_TMPDIR"
n=0
failed=0
chrome_pid=

# Every process of ours: Chromium's session (it runs under setsid), and
# anything whose command line names this test's temp dir: the profile dir is
# passed to every child Chromium forks, and the crash handlers, which start
# their own sessions, name their database under $HOME (the temp dir too).
chromium_pids() {
	# One ps and one awk (forking per process is slow when meson's valgrind
	# setup wraps this shell); the profile path reaches awk through its
	# environment, so awk's own command line does not match.
	# Zombies (stat Z) are dead already; their reaper is not ours.
	ps -eo pid=,sid=,stat=,args= | SID="$chrome_pid" D="$T/" \
		awk '$3 !~ /^Z/ && (($2 == ENVIRON["SID"] && ENVIRON["SID"] != "") || index($0, ENVIRON["D"])) { print $1 }'
}

kill_chromium() {
	local pids
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		pids=$(chromium_pids)
		[ -z "$pids" ] && return 0
		echo "# killing chromium's leftovers: $(printf "%s " $pids)"
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null
		sleep 0.1
	done
	return 1
}

cleanup() {
	kill_chromium
	grep -o " $T/[^ ]*" /proc/self/mounts | while read -r m; do fusermount3 -uz "$m"; done
	rm -rf --one-file-system "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
	fi
}

# render NAME URL: Chromium dumps URL's DOM after its scripts ran into
# $T/NAME.dom, its log into $T/NAME.log; then every process it left is
# killed.  A private profile; a bounded wait (60 s).
render() {
	local name=$1 url=$2 rc
	mkdir -p "$T/profile-$name" "$T/home"
	# HOME and XDG dirs in the temp dir: nothing is written to the real ones.
	HOME=$T/home XDG_CONFIG_HOME=$T/home/.config XDG_CACHE_HOME=$T/home/.cache \
		setsid "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run \
		--user-data-dir="$T/profile-$name/" --enable-logging=stderr --v=0 \
		--virtual-time-budget=3000 --dump-dom "$url" > "$T/$name.dom" 2> "$T/$name.log" &
	chrome_pid=$!
	for _ in $(seq 1 600); do
		kill -0 "$chrome_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$chrome_pid" 2>/dev/null; then
		echo "# chromium did not finish within 60 s"
		rc=124
	else
		wait "$chrome_pid"; rc=$?
	fi
	kill_chromium
	chrome_pid=
	return $rc
}

# check DOM KIND [ARG]: assertions on the dumped DOM, parsed by
# html.parser (never by regexes over markup).
check() {
	python3 - "$@" <<'PY'
import sys
from html.parser import HTMLParser

dom, kind = sys.argv[1], sys.argv[2]
arg = sys.argv[3] if len(sys.argv) > 3 else None

class P(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.body, self.errors, self.summary = [], {}, None, ""
        self.sc = {}          # data-name -> {attrs, fail: text of table.fail}
        self.cur = None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "pre" and a.get("id") == "script-errors":
            self.errors = a
        if tag == "details" and "sc" in a.get("class", "").split():
            self.cur = a["data-name"]
            self.sc[self.cur] = {"attrs": a, "fail": ""}
        if tag in ("br", "meta", "input", "link", "img", "hr"):
            return
        self.stack.append((tag, a))
    def handle_endtag(self, tag):
        while self.stack:
            t, a = self.stack.pop()
            if t == tag:
                break
    def handle_data(self, d):
        if any(a.get("id") == "summary" for _, a in self.stack):
            self.summary += d
        if self.cur and any(t == "table" and "fail" in a.get("class", "") for t, a in self.stack):
            self.sc[self.cur]["fail"] += d + " "

p = P()
p.feed(open(dom, encoding="utf-8").read())
problems = []
if kind == "summary":
    for want in arg.split(","):
        if want not in p.summary:
            problems.append(f"summary lacks {want!r}: {p.summary!r}")
elif kind == "scripts":
    if p.body.get("data-ready") != "1":
        problems.append(f"the report's script did not run through: <body {p.body}>")
    if p.errors is None or p.errors.get("data-count") != "0":
        problems.append(f"script errors collected in the page: {p.errors}")
elif kind == "shown":
    s = p.sc.get(arg)
    if not s:
        problems.append(f"no scenario {arg!r} in {sorted(p.sc)}")
    else:
        a = s["attrs"]
        if "open" not in a or "hidden" in a or a.get("data-shown") != "1":
            problems.append(f"{arg} is not open and laid out: {a}")
elif kind == "closed":
    a = p.sc.get(arg, {}).get("attrs", {})
    if "open" in a:
        problems.append(f"{arg} is open without being asked for: {a}")
elif kind == "failure":
    name, *wants = arg.split("|")
    text = p.sc.get(name, {}).get("fail", "")
    for w in wants:
        if w not in text:
            problems.append(f"{name}'s failure table lacks {w!r}: {text!r}")
for m in problems:
    print("#", m)
sys.exit(1 if problems else 0)
PY
}

# Console messages (errors, uncaught exceptions) in Chromium's log; the
# report itself logs nothing, so any is a failure.
console_clean() {
	if grep -E "CONSOLE|Uncaught" "$1" | sed "s/^/# /" | grep .; then
		return 1
	fi
	return 0
}

# 1. The report: two fixtures (one fails), and a scenario of the suite.
"$FIELDRIG" run "$here/html-fixtures" "$here/../../../scenarios/detect/docker.yaml" \
	--html "$T/r" --reports "$T/r" > "$T/run.out" 2>&1
rc=$?
[ $rc = 1 ] && [ -s "$T/r/index.html" ] && grep -q "^2 passed, 1 failed, 0 skipped" "$T/run.out"
ok $? "fieldrig run: the fixture fails, the report is written ($rc: $(tail -1 "$T/run.out"))"

# 2. Opened at the failed scenario.
render failed "file://$T/r/index.html#html-fixtures/html-fixture-fails"
ok $? "chromium rendered the report at the failed scenario"
check "$T/failed.dom" summary "2 passed,1 failed,0 skipped"
ok $? "summary shows 2 passed, 1 failed, 0 skipped"
check "$T/failed.dom" shown html-fixtures/html-fixture-fails
ok $? "the failed scenario is open and its failure table laid out"
check "$T/failed.dom" failure "html-fixtures/html-fixture-fails|exit_code|exit code 7|exit code 3|fails.yaml:13"
ok $? "its failure shows the expectation, expected, actual and FILE:LINE"
check "$T/failed.dom" closed html-fixtures/html-fixture-passes
ok $? "a passing scenario stays closed"
check "$T/failed.dom" scripts
ok $? "no script error collected in the page, the last script ran through"
console_clean "$T/failed.log"
ok $? "no console error in Chromium's log"

# 3. Opened at a passing scenario: only the script can open it.
render passed "file://$T/r/index.html#html-fixtures/html-fixture-passes"
ok $? "chromium rendered the report at a passing scenario"
check "$T/passed.dom" shown html-fixtures/html-fixture-passes
ok $? "the #fragment opened the passing scenario"
check "$T/passed.dom" scripts && console_clean "$T/passed.log"
ok $? "no script error"

# 4. A malformed fragment (a broken %-escape) is no script error.
render malformed "file://$T/r/index.html#%E0%A4%A"
ok $? "chromium rendered the report with a malformed #fragment"
check "$T/malformed.dom" scripts && console_clean "$T/malformed.log"
ok $? "no script error from a malformed #fragment"

# 5. Nothing of Chromium is left.
left=$(chromium_pids)
[ -z "$left" ]
ok $? "no chromium process left (${left:-none})"

echo "1..$n"
[ $failed = 0 ]
