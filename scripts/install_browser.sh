#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for the end-to-end UI test
# (quantlab_assets_tests/batch_orchestrator/test_ui_browser.py).
# Idempotent: does nothing when /usr/bin/chromium exists. Without apt-get or root it only
# prints a note and exits 0, so the rest of the suite still runs (the UI test then skips);
# as root with apt-get, a failed install exits 1.
set -uo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  echo "install_browser: $CHROMIUM present ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown'))"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser: NOTE: apt-get not available; install Chromium yourself to run the UI test (it will be skipped)."
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install_browser: NOTE: not root; run 'sudo apt-get install chromium' to run the UI test (it will be skipped)."
  exit 0
fi

# (A font comes with it: libfontconfig1 -> fontconfig-config depends on fonts-dejavu-core or similar.)
export DEBIAN_FRONTEND=noninteractive
if apt-get update && apt-get install -y --no-install-recommends chromium && [ -x "$CHROMIUM" ]; then
  echo "install_browser: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
  exit 0
fi
# Root with apt but the install failed (no network, no such package): say so loudly, so CI
# does not silently skip the UI test.
echo "install_browser: ERROR: could not install chromium with apt-get" >&2
exit 1
