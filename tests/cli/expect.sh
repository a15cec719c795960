# expect.sh — the helpers the CLI test scripts share (sourced, not run).
# After sourcing: TMP is a temporary folder removed at exit; `expect CODE
# PATTERN -- command...` checks a command's exit code and a pattern in its
# stdout+stderr; `ok`/`bad` count; `finish` prints the counts and fails when
# anything failed.
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

expect() {
  local code=$1 pattern=$2
  shift 3
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$code" ]; then bad "$* exited $rc, expected $code: $out"; return; fi
  if ! grep -qE -- "$pattern" <<<"$out"; then bad "$*: output lacks /$pattern/: $out"; return; fi
  ok
}
