#!/usr/bin/env bash
# Set up derive on a fresh Debian machine, then build the exam's sheets into build/.
# Installs TeX Live, poppler-utils, Chromium (for the HTML sheets' browser test; and pip,
# where missing) from apt, then the
# Python package with its test dependencies. `--no-build` skips the build.
set -euo pipefail
cd "$(dirname "$0")"

apt_packages=()
if command -v pdflatex >/dev/null 2>&1; then
    # A partial TeX installation: add the Debian package of each LaTeX file the sheets load.
    for pair in amsmath.sty:texlive-latex-base amssymb.sty:texlive-base xcolor.sty:texlive-latex-recommended \
                booktabs.sty:texlive-latex-recommended tikz.sty:texlive-pictures lmodern.sty:lmodern; do
        kpsewhich "${pair%%:*}" >/dev/null 2>&1 || apt_packages+=("${pair#*:}")
    done
else
    apt_packages+=(texlive-latex-base texlive-latex-recommended texlive-pictures texlive-fonts-recommended lmodern)
fi
command -v pdftotext >/dev/null 2>&1 || apt_packages+=(poppler-utils)
# The test that opens the HTML sheets in a real browser runs Debian's headless Chromium.
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || apt_packages+=(chromium)
python3 -m pip --version >/dev/null 2>&1 || apt_packages+=(python3-pip)
if [ ${#apt_packages[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "installing with apt: ${apt_packages[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

# Debian's own Python refuses pip installs outside a venv (PEP 668); this project is the
# machine's purpose here, so allow it. Other Pythons ignore the variable.
PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check -e '.[test]'
# An editable install leaves our modules uncompiled (pip compiles the files it copies, not
# these). Compile them now, as pip would, so that no run pays for it: where
# PYTHONDONTWRITEBYTECODE is set, every run would otherwise compile them again (40 ms).
python3 -m compileall -q cli.py derivations sheets grading >/dev/null

if [ "${1:-}" != "--no-build" ]; then
    python3 cli.py build --out build
fi
