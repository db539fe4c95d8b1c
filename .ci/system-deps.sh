#!/usr/bin/env bash
# The system packages the test suite needs (real servers on loopback), installed when missing.
# Used by `make test` and by .ci/run. As root with apt-get it installs what is missing; otherwise it names
# the command to run, in one line, and fails (exit 2): `make test` runs every test or none.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# command -> Debian package
declare -A NEED=(
  [nginx]=nginx                 # throughput and access-log tests
  [dnsmasq]=dnsmasq-base        # a real DNS server on loopback (no system service)
  [tinyproxy]=tinyproxy         # a real HTTP proxy (proxies=, CONNECT) on loopback
  [chromium]=chromium           # dashboard and HTML report rendering
  [ps]=procps
  [taskset]=util-linux
  [make]=make
  [ip]=iproute2                 # network namespaces and veth pairs for the fault suite
  [nft]=nftables                # cuts and packet loss in those namespaces
)
missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${NEED[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "loadgen: the tests need ${packages% }: run 'sudo apt-get update && sudo apt-get install -y --no-install-recommends ${packages% }', then make test again" >&2
  exit 2
fi
echo "installing ${packages% } (apt-get)" >&2
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $packages >/dev/null
# Debian may start nginx as a system service on install; the tests run their own instances on loopback.
(systemctl stop nginx || service nginx stop || nginx -s stop) >/dev/null 2>&1 || true
(systemctl stop tinyproxy || service tinyproxy stop) >/dev/null 2>&1 || true
