#!/usr/bin/env bash
# Idempotent installer for the real-Airflow test harness.
#
#   test/airflow/install.sh 3    # Apache Airflow 3.3.x  (constraints-3.txt)
#   test/airflow/install.sh 2    # Apache Airflow 2.11.x (constraints-2.txt)
#
# Creates (if missing) a virtualenv at
#   ${PLANASONIX_BRIDGE_CACHE:-~/.cache/planasonix-bridge}/airflow<N>-<sha256(constraints-N.txt)[:12]>/
# installs exactly the pinned set from constraints-N.txt into it, checks that
# `airflow version` runs, and prints the venv path as the LAST line of stdout.
# All progress/pip output goes to stderr. Concurrent callers serialise on a
# flock; an interrupted install is detected (no .complete marker) and redone.
#
# Env: PYTHON (default python3; the pins were frozen on CPython 3.11),
#      PLANASONIX_BRIDGE_CACHE (default ~/.cache/planasonix-bridge).
set -euo pipefail

major="${1:-}"
case "$major" in
  2 | 3) ;;
  *)
    echo "usage: $0 <3|2>" >&2
    exit 2
    ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
constraints="$here/constraints-$major.txt"
[ -f "$constraints" ] || { echo "missing $constraints" >&2; exit 1; }

cache_root="${PLANASONIX_BRIDGE_CACHE:-$HOME/.cache/planasonix-bridge}"
hash="$(sha256sum "$constraints" | cut -c1-12)"
venv="$cache_root/airflow$major-$hash"
marker="$venv/.planasonix-complete"
python="${PYTHON:-python3}"

mkdir -p "$cache_root"

if [ -f "$marker" ] && [ -x "$venv/bin/airflow" ]; then
  echo "$venv"
  exit 0
fi

exec 9>"$cache_root/.airflow$major-$hash.lock"
flock 9

# Someone else may have finished while we waited for the lock.
if [ -f "$marker" ] && [ -x "$venv/bin/airflow" ]; then
  echo "$venv"
  exit 0
fi

pyver="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ "$pyver" != "3.11" ]; then
  echo "warning: $constraints was frozen on CPython 3.11, using $python ($pyver)" >&2
fi

start=$(date +%s)
echo "installing Airflow $major into $venv ..." >&2
rm -rf "$venv"
"$python" -m venv "$venv"
# Exact pins for every package (the file is a full `pip freeze`), so there is
# nothing to resolve; --no-deps would also work but we let pip verify the set.
PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install \
  --no-input --progress-bar off -q -r "$constraints" 1>&2
"$venv/bin/python" -m pip check 1>&2
# Smoke: the CLI imports and reports the pinned version.
want="$(sed -n 's/^apache-airflow==//p' "$constraints")"
got="$(AIRFLOW_HOME="$venv/.smoke-home" "$venv/bin/airflow" version 2>/dev/null | tail -n 1)"
rm -rf "$venv/.smoke-home"
if [ "$got" != "$want" ]; then
  echo "airflow version check failed: want $want, got '$got'" >&2
  exit 1
fi
echo "$want" >"$marker"
echo "installed Airflow $got in $(($(date +%s) - start))s" >&2
echo "$venv"
