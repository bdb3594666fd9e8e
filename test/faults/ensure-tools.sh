#!/usr/bin/env bash
# The fault tests (test/faults) put each kai node in its own network namespace on a bridge, built
# with `ip` (iproute2), and cut links between them with iptables. Install either when missing
# (as root, from Debian's packages). A non-root PATH may lack /usr/sbin, so look there too.
set -euo pipefail
has_tool() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}
missing=""
if ! has_tool ip; then missing="$missing iproute2"; fi
if ! has_tool iptables; then missing="$missing iptables"; fi
if [ -z "$missing" ]; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "the fault tests need$missing: install first (sudo apt-get install -y$missing)" >&2
  exit 1
fi
echo "installing$missing for the fault tests" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # $missing is a list of package names, split on purpose.
apt-get install -y -qq --no-install-recommends $missing >/dev/null
