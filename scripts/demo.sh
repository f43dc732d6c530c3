#!/usr/bin/env bash
# `make demo`: the embedded directory with the demo school, and how to sign in. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-config.yaml}
M=".venv/bin/mimsdir --config $CONFIG"
$M directory up
$M directory load ldap-fixtures/demo-school.ldif
# The nightly job, once: the demo roster matches the loaded school, so it plans no change.
$M sync ldap-fixtures/demo-school.csv --report var/demo-sync.json
.venv/bin/python scripts/demo_accounts.py "$CONFIG"
echo
echo "Directory status: $M directory status     Stop it: make down"
