#!/usr/bin/env bash
# Build the wheel and install it, with no extras, into a fresh venv: the edge install.
#
# Usage (runs from any directory; needs PyPI access for numpy and ai-edge-litert):
#   scripts/check_install.sh [--keep] [WORK_DIR]
#
# Checks that the base install (numpy + ai-edge-litert, what a Raspberry Pi needs) runs
# `sdss-distill edge --help` and `python -m sdss_distill.edge --help`, that
# `python -m sdss_distill` lists the subcommands, and that `sdss-distill train` without the
# [train] extra stops with exit code 2 and one line on stderr naming the pip command that
# adds the extra (no traceback). Writes about 160 MB (the venv) under WORK_DIR (default: a
# new temporary directory, removed afterwards unless --keep).
set -euo pipefail

PROG=scripts/check_install.sh
fail() { echo "$PROG: error: $*" >&2; exit 2; }
KEEP=0
ARGS=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --keep) KEEP=1 ;;
    -*) fail "unknown option $arg; see $PROG --help" ;;
    *) ARGS+=("$arg") ;;
  esac
done
[ ${#ARGS[@]} -le 1 ] || fail "expected at most one WORK_DIR, got ${#ARGS[@]} arguments"
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
if [ ${#ARGS[@]} -eq 1 ]; then
  mkdir -p "${ARGS[0]}" || fail "WORK_DIR ${ARGS[0]}: cannot create it"
  WORK=$(cd "${ARGS[0]}" && pwd)
else
  WORK=$(mktemp -d)
  [ $KEEP -eq 1 ] || trap 'rm -rf "$WORK"' EXIT
fi

echo "== wheel"
start=$(date +%s)
"$PY" -m pip wheel -q --no-deps "$REPO" -w "$WORK/dist"
WHEEL=$(ls "$WORK"/dist/sdss_distill-*.whl)
echo "$WHEEL ($(du -h "$WHEEL" | cut -f1))"
echo "== fresh venv, pip install the wheel (no extras)"
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q "$WHEEL"
echo "installed in $(( $(date +%s) - start )) s; venv $(du -sh "$WORK/venv" | cut -f1)"
"$WORK/venv/bin/pip" list --format=freeze
cd "$WORK"   # away from the checkout, so the installed copy is the one imported
echo "== sdss-distill edge --help (must run)"
"$WORK/venv/bin/sdss-distill" edge --help >/dev/null || fail "sdss-distill edge --help failed on the base install"
"$WORK/venv/bin/python" -m sdss_distill.edge --help >/dev/null || fail "python -m sdss_distill.edge --help failed"
# (to a file, not a pipe: `grep -q` would close the pipe early and break it under pipefail)
"$WORK/venv/bin/python" -m sdss_distill >"$WORK/usage.out" || fail "python -m sdss_distill failed"
grep -q "^  edge " "$WORK/usage.out" || fail "python -m sdss_distill does not list edge: $(cat "$WORK/usage.out")"
echo "== sdss-distill train (must stop: one line, exit 2, naming the [train] extra)"
set +e
"$WORK/venv/bin/sdss-distill" train >"$WORK/train.out" 2>"$WORK/train.err"
code=$?
set -e
[ $code -eq 2 ] || fail "sdss-distill train without the [train] extra exited $code, expected 2; stderr: $(head -c 2000 "$WORK/train.err")"
lines=$(wc -l <"$WORK/train.err")
[ "$lines" -eq 1 ] || fail "sdss-distill train printed $lines lines on stderr, expected one: $(head -c 2000 "$WORK/train.err")"
grep -q "pip install .*\[train\]" "$WORK/train.err" || fail "the line does not name the [train] extra: $(cat "$WORK/train.err")"
echo "OK: edge runs from the base install; train exits 2 with: $(cat "$WORK/train.err")"
