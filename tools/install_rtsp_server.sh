#!/usr/bin/env bash
# Installs what tests/rtsp_server.py needs (gst-rtsp-server through python3-gi, x264enc) from Debian packages.
# Idempotent: returns in well under a second when the system python3 already has them. Without apt-get (or
# without root/sudo) it says so and returns 0: tests/test_rtsp_server.py then skips with that reason. With apt-get
# a failed install is an error, so a CI machine cannot skip the RTSP test silently.
set -euo pipefail

PACKAGES=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly)
CHECK=(/usr/bin/python3 "$(dirname "$0")/../tests/rtsp_server.py" --check)

if [ -x /usr/bin/python3 ] && "${CHECK[@]}" 2>/dev/null; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "install_rtsp_server: no apt-get here; the RTSP server test will skip" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    echo "install_rtsp_server: not root and no password-less sudo; the RTSP server test will skip" >&2
    exit 0
fi
echo "install_rtsp_server: installing ${PACKAGES[*]} (about a minute)" >&2
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
"${CHECK[@]}"
