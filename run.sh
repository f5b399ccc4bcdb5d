#!/usr/bin/env bash
# The project's two commands (and the setup they share).
#
#   ./run.sh demo [OPTIONS]   set up, then run the whole flow locally (stsmon demo)
#   ./run.sh test [ARGS]      set up with the test tools, then run the test suite (pytest)
#   ./run.sh test --fast      the same without the tests marked slow (the edit-test loop)
#   ./run.sh setup [--dev]    set up only
#
# Setup is idempotent and incremental: .venv (requirements*.txt, the stsmon
# package), node_modules (the pinned CDK CLI), and for tests .venv-tools
# (checkov), .venv-serving (the SageMaker scikit-learn image's serving stack,
# requirements-serving.txt: the 1.9-0 image's lock; Python 3.12 like the image
# when there is one) and
# Debian's chromium when running as root. Needs Python 3.11+ and Node 20+.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)

PYTHON=${PYTHON:-python3}
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
export CDK_DISABLE_CLI_TELEMETRY=true
export PIP_DISABLE_PIP_VERSION_CHECK=1

# pip prints a warning per package for this machine's local index folders; keep real errors.
pipq() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

check_tools() {
  command -v "$PYTHON" >/dev/null || die "Python 3.11+ is needed ($PYTHON not found; set PYTHON=...)"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Python 3.11+ is needed, $PYTHON is $("$PYTHON" -V 2>&1)"
  command -v node >/dev/null || die "Node.js 20+ is needed (node not found)"
  node -e 'process.exit(parseInt(process.versions.node) < 20 ? 1 : 0)' \
    || die "Node.js 20+ is needed, found $(node --version)"
  command -v npm >/dev/null || die "npm is needed (it comes with Node.js)"
}

# stamp NAME FILES... : true when FILES changed since the stamp was written
stale() {
  local name=$1; shift
  local sum; sum=$(cat "$@" | sha256sum | cut -c1-64)
  [ "$(cat ".setup-stamp-$name" 2>/dev/null)" != "$sum" ]
}
stamp() {
  local name=$1; shift
  cat "$@" | sha256sum | cut -c1-64 > ".setup-stamp-$name"
}

# The image's serving stack runs Python 3.12: $SERVING_PYTHON, python3.12 on PATH, or
# pyenv's newest 3.12; else $PYTHON (numpy/scipy then fall back by environment marker).
serving_python() {
  local c v
  for c in "${SERVING_PYTHON:-}" python3.12; do
    if [ -n "$c" ] && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
      echo "$c"; return
    fi
  done
  if command -v pyenv >/dev/null; then
    v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$' | sort -V | tail -1 || true)
    c=${v:+$(pyenv prefix "$v" 2>/dev/null)/bin/python3.12}
    if [ -n "$c" ] && [ -x "$c" ]; then echo "$c"; return; fi
  fi
  echo "$PYTHON"
}

# Exactly the image's packages, no resolution (its Dockerfile: uv sync --frozen; so
# sagemaker-containers comes without its flask==1.1.1 pin), then the Dockerfile's
# Python 3.12 patch of sagemaker-containers.
PATCH_MAPPING='import pathlib, sysconfig
path = pathlib.Path(sysconfig.get_paths()["purelib"], "sagemaker_containers", "_mapping.py")
path.write_text(path.read_text().replace("collections.Mapping", "collections.abc.Mapping"))'

setup_serving() {
  local py ver
  py=$(serving_python)
  ver=$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
  if [ -x .venv-serving/bin/python ] && ! stale serving requirements-serving.txt <(echo "$ver"); then
    return
  fi
  say "creating .venv-serving (the SageMaker scikit-learn image's serving stack, Python $ver)"
  rm -rf .venv-serving
  "$py" -m venv .venv-serving
  pipq .venv-serving/bin/python -m pip install -q --no-deps -r requirements-serving.txt
  .venv-serving/bin/python -c "$PATCH_MAPPING"
  case "$ver" in
    3.12.*) ;;
    *) echo "The SageMaker scikit-learn image runs Python 3.12; .venv-serving runs Python $ver" \
            "(no Python 3.12 found; numpy and scipy at the nearest pins that support it," \
            "see requirements-serving.txt)." > .venv-serving/PYTHON_NOTE
       say "note: $(cat .venv-serving/PYTHON_NOTE)" ;;
  esac
  stamp serving requirements-serving.txt <(echo "$ver")
}

setup() {
  local dev=${1:-}
  check_tools
  if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    "$PYTHON" -m venv .venv
  fi
  local reqs=requirements.txt name=venv
  if [ "$dev" = "--dev" ]; then reqs=requirements-dev.txt; name=venv-dev; fi
  if stale "$name" requirements.txt "$reqs" pyproject.toml; then
    say "installing Python packages ($reqs)"
    pipq .venv/bin/python -m pip install -q -r "$reqs"
    pipq .venv/bin/python -m pip install -q --no-deps -e .
    stamp "$name" requirements.txt "$reqs" pyproject.toml
  fi
  if [ ! -x node_modules/.bin/cdk ] || stale npm package.json package-lock.json; then
    say "installing the pinned CDK CLI (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
    stamp npm package.json package-lock.json
  fi
  if [ "$dev" = "--dev" ]; then
    if [ ! -x .venv-tools/bin/checkov ] || stale tools requirements-tools.txt; then
      say "installing checkov (.venv-tools)"
      [ -x .venv-tools/bin/python ] || "$PYTHON" -m venv .venv-tools
      pipq .venv-tools/bin/python -m pip install -q -r requirements-tools.txt
      stamp tools requirements-tools.txt
    fi
    setup_serving
    if ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then
      local sudo=""
      [ "$(id -u)" = 0 ] || sudo="sudo -n"
      say "installing Debian's chromium (for the report rendering test)"
      ($sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null) \
        || say "could not install chromium; the report rendering test will say so"
    fi
  fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  setup)
    setup "${1:-}"
    ;;
  demo)
    setup
    exec .venv/bin/stsmon demo "$@"
    ;;
  test)
    setup --dev
    export PATH="$ROOT/.venv-tools/bin:$ROOT/node_modules/.bin:$PATH"
    # --fast: the edit-test loop, without the tests marked slow (end-to-end runs, real synths, servers under load)
    args=()
    for arg in "$@"; do
      if [ "$arg" = "--fast" ]; then args+=(-m "not slow"); else args+=("$arg"); fi
    done
    exec .venv/bin/python -m pytest -n 2 --dist loadfile ${args[@]+"${args[@]}"}
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'
    [ -z "$cmd" ] || die "unknown command: $cmd"
    exit 2
    ;;
esac
