#!/usr/bin/env bash
# `make demo`: the embedded directory with the demo school, a sync of its roster, the portal
# running on localhost, and how to sign in. Idempotent: run it again to get the same state.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-config.yaml}
M=".venv/bin/mimsdir --config $CONFIG"
$M directory up
$M directory load ldap-fixtures/demo-school.ldif
# The nightly job, once: the demo roster matches the loaded school, so it plans no change.
$M sync ldap-fixtures/demo-school.csv --report "${VAR:-var}/demo-sync.json"
.venv/bin/python scripts/demo_accounts.py "$CONFIG"
bash scripts/portal.sh start "$CONFIG"
# The demo applications (demo/catalogue.py): registered once, then reused; each in the background.
.venv/bin/python -m demo register "$CONFIG"
bash scripts/demo_apps.sh start "$CONFIG"
.venv/bin/python -m demo instructions "$CONFIG"
echo
echo "Directory status: $M directory status     Stop everything: make down"
