#!/usr/bin/env bash
# Idempotent installer for the deployment kit's offline validator (kubernetes-validate,
# which carries the Kubernetes JSON schemas in the package: no network at test time).
#
#   test/deploy/install.sh      # prints the venv's kubernetes-validate path as the last line
#
# Virtualenv at ${PLANASONIX_BRIDGE_CACHE:-~/.cache/planasonix-bridge}/kit-venv, with exactly
# the pins of test/deploy/requirements.txt; rebuilt when that file changes (its hash is kept
# in the marker). Concurrent callers serialise on a flock; an interrupted install (no
# marker) is redone. Progress goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
requirements="$here/requirements.txt"
cache_root="${PLANASONIX_BRIDGE_CACHE:-$HOME/.cache/planasonix-bridge}"
venv="$cache_root/kit-venv"
marker="$venv/.planasonix-complete"
hash="$(sha256sum "$requirements" | cut -c1-12)"
python="${PYTHON:-python3}"

ready() { [ -f "$marker" ] && [ "$(cat "$marker")" = "$hash" ] && [ -x "$venv/bin/kubernetes-validate" ]; }

mkdir -p "$cache_root"
if ready; then echo "$venv/bin/kubernetes-validate"; exit 0; fi
exec 9>"$cache_root/.kit-venv.lock"
flock 9
if ready; then echo "$venv/bin/kubernetes-validate"; exit 0; fi

start=$(date +%s)
echo "installing kubernetes-validate into $venv ..." >&2
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements" >&2
"$venv/bin/kubernetes-validate" --version >&2
echo "$hash" >"$marker"
echo "kit venv ready in $(( $(date +%s) - start ))s" >&2
echo "$venv/bin/kubernetes-validate"
