#!/usr/bin/env bash
# The differential tests and the benchmark compare kai with Debian's memcached, so the test
# command installs it when it is missing (as root, from Debian's packages).
set -euo pipefail
if [ -x /usr/bin/memcached ]; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "memcached is missing: install Debian's package first (sudo apt-get install -y memcached)" >&2
  exit 1
fi
echo "installing Debian's memcached for the differential tests" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends memcached >/dev/null
# The package may start a system service; the tests start their own instances on free ports.
if command -v service >/dev/null 2>&1; then service memcached stop >/dev/null 2>&1 || true; fi
