#!/usr/bin/env bash
# Set up derive on a fresh Debian machine, then build the exam's sheets into build/.
# Installs TeX Live and poppler-utils from apt when pdflatex is missing, then the
# Python package with its test dependencies.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v pdflatex >/dev/null 2>&1 || ! command -v pdftotext >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        texlive-latex-base texlive-latex-recommended texlive-pictures \
        texlive-fonts-recommended lmodern poppler-utils >/dev/null
fi

python3 -m pip install -q -e '.[test]'

if [ "${1:-}" != "--no-build" ]; then
    python3 cli.py build --out build
fi
