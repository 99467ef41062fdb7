#!/usr/bin/env bash
# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
# Builds the op library //custom_ops:_adder_ops.so with Debian's Bazel, offline,
# from the same sources and flags as the pip build (see custom_ops/BUILD).
#
#   custom_ops/bazel_build.sh [PYTHON]
#
# PYTHON: the interpreter whose TensorFlow to build against; default
# $PYTHON_BIN_PATH, else .venv/bin/python in the repository root.
# Installs bazel-bootstrap and bazel-rules-java with apt-get when they are
# missing. Bazel's own messages go to stderr; the LAST stdout line is the
# absolute path of the built library, e.g.
#   ADDERNET_TF_LIBRARY=$(custom_ops/bazel_build.sh | tail -n 1) pytest tests/ops
#
# Environment:
#   PYTHON_BIN_PATH      default interpreter (see above)
#   ADDERNET_TF_MARCH    -march value (default: native), as for setup.py
#   ADDERNET_TF_CUDA     auto (default): GPU kernels when nvcc and the static
#                        CUDA runtime are found; 1: require them (fails with the
#                        reason otherwise); 0: CPU only. As for setup.py: both
#                        follow custom_ops/cuda_config.py, which also reads
#   ADDERNET_TF_CUDA_ARCHS  GPU architectures (default: "80;90"),
#   NVCC                 the CUDA compiler (default: nvcc on PATH) and
#   CUDA_HOME            the toolkit holding libcudart_static.a.
#                        (Passed with --repo_env to @local_cuda,
#                        third_party/cuda/cuda_configure.bzl; a change re-runs it.)
#   BAZEL                Bazel binary (default: bazel-4, else bazel, on PATH)
#   BAZEL_JOBS           parallel jobs (default: 2)
#   BAZEL_RULES_JAVA_DIR Debian rules_java folder, if not the packaged one
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="//custom_ops:_adder_ops.so"
# Built beside it so that CI compiles the LiteRT op with Bazel too.
LITERT_TARGET="//custom_ops:_adder_litert.so"

log() { echo "bazel_build: $*" >&2; }

# --- The interpreter (absolute, symlinks kept: a venv's python is a link). --
PY="${1:-${PYTHON_BIN_PATH:-$ROOT/.venv/bin/python}}"
case "$PY" in
  /*) ;;
  */*) PY="$PWD/$PY" ;;
  *) PY="$(command -v "$PY" || true)" ;;
esac
if [ -z "$PY" ] || [ ! -x "$PY" ]; then
  log "no Python interpreter at '${1:-${PYTHON_BIN_PATH:-$ROOT/.venv/bin/python}}'" \
      "(pass one, or set PYTHON_BIN_PATH; run 'make setup' to create .venv)"
  exit 1
fi

# --- Bazel and Debian's rules_java, installed only when missing. ----------
find_bazel() {
  if [ -n "${BAZEL:-}" ]; then
    command -v "$BAZEL" || true
  else
    command -v bazel-4 || command -v bazel || true
  fi
}

have_rules_java() {
  [ -n "${BAZEL_RULES_JAVA_DIR:-}" ] && [ -f "$BAZEL_RULES_JAVA_DIR/java/defs.bzl" ] && return 0
  dpkg -s bazel-rules-java >/dev/null 2>&1
}

apt_install() {
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { log "need root (or sudo) to apt-get install $*"; exit 1; }
    sudo=(sudo)
  fi
  # apt's chatter goes to a log, shown only when a step fails.
  local aptlog
  aptlog="$(mktemp)"
  run_apt() {
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@" >"$aptlog" 2>&1; then
      cat "$aptlog" >&2
      rm -f "$aptlog"
      log "apt-get $* failed"
      exit 1
    fi
  }
  # apt-get update only when the package lists don't know the packages yet.
  local pkg
  for pkg in "$@"; do
    if ! apt-cache show "$pkg" >/dev/null 2>&1; then
      log "apt-get update"
      run_apt update -q
      break
    fi
  done
  log "apt-get install -y $*"
  run_apt install -y -q "$@"
  rm -f "$aptlog"
}

BAZEL_BIN="$(find_bazel)"
missing=()
[ -n "$BAZEL_BIN" ] || missing+=(bazel-bootstrap)
have_rules_java || missing+=(bazel-rules-java)
if [ "${#missing[@]}" -gt 0 ]; then
  apt_install "${missing[@]}"
  BAZEL_BIN="$(find_bazel)"
  [ -n "$BAZEL_BIN" ] || { log "bazel is still missing after apt-get install"; exit 1; }
fi

# --- Build. -----------------------------------------------------------------
cd "$ROOT"
export PYTHON_BIN_PATH="$PY"
opts=(
  --jobs="${BAZEL_JOBS:-2}"
  --repo_env=PYTHON_BIN_PATH="$PY"
  --noshow_progress
  --show_result=0
  --ui_event_filters=-info
)
if [ -n "${ADDERNET_TF_MARCH:-}" ]; then
  opts+=(--define=ADDER_MARCH="$ADDERNET_TF_MARCH")
fi
# Flags beyond -march that the target needs (custom_ops/cpu_flags.py).
for flag in $("$PY" "$ROOT/custom_ops/cpu_flags.py"); do
  [[ "$flag" == -march=* ]] || opts+=(--copt="$flag")
done
if [ -n "${BAZEL_RULES_JAVA_DIR:-}" ]; then
  opts+=(--repo_env=BAZEL_RULES_JAVA_DIR="$BAZEL_RULES_JAVA_DIR")
fi
# The CUDA decision's inputs, for @local_cuda. Only what is set: the rule then
# sees exactly the environment `cuda_config.py` would see here. nvcc's actions
# need none of them (the rule bakes nvcc's path and flags into them).
for var in ADDERNET_TF_CUDA ADDERNET_TF_CUDA_ARCHS NVCC CUDA_HOME; do
  if [ -n "${!var+set}" ]; then
    opts+=(--repo_env="$var=${!var}")
  fi
done

log "building $TARGET and $LITERT_TARGET against $PY"
"$BAZEL_BIN" build "${opts[@]}" "$TARGET" "$LITERT_TARGET" >&2

INFO="$("$BAZEL_BIN" info "${opts[@]}" bazel-bin output_base 2>/dev/null)"
BIN_DIR="$(sed -n 's/^bazel-bin: //p' <<<"$INFO")"
LIB="$BIN_DIR/custom_ops/_adder_ops.so"
[ -f "$LIB" ] || { log "built, but $LIB is missing"; exit 1; }
# What @local_cuda decided (cf. setup.py's "GPU kernels included" line).
CUDA_DEFS="$(sed -n 's/^output_base: //p' <<<"$INFO")/external/local_cuda/defs.bzl"
if grep -qx 'CUDA_ENABLED = True' "$CUDA_DEFS" 2>/dev/null; then
  log "GPU kernels included"
else
  log "GPU kernels not built (CPU only)"
fi
echo "$LIB"
