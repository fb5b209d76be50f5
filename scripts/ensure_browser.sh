#!/usr/bin/env bash
# Install Debian's headless Chromium and its matching chromedriver for the browser test
# (tests/e2e/test_teacher_page.py). Idempotent: does nothing when both are already there.
# Needs root (CI runs as root) or sudo. Set EDUQ_SKIP_BROWSER_INSTALL=1 to only check.
set -u
have() { command -v "$1" >/dev/null 2>&1; }
browser() { for b in chromium chromium-browser google-chrome; do have "$b" && { echo "$b"; return 0; }; done; return 1; }
if browser >/dev/null && have chromedriver; then
  echo "browser: $($(browser) --version 2>/dev/null | head -1); $(chromedriver --version | head -1)"
  exit 0
fi
if [ "${EDUQ_SKIP_BROWSER_INSTALL:-0}" = "1" ]; then
  echo "chromium/chromedriver missing and EDUQ_SKIP_BROWSER_INSTALL=1" >&2; exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if have sudo; then SUDO="sudo -n"; else echo "need root (or sudo) to apt-get install chromium chromium-driver" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || { echo "apt-get update failed" >&2; exit 1; }
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null \
  || { echo "apt-get install chromium chromium-driver failed" >&2; exit 1; }
browser >/dev/null && have chromedriver || { echo "chromium or chromedriver still missing after install" >&2; exit 1; }
echo "browser: $($(browser) --version 2>/dev/null | head -1); $(chromedriver --version | head -1)"
