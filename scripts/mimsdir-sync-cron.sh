#!/usr/bin/env bash
# Nightly roster sync for cron or systemd: one run, logged, with the exit code kept for alerts.
#
#   ROSTER=/srv/roster/students.csv MIMS_CONFIG=/etc/mimsdir/config.yaml \
#     /opt/mimsdir/scripts/mimsdir-sync-cron.sh [extra mimsdir sync options]
#
# Writes the human summary to $LOG_DIR/sync-YYYY-MM-DD.log and the JSON report next to it.
# Exit codes are mimsdir's: 0 done, 1 done with row errors, 2 usage/another run, 3 refused by
# a safety limit (nothing written), 4 directory unreachable (the next run converges).
set -uo pipefail
MIMSDIR=${MIMSDIR:-$(dirname "$0")/../.venv/bin/mimsdir}
ROSTER=${ROSTER:?set ROSTER to the roster file}
FORMAT=${FORMAT:-native}
LOG_DIR=${LOG_DIR:-/var/log/mimsdir}
mkdir -p "$LOG_DIR"
chmod 0750 "$LOG_DIR"
day=$(date +%F)
log="$LOG_DIR/sync-$day.log"
report="$LOG_DIR/sync-$day.json"
(
  echo "== $(date -Is) mimsdir sync $ROSTER (format $FORMAT)"
  "$MIMSDIR" sync "$ROSTER" --format "$FORMAT" --report "$report" "$@"
  rc=$?
  echo "== $(date -Is) exit $rc"
  exit $rc
) >>"$log" 2>&1
rc=$?
# cron mails whatever is printed: stay quiet on success, say why otherwise.
case $rc in
  0) ;;
  1) echo "mimsdir sync: done with row errors, see $log" ;;
  3) echo "mimsdir sync: REFUSED by a safety limit, nothing written, see $log" ;;
  4) echo "mimsdir sync: directory unreachable or failed mid-run (rerun converges), see $log" ;;
  *) echo "mimsdir sync: failed (exit $rc), see $log" ;;
esac
exit $rc
