#!/usr/bin/env bash
# Run the edge runtime under 64-bit ARM emulation and check it predicts what x86 predicts.
#
# Usage (runs from any directory; installing needs root, apt and PyPI access):
#   scripts/check_aarch64.sh [--yes] RUN_DIR [MODEL.tflite ...]
#   ARM64_ROOT=/tmp/arm64root QEMU_CPU=cortex-a72 scripts/check_aarch64.sh --yes runs/default
#
# RUN_DIR is a run from `python -m sdss_distill.train --out RUN_DIR --export` (its
# tflite/*.tflite files, models/ and the table it was trained on). Arguments are checked
# before anything is installed; the script then says what it will install and write, and
# asks (or proceeds with --yes).
#
# What it does:
# 1. apt-get installs qemu-user-static and debootstrap if missing;
# 2. debootstrap --foreign fetches a minimal arm64 Debian bookworm (Python 3.11, as on
#    Raspberry Pi OS) and unpacks its .debs with dpkg-deb; binaries then run through
#    `qemu-aarch64-static -L ROOT`, so no chroot and no binfmt_misc registration are needed;
# 3. pip installs requirements-edge.txt as aarch64 wheels (manylinux_2_27) into ROOT/opt/edge-site;
# 4. writes the run's test rows to a CSV, predicts them with every model on x86 and under
#    emulation (`python -m sdss_distill.edge predict`), and compares class and probabilities.
#
# Under qemu-user, /proc/cpuinfo is the host's (x86) file, on which LiteRT's CPU detection
# (cpuinfo) segfaults; a Raspberry Pi 4 cpuinfo is placed at ROOT/proc/cpuinfo, which qemu's
# -L prefix serves instead. Emulated timings mean nothing; only predictions are compared.
#
# Environment: ARM64_ROOT (default /tmp/arm64root, reused when present), QEMU_CPU (default
# cortex-a72, a Raspberry Pi 4), PYTHON (x86 interpreter with the package's [train] extra;
# default: python3).
set -euo pipefail

PROG=scripts/check_aarch64.sh
fail() { echo "$PROG: error: $*" >&2; exit 2; }

YES=0
ARGS=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -y|--yes) YES=1 ;;
    -*) fail "unknown option $arg; see $PROG --help" ;;
    *) ARGS+=("$arg") ;;
  esac
done
[ ${#ARGS[@]} -ge 1 ] || fail "missing RUN_DIR; usage: $PROG [--yes] RUN_DIR [MODEL.tflite ...]"
RUN=${ARGS[0]}
[ -d "$RUN" ] || fail "RUN_DIR $RUN: no such directory; pass a run from python -m sdss_distill.train --out DIR --export"
RUN=$(cd "$RUN" && pwd)
for f in models/run.json models/split.json models/student.keras models/teacher.keras; do
  [ -f "$RUN/$f" ] || fail "RUN_DIR $RUN: missing $f; pass a run from python -m sdss_distill.train --out DIR --export"
done
MODELS=()
if [ ${#ARGS[@]} -gt 1 ]; then
  for m in "${ARGS[@]:1}"; do
    [ -f "$m" ] || fail "model $m: no such file"
    case "$m" in *.tflite) ;; *) fail "model $m: expected a .tflite file" ;; esac
    MODELS+=("$(cd "$(dirname "$m")" && pwd)/$(basename "$m")")
  done
else
  shopt -s nullglob
  MODELS=("$RUN"/tflite/*.tflite)
  shopt -u nullglob
  [ ${#MODELS[@]} -gt 0 ] || fail "RUN_DIR $RUN: no tflite/*.tflite files; export them first: python -m sdss_distill.export --run $RUN"
fi

ROOT=${ARM64_ROOT:-/tmp/arm64root}
export QEMU_CPU=${QEMU_CPU:-cortex-a72}   # Raspberry Pi 4
PY=${PYTHON:-python3}  # the project venv's python (x86 side)
REPO=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"   # this checkout's sdss_distill, from any cwd
"$PY" -c "import sdss_distill.export" 2>/dev/null \
  || fail "$PY cannot import sdss_distill.export; set PYTHON to a venv with pip install '$REPO[train]' (or requirements.txt)"

# Plan: what is missing, what it costs; nothing is installed before the user agrees.
PLAN=()
NEED_APT=0
if ! command -v qemu-aarch64-static >/dev/null || ! command -v debootstrap >/dev/null; then
  NEED_APT=1
  PLAN+=("apt-get install qemu-user-static debootstrap (system packages: 63 MB download, 380 MB installed)")
fi
NEED_ROOTFS=0
if [ ! -x "$ROOT/usr/bin/python3.11" ]; then
  NEED_ROOTFS=1
  PLAN+=("debootstrap an arm64 Debian bookworm root into $ROOT (about 400 MB written)")
fi
NEED_WHEELS=0
if [ ! -d "$ROOT/opt/edge-site/ai_edge_litert" ]; then
  NEED_WHEELS=1
  PLAN+=("pip install requirements-edge.txt as aarch64 wheels into $ROOT/opt/edge-site (30 MB download, about 100 MB written)")
fi
if [ ${#PLAN[@]} -gt 0 ]; then
  if [ $((NEED_APT + NEED_ROOTFS)) -gt 0 ] && [ "$(id -u)" -ne 0 ]; then
    fail "installing qemu/debootstrap and building $ROOT needs root; run it as root (or with sudo)"
  fi
  echo "$PROG will:" >&2
  printf '  - %s\n' "${PLAN[@]}" >&2
  if [ $YES -eq 0 ]; then
    if [ -t 0 ]; then
      read -r -p "Proceed? [y/N] " answer
      case "$answer" in y|Y|yes|YES) ;; *) echo "$PROG: nothing installed" >&2; exit 1 ;; esac
    else
      fail "not installing without confirmation; rerun with --yes"
    fi
  fi
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ $NEED_APT -eq 1 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static debootstrap
fi
if [ $NEED_ROOTFS -eq 1 ]; then
  echo "== debootstrap arm64 bookworm into $ROOT"
  debootstrap --arch=arm64 --foreign --variant=minbase --include=python3 bookworm "$ROOT"
  for deb in "$ROOT"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
fi
mkdir -p "$ROOT/proc"
cat > "$ROOT/proc/cpuinfo" <<'CPU'
processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

Hardware	: BCM2835
Model		: Raspberry Pi 4 Model B Rev 1.4
CPU
if [ $NEED_WHEELS -eq 1 ]; then
  echo "== aarch64 wheels from PyPI into $ROOT/opt/edge-site"
  "$PY" -m pip install -q --target "$ROOT/opt/edge-site" --only-binary=:all: \
    --python-version 3.11 --implementation cp --platform manylinux_2_27_aarch64 \
    --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 \
    --platform manylinux_2_28_aarch64 -r "$REPO/requirements-edge.txt"
fi
ARM=(qemu-aarch64-static -L "$ROOT" "$ROOT/usr/bin/python3.11")
ARM_PATH="$ROOT/opt/edge-site:$REPO"

echo "== test rows of $RUN"
("$PY" - "$RUN" "$WORK/test.csv" <<'PYEOF'
import csv, sys
from sdss_distill.core.io import quiet_import
quiet_import("keras")
from sdss_distill.export.source import RunData
run = RunData(sys.argv[1])
cols = run.teacher_view.columns
x = run.x_test[run.teacher_view.name]
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["objid", *cols])
    w.writerows([[k, *(repr(float(v)) for v in row)] for k, row in enumerate(x)])
print(f"{len(x)} test rows, columns {' '.join(cols)}")
PYEOF
)
PYTHONPATH="$ARM_PATH" "${ARM[@]}" -c \
  "import platform, ai_edge_litert, numpy; print('emulated:', platform.machine(), platform.python_version(), 'numpy', numpy.__version__)"

status=0
for model in "${MODELS[@]}"; do
  name=$(basename "$model" .tflite)
  "$PY" -m sdss_distill.edge predict --model "$model" --input "$WORK/test.csv" \
      --output "$WORK/$name.x86.csv" 2>/dev/null
  start=$(date +%s)
  PYTHONPATH="$ARM_PATH" "${ARM[@]}" -m sdss_distill.edge predict --model "$model" \
      --input "$WORK/test.csv" --output "$WORK/$name.arm.csv" 2>/dev/null
  secs=$(( $(date +%s) - start ))
  "$PY" - "$WORK/$name.x86.csv" "$WORK/$name.arm.csv" "$name" "$secs" <<'PYEOF' || status=1
import csv, sys
a, b = ([r for r in csv.DictReader(open(p))] for p in sys.argv[1:3])
same = sum(x["class"] == y["class"] for x, y in zip(a, b))
diff = max(abs(float(x[k]) - float(y[k])) for x, y in zip(a, b) for k in x if k.startswith("p_"))
ok = len(a) == len(b) and same == len(a)
print(f"{sys.argv[3]:20s} aarch64 vs x86: {same}/{len(a)} same class, max |p diff| "
      f"{diff:.2e}, {sys.argv[4]} s emulated: {'OK' if ok else 'MISMATCH'}")
sys.exit(0 if ok else 1)
PYEOF
done
exit $status
