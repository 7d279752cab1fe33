#!/bin/sh
# Install with apt-get whatever of the build, run and test dependencies is
# missing.  Quiet and quick when everything is there already.

set -e

PKGS="nginx nginx-dev redis-server libhiredis-dev libsodium-dev libyajl-dev
libssl-dev libcurl4-openssl-dev libcmocka-dev openssl make gcc clang
libclang-rt-14-dev libtest-base-perl libio-socket-ssl-perl libnet-ssleay-perl
libjson-perl wrk curl"

missing=
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null \
         | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

echo "deps: installing$missing"

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# nginx-dev and nginx come from the same source package; installing them in one
# transaction keeps their versions equal, which --with-compat modules need.
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null

# the packaged services are not ours: make run starts private instances
if command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable --now redis-server nginx >/dev/null 2>&1 || true
fi
