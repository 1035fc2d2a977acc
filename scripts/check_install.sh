#!/usr/bin/env bash
# Build the wheel and install it, with no extras, into a fresh venv: the edge install.
#
# Usage (runs from any directory; needs PyPI access for numpy and ai-edge-litert):
#   scripts/check_install.sh [--keep] [WORK_DIR]
#
# Checks that the base install (numpy + ai-edge-litert, what a Raspberry Pi needs) runs
# `python -m sdss_distill.edge --help` and `sdss-distill edge --help`, that
# `python -m sdss_distill` lists the subcommands, and that `sdss-distill train` without the
# [train] extra says which pip command adds it. Writes about 120 MB (the venv) under
# WORK_DIR (default: a new temporary directory, removed afterwards unless --keep).
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
"$WORK/venv/bin/python" -m sdss_distill.edge --help >/dev/null
"$WORK/venv/bin/sdss-distill" edge --help >/dev/null
"$WORK/venv/bin/python" -m sdss_distill | grep -q "^  edge "
if "$WORK/venv/bin/sdss-distill" train --help 2>"$WORK/train.err"; then
  fail "sdss-distill train ran without the [train] extra"
fi
grep -q "pip install '.\[train\]'" "$WORK/train.err" || fail "unexpected message: $(cat "$WORK/train.err")"
echo "OK: edge runs from the base install; train says: $(cat "$WORK/train.err")"
