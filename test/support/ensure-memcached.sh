#!/usr/bin/env bash
# The differential tests and the benchmark compare kai with Debian's memcached, so the test
# command installs it when it is missing (as root, from Debian's packages). The TLS tests make
# their certificates with the openssl command, and the tools tests run libmemcached's clients
# (memccapable, memcdump, memcstat, memcping) against kai; both are installed the same way.
set -euo pipefail
if [ -x /usr/bin/memcached ] && command -v openssl >/dev/null 2>&1 && command -v memccapable >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "memcached, openssl or libmemcached-tools is missing: install Debian's packages first (sudo apt-get install -y memcached openssl libmemcached-tools)" >&2
  exit 1
fi
echo "installing Debian's memcached, openssl and libmemcached-tools for the differential, TLS and tools tests" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends memcached openssl libmemcached-tools >/dev/null
# The package may start a system service; the tests start their own instances on free ports.
if command -v service >/dev/null 2>&1; then service memcached stop >/dev/null 2>&1 || true; fi
