#!/usr/bin/env bash
# Start or stop the demo's portal in the background (pid file var/portal.pid, log var/portal.log).
#   scripts/portal.sh start [CONFIG]    scripts/portal.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${2:-config.yaml}
VAR=${VAR:-var}
PID=$VAR/portal.pid
LOG=$VAR/portal.log
mkdir -p "$VAR"
running() { [ -f "$PID" ] && kill -0 "$(cat "$PID")" 2>/dev/null; }
case "${1:-}" in
  start)
    listen=$(.venv/bin/python -c "from mimsdir.config import load_config; print(load_config('$CONFIG').portal.listen)")
    if running; then
      echo "portal already running: http://$listen/ (pid $(cat "$PID"))"
      exit 0
    fi
    nohup .venv/bin/mimsdir --config "$CONFIG" sspr serve >>"$LOG" 2>&1 </dev/null &
    echo $! >"$PID"
    for _ in $(seq 1 100); do
      if curl -fsS "http://$listen/healthz" >/dev/null 2>&1; then
        echo "portal running: http://$listen/  (log $LOG)"
        exit 0
      fi
      running || { echo "portal failed to start; see $LOG" >&2; tail -5 "$LOG" >&2; exit 1; }
      sleep 0.1
    done
    echo "portal did not answer on http://$listen/healthz; see $LOG" >&2
    exit 1
    ;;
  stop)
    if running; then kill "$(cat "$PID")"; echo "portal stopped"; else echo "portal was not running"; fi
    rm -f "$PID"
    ;;
  *) echo "usage: $0 start|stop [CONFIG]" >&2; exit 2 ;;
esac
