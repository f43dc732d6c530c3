#!/usr/bin/env bash
# Start or stop the demo applications (demo/catalogue.py: the learning space, the media
# library) in the background, each its own waitress: pid file var/demo-<key>.pid, log
# var/demo-<key>.log.
# `start` needs their registrations (python -m demo register); `stop` stops every demo app
# that has a pid file, listed or not.
#   scripts/demo_apps.sh start [CONFIG]    scripts/demo_apps.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${2:-config.yaml}
VAR=${VAR:-var}
export VAR
mkdir -p "$VAR"
running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
answers() { curl -fsS "http://$1/healthz" >/dev/null 2>&1; }
stop_one() {  # PIDFILE
  local key
  key=$(basename "$1" .pid); key=${key#demo-}
  if running "$1"; then
    kill "$(cat "$1")"
    for _ in $(seq 1 50); do running "$1" || break; sleep 0.1; done
    echo "demo app $key stopped"
  fi
  rm -f "$1"
}
case "${1:-}" in
  start)
    apps=$(.venv/bin/python -m demo list)
    while read -r key listen; do
      [ -n "$key" ] || continue
      pid=$VAR/demo-$key.pid
      log=$VAR/demo-$key.log
      state=$VAR/demo-apps/$key.json
      # Running with the current registration and address: leave it. A new registration
      # (its state file is newer) or another address: restart it.
      if running "$pid" && ! [ "$state" -nt "$pid" ] && answers "$listen"; then
        echo "demo app $key already running: http://$listen/ (pid $(cat "$pid"))"
        continue
      fi
      stop_one "$pid" >/dev/null
      nohup .venv/bin/python -m demo serve "$key" "$CONFIG" >>"$log" 2>&1 </dev/null &
      echo $! >"$pid"
      ok=""
      for _ in $(seq 1 100); do
        if answers "$listen"; then ok=1; break; fi
        running "$pid" || break
        sleep 0.1
      done
      if [ -z "$ok" ]; then
        echo "demo app $key did not start on http://$listen/; see $log" >&2
        tail -5 "$log" >&2
        exit 1
      fi
      echo "demo app $key running: http://$listen/  (log $log)"
    done <<<"$apps"
    ;;
  stop)
    shopt -s nullglob
    for pid in "$VAR"/demo-*.pid; do stop_one "$pid"; done
    ;;
  *) echo "usage: $0 start|stop [CONFIG]" >&2; exit 2 ;;
esac
