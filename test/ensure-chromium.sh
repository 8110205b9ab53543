#!/usr/bin/env bash
# The browser tests (lcmon --web, contexture-store web) drive Debian's chromium at /usr/bin/chromium
# through playwright-core; no browser is ever downloaded. `npm test` runs this first: it installs
# the chromium package when it is missing and the machine can (root with apt-get), and otherwise
# says what to install, failing before the tests do.
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "test: installing Debian's chromium for the browser tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "test: the browser tests need /usr/bin/chromium: run 'sudo apt-get install -y chromium' (Debian, Ubuntu)" >&2
exit 1
