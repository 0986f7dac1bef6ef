#!/bin/sh
# Install the Debian packages the build and the tests need.  Idempotent.
#   sh tools/deps.sh            the build's and the tests' packages
#   sh tools/deps.sh PKG...     just these packages (for the tools/ scripts)
# Runs apt-get as root, or through sudo for another user; says what it installs.
set -e
PKGS="build-essential pkg-config libopenblas-dev libjansson-dev libpcre2-dev libutf8proc-dev
libzstd-dev zstd libcurl4-openssl-dev bats jq clang libclang-rt-14-dev
libsndfile1-dev libsoxr-dev libfftw3-dev zlib1g-dev espeak-ng libespeak-ng-dev libpng-dev libjpeg-dev
openssh-server openssh-client parallel rsync iproute2 python3 python3-pip"
[ $# -gt 0 ] && PKGS="$*"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && { echo "deps: all installed ($(echo $PKGS))"; exit 0; }
command -v apt-get >/dev/null || { echo "deps: apt-get not found: install$missing by hand" >&2; exit 1; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: installing$missing needs root or sudo" >&2; exit 1; }
  SUDO=sudo
fi
echo "deps: installing$missing${SUDO:+ (with sudo)}"
$SUDO apt-get update -qq
# openssh-server is here for its sshd binary (tests/bats/cluster.bats starts its own sshds in
# network namespaces): a newly installed one must not start, or stay enabled as, the
# machine's SSH service.  policy-rc.d (Debian's switch for maintainer scripts) keeps it from
# starting during the install; its units are disabled afterwards.
new_sshd=""
case " $missing " in *" openssh-server "*) new_sshd=1 ;; esac
policy=""
if [ -n "$new_sshd" ] && [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  policy=1
fi
rc=0
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing || rc=$?
[ -n "$policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d
if [ -n "$new_sshd" ] && command -v systemctl >/dev/null; then
  $SUDO systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
  echo "deps: openssh-server installed for its sshd binary; the ssh service is left disabled"
fi
exit $rc
