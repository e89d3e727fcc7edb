#!/usr/bin/env bash
# Set up everything the book and the tests need on a fresh Linux machine (idempotent):
#   1. Debian packages: chromium (browser test), nodejs/npm (vendored JS), bubblewrap (the grader's sandbox),
#      sword-text-web/sword-text-sparv (the Bibles the shipped EN->ES verses are re-extracted from in a test)
#   2. a virtual environment in .venv with the pinned Python packages and llmbook (editable)
#   3. MathJax, require.js and the ipywidgets HTML manager copied into _vendor/ for an offline book
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(chromium nodejs npm bubblewrap sword-text-web sword-text-sparv)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if command -v node >/dev/null && command -v npm >/dev/null; then   # a Node.js from elsewhere will do
        missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
        read -ra missing <<< "${missing[*]}"
    fi
fi
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"; else SUDO="none"; fi
    if [ "$SUDO" = none ]; then
        echo "setup: these Debian packages are missing and this user cannot install them: ${missing[*]}" >&2
        echo "setup: ask an administrator to run:  apt-get install -y ${missing[*]}" >&2
        echo "setup: (chromium is only needed by the browser test)" >&2
    else
        echo "setup: installing Debian packages: ${missing[*]}"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($PY --version)"
    $PY -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# CPU builds: torch==2.13.0 and tensorflow-cpu. A CUDA torch already in .venv (GPU machine) is kept.
TORCH="torch==2.13.0"
if .venv/bin/python -c "import sys, torch; sys.exit(0 if torch.version.cuda else 1)" 2>/dev/null; then
    TORCH=""
    echo "setup: keeping the CUDA build of torch found in .venv"
fi
.venv/bin/python -m pip install -q -c constraints.txt $TORCH tensorflow-cpu==2.21.0 -e ".[dev]"

bash tools/vendor.sh
echo "setup: done (.venv ready; activate with 'source .venv/bin/activate')"
