# Helpers of the tests that run `runner serve` (sourced after lib.sh): the
# test sets S (the state dir), defines r (the runner on it) and field
# (a field of `status --json`), starts serve with its stderr appended to
# $WORK/serve.log and its pid in SERVE.

# until serve's log has a line matching $1, 20 s at most
wait_line() {
	timeout 20 tail -n +1 -f "$WORK/serve.log" | grep -m1 -q -- "$1"
}

# until COMMAND succeeds, 20 s at most
until_ok() {
	local i
	for ((i = 0; i < 200; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# SIGTERM until serve is gone (a second one cancels what it still runs).
SERVE=""
stop_serve() {
	local i
	[ -n "$SERVE" ] || return 0
	kill -CONT "$SERVE" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -TERM "$SERVE" 2>/dev/null || break
		sleep 0.1
	done
	wait "$SERVE" 2>/dev/null
	SERVE=""
}

# Whatever failed, every run still live is cancelled (by its supervisor,
# serve's or its own) before the work dir goes.
cancel_all() {
	local id
	for id in $(r list --json 2>/dev/null |
		jq -r '.runs[] | select(.status == "RUNNING" or .status == "QUEUED") | .id'); do
		r cancel "$id" >/dev/null 2>&1
	done
}

# submit ARGS: exec --detach (direct mode), the id in $ID, its marker
# remembered in MARKS.
MARKS=""
submit() {
	run 0 --state "$S" --exec-mode direct exec "$@" --detach
	ID=$(head -1 <<<"$OUT")
	MARKS="$MARKS $(field "$ID" marker)"
}

# Whether a process with one of MARKS is still there.
leftovers() {
	local m
	for m in $MARKS; do
		grep -lzq "FIELDRIG_RUN_MARK=$m" /proc/[0-9]*/environ 2>/dev/null && return 0
	done
	return 1
}
