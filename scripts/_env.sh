# Sourced by scripts/run and scripts/test: a virtualenv in .venv with Postdesk installed.
# Works on a fresh Debian 12 machine (python3.11) and on machines with pyenv.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    # Install Debian packages that are missing; apt-get update once, only if needed.
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "postdesk: installing Debian packages: ${missing[*]}" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    apt_install python3.11 python3.11-venv
    PYTHON=python3.11
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv 2>/dev/null || { apt_install python3-venv python3.11-venv; rm -rf .venv; "$PYTHON" -m venv .venv; }
    .venv/bin/python -m pip install -q --upgrade pip
fi
