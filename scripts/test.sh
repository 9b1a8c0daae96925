#!/usr/bin/env bash
# Install Quant Lab with its test dependencies and run the test suite.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
python -m pytest "$@"
