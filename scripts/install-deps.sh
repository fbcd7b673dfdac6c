#!/usr/bin/env bash
# Installs what building and testing edema needs on Debian (bookworm or
# later): libtorch (the C++ library the shim wraps), the C++ toolchain and
# CMake, and Debian's PyTorch, NumPy and scikit-learn, which the tests use
# as their reference, and Chromium, the browser the upload page is tested
# in. Packages already present are left alone; sudo is used
# only when not running as root.
set -euo pipefail

packages=(libtorch-dev libgloo-dev cmake g++ make pkg-config python3-torch python3-numpy python3-sklearn chromium)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null 2>&1; then
  echo "Go 1.26 or later is needed (https://go.dev/dl/); put it on PATH and run again" >&2
  exit 1
fi
