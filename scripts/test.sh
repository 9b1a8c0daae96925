#!/usr/bin/env bash
# Install Quant Lab with its test dependencies and run the test suite.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
# Debian's chromium for the UI browser test (no-op when present; without root the test skips).
bash "$ROOT/scripts/install_browser.sh"
python -m pytest "$@"
