#!/bin/sh
# Install the Debian packages the build and the tests need.  Idempotent.
set -e
PKGS="build-essential pkg-config libopenblas-dev libjansson-dev libpcre2-dev libutf8proc-dev
libzstd-dev zstd libcurl4-openssl-dev bats jq clang libclang-rt-14-dev
libsndfile1-dev libsoxr-dev libfftw3-dev zlib1g-dev espeak-ng"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && { echo "deps: all installed"; exit 0; }
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "deps: installing$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
