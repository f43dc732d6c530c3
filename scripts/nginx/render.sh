#!/usr/bin/env bash
# Render the nginx site for the portal from mims-portal.conf.in (docs/deploy.md):
#   scripts/nginx/render.sh SERVER_NAME CERT KEY [UPSTREAM [HTTPS_LISTEN [HTTP_LISTEN]]]
#   scripts/nginx/render.sh portal.school.edu.sg /etc/ssl/portal.pem /etc/ssl/private/portal.key \
#     > /etc/nginx/sites-available/mims-portal
# UPSTREAM defaults to 127.0.0.1:8080 (portal.listen), the listens to 443 and 80.
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,6p "$0" >&2; exit 2; }
for value in "$@"; do
  case "$value" in *'|'*|*$'\n'*) echo "render.sh: '|' and newlines are not allowed" >&2; exit 2;; esac
done
sed -e "s|@SERVER_NAME@|$1|g" -e "s|@CERT@|$2|g" -e "s|@KEY@|$3|g" \
    -e "s|@UPSTREAM@|${4:-127.0.0.1:8080}|g" -e "s|@HTTPS_LISTEN@|${5:-443}|g" \
    -e "s|@HTTP_LISTEN@|${6:-80}|g" "$(dirname "$0")/mims-portal.conf.in"
