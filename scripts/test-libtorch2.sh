#!/usr/bin/env bash
# make test-libtorch2: the whole test suite against libtorch 2.6, with
# PyTorch 2.6 and NumPy 2 as the reference, in a Debian trixie chroot.
#
# The chroot is made once with mmdebstrap (installed on demand) and kept in
# $EDEMA_CHROOT_CACHE (default /var/cache/edema) as a tarball, from which
# later runs restore it. A copy of this checkout's files (tracked and
# untracked, not ignored) goes into the chroot, where the shim is built
# against trixie's libtorch-dev and every test runs (go vet, go test ./...,
# the race test of concurrent predictions) with CI=true, so that a missing
# reference fails rather than skips. What does not depend on libtorch
# (formatting, go mod tidy, fuzzing the pure-Go decoders, the examples
# module) is left to make test. Go comes from the
# host, bound read-only, and so do its module cache and the host's CA
# certificates (the module proxy may need them). Every mount lives in a
# private mount namespace (unshare --mount) and goes with it.
#
# Environment: EDEMA_CHROOT_CACHE, EDEMA_MIRROR (default: the host's
# Debian mirror), GO (default: go on PATH or /usr/local/go/bin/go),
# PACKAGES (default ./...: the packages to test, for a quicker check).
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${EDEMA_CHROOT_CACHE:-/var/cache/edema}
packages=libtorch-dev,libgloo-dev,python3-torch,python3-numpy,python3-sklearn,cmake,g++,make,pkg-config,chromium,ca-certificates,git
# The tarball's name carries a digest of the package list, so that a
# changed list makes a new chroot instead of reusing one that lacks some.
tarball=$cache/trixie-libtorch2-$(printf %s "$packages" | sha256sum | cut -c1-12).tar
mirror=${EDEMA_MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
mirror=${mirror:-http://deb.debian.org/debian}
go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
goroot=$("$go" env GOROOT)
modcache=$("$go" env GOMODCACHE)
packages_to_test=${PACKAGES:-./...}
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

t0=$SECONDS
step() { printf '[%4ds] %s\n' $((SECONDS - t0)) "$*" >&2; }

root=$(mktemp -d)
cleanup() { $sudo rm -rf "$root"; }
trap cleanup EXIT

if [ -f "$tarball" ]; then
  step "restoring the chroot from $tarball"
  $sudo tar -C "$root" -xf "$tarball"
else
  if ! command -v mmdebstrap >/dev/null; then
    step "installing mmdebstrap"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
  fi
  step "making a trixie chroot from $mirror (libtorch 2.6, PyTorch 2.6, NumPy 2)"
  $sudo mmdebstrap --quiet --variant=apt --include="$packages" trixie "$root" "$mirror"
  $sudo mkdir -p "$cache"
  $sudo tar -C "$root" -cf "$tarball.tmp" . && $sudo mv "$tarball.tmp" "$tarball"
  step "cached the chroot in $tarball"
fi

step "copying the checkout into the chroot"
$sudo mkdir -p "$root/src" "$root/usr/local/go" "$root/gomod"
git ls-files -z --cached --others --exclude-standard | $sudo tar -c --null -T - -f - | $sudo tar -C "$root/src" -xf -

step "building and testing against $($sudo chroot "$root" dpkg-query -W -f='libtorch-dev ${Version}' libtorch-dev)"
# The host's CA bundle replaces the chroot's, so that the same proxies and
# mirrors are trusted inside.
$sudo unshare --mount --propagation private sh -euc '
  root=$1 goroot=$2 modcache=$3 pkgs=$4
  mount --rbind /dev "$root/dev"
  mount -t proc proc "$root/proc"
  mount -t tmpfs tmpfs "$root/tmp"
  mount --bind -o ro "$goroot" "$root/usr/local/go"
  mount --bind "$modcache" "$root/gomod"
  mount --bind -o ro /etc/resolv.conf "$root/etc/resolv.conf"
  mount --bind -o ro /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  exec chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/go/bin:/usr/bin:/bin \
    GOMODCACHE=/gomod GOFLAGS="-modcacherw -buildvcs=false" GOTOOLCHAIN=local CI=true \
    ${GOPROXY:+GOPROXY=$GOPROXY} LANG=C.UTF-8 \
    sh -euc "cd /src && make -s shim && go vet ./... && go test -count=1 $pkgs && go test -race -count=1 -run TestConcurrentPredictions ./inference"
' sh "$root" "$goroot" "$modcache" "$packages_to_test"
step "libtorch 2.x: every test passed"
