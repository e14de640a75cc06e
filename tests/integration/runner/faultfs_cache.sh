#!/bin/bash
# The package cache (in a container: no venv, only the cache file) and the
# upload's last steps on faultfs, through the runner's command line:
# - creating the cache fails with ENOSPC on write and EIO on rename: exit 1,
#   one line naming the temporary file or both names and the errno text,
#   no temporary file left, and it works once the faults are gone;
# - an upload whose chmod of the new script fails (EPERM) exits 1 naming the
#   path, and leaves nothing in the scripts dir;
# - venv recreate (outside a container, with a crafted python that builds
#   venvs as python3 -m venv lays them out) when no aside directory can be
#   made (ENOSPC), when the old venv cannot be removed (EBUSY on rmdir),
#   and when the venv cannot move (EXDEV) and cannot be opened to be
#   emptied (EIO).
# Needs root and /dev/fuse, else exit 77.
. "$(dirname "$0")/../faultfs/lib.sh"
[ -x "${RUNNER:-}" ] || { echo "RUNNER is not set (run through meson test)"; exit 2; }
ff_begin

ROOT=$WORK/root            # a crafted root: this machine's /.dockerenv must not count
mkdir -p "$ROOT"
printf 'print("hello")\n' > "$WORK/job.py"
# The container's interpreter: runs, has pip.
cat > "$WORK/py" <<'PY'
#!/bin/sh
exit 0
PY
chmod 755 "$WORK/py"

ff_mount "$WORK/back-c" "$WORK/c"
S=$WORK/c/state
mkdir "$S"
cache() { # cache ACTION: venv ACTION in a container with the state dir on faultfs
	env RUNNER_CONTAINER=docker RUNNER_PYTHON="$WORK/py" "$RUNNER" --state "$S" --root "$ROOT" venv "$1"
}

id=$(ff_ctl "$WORK/c" add 'op=write,path=state/package_cache.json.tmp-*,error=ENOSPC')
ff_expect "cache, write ENOSPC: exit 1 naming the temporary file" rc=1 \
	err="venv ensure: package cache: write $S/package_cache.json.tmp-" -- cache ensure
ff_check "cache, write ENOSPC: errno text" 1 "$(grep -c 'No space left on device' <<<"$RUN_ERR")"
ff_expect "cache, write ENOSPC: nothing left behind" rc=0 out='' -- ls -A "$WORK/back-c/state"
ff_ctl "$WORK/c" remove "$id" >/dev/null

id=$(ff_ctl "$WORK/c" add 'op=rename,path=state/package_cache.json.tmp-*,error=EIO')
ff_expect "cache, rename EIO: exit 1 naming both names" rc=1 \
	err="to $S/package_cache.json: Input/output error" -- cache recreate
ff_check "cache, rename EIO: the rename is named" 1 "$(grep -c "package cache: rename $S/package_cache.json.tmp-" <<<"$RUN_ERR")"
ff_expect "cache, rename EIO: nothing left behind" rc=0 out='' -- ls -A "$WORK/back-c/state"
ff_ctl "$WORK/c" remove "$id" >/dev/null

ff_expect "cache without faults: works" rc=0 -- cache ensure
ff_check "cache without faults: no venv in a container" 1 \
	"$(grep -c '^action: none: in a container' <<<"$RUN_OUT")"
ff_check "the cache file is there" 1 "$(ls "$WORK/back-c/state" | grep -c '^package_cache.json$')"

# Upload: the new script's chmod is refused.
mkdir "$WORK/c/scripts"
id=$(ff_ctl "$WORK/c" add 'op=chmod,path=scripts/**,error=EPERM')
ff_expect "upload, chmod EPERM: exit 1 naming chmod and errno" rc=1 \
	err="Operation not permitted (EPERM)" -- \
	env SCRIPTS_DIR="$WORK/c/scripts" "$RUNNER" --state "$S" --root "$ROOT" upload "$WORK/job.py"
ff_check "upload, chmod EPERM: chmod is named" 1 "$(grep -c 'chmod' <<<"$RUN_ERR")"
ff_expect "upload, chmod EPERM: nothing left behind" rc=0 out='' -- ls -A "$WORK/back-c/scripts"
ff_ctl "$WORK/c" remove "$id" >/dev/null

# venv recreate.
cat > "$WORK/vpy" <<'PY'
#!/bin/sh
if [ "$1 $2" = "-m venv" ]; then
	mkdir -p "$3/bin" && echo 'home = /usr/bin' > "$3/pyvenv.cfg" &&
		printf '#!/bin/sh\nexit 0\n' > "$3/bin/python" && chmod 755 "$3/bin/python" &&
		cp "$3/bin/python" "$3/bin/pip"
	exit $?
fi
exit 0
PY
chmod 755 "$WORK/vpy"
V=$WORK/c/v
venv() { # venv ACTION
	env RUNNER_PYTHON="$WORK/vpy" "$RUNNER" --state "$S" --root "$ROOT" venv "$1" --dir "$V"
}
ff_expect "venv ensure with the crafted python: created" rc=0 -- venv ensure
ff_check "venv ensure: action created" 1 "$(grep -c '^action: created$' <<<"$RUN_OUT")"

id=$(ff_ctl "$WORK/c" add 'op=mkdir,path=v.old-*,error=ENOSPC')
ff_expect "venv recreate, no room for the aside dir: exit 1 with errno" rc=1 \
	err="No space left on device" -- venv recreate
ff_check "venv recreate, ENOSPC: the venv dir is named" 1 "$(grep -c "$V" <<<"$RUN_ERR")"
ff_expect "venv recreate, ENOSPC: the old venv is still healthy" rc=0 -- venv status
ff_ctl "$WORK/c" remove "$id" >/dev/null

id=$(ff_ctl "$WORK/c" add 'op=rmdir,path=v.old-*,error=EBUSY')
ff_expect "venv recreate, old venv busy: rebuilt anyway" rc=0 -- venv recreate
ff_check "venv recreate, EBUSY: the leftover is named" 1 \
	"$(grep -c "^action: recreated (old venv left at $V.old-.*Device or resource busy)" <<<"$RUN_OUT")"
ff_ctl "$WORK/c" remove "$id" >/dev/null
rm -rf "$WORK"/c/v.old-*

id=$(ff_ctl "$WORK/c" add 'op=rename,path=v,error=EXDEV')
id2=$(ff_ctl "$WORK/c" add 'op=readdir,path=v,error=EIO')
ff_expect "venv recreate, cannot move nor open: exit 1 naming the dir and errno" rc=1 \
	err="cannot build venv in $V: open $V: Input/output error" -- venv recreate
ff_ctl "$WORK/c" remove "$id2" >/dev/null
ff_expect "venv recreate, cannot move: rebuilt in place" rc=0 -- venv recreate
ff_check "venv recreate in place: says why" 1 \
	"$(grep -c "^action: recreated in place: $V cannot be moved (Invalid cross-device link)" <<<"$RUN_OUT")"
ff_ctl "$WORK/c" remove "$id" >/dev/null

ff_end
