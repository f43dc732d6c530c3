#!/usr/bin/env bash
# Installs what mimsdir needs on Debian 12, idempotently: system packages only if missing,
# a .venv, the package in editable mode, and slapd's password check module with its
# deny-list (build/mims_pwcheck/). Run by `make install`, `make demo` and `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# slapd + client tools + headers for python-ldap; fonts for the PDF cards (Latin, Tamil,
# Chinese); chromium for the portal's browser tests (Playwright drives /usr/bin/chromium: it
# never downloads a browser); curl for the demo's health check; nginx, the TLS proxy in front
# of the portal (docs/deploy.md; the smallest Debian build with the ssl module). The tests run
# their own nginx (-p/-c in a temp dir, a free loopback port); Debian's postinst starts the
# system one only when port 80 is free, and a container's policy-rc.d stops even that.
# xmlsec1: the XML signature tool pysaml2 runs for the SAML IdP (signs responses, checks SPs'
# signed requests). libsodium-dev: libsodium, the argon2 of slapd's module from 2026-12-01 to
# 2026-12-02: the tests check that its hashes still sign in, benchmarks/argon2_cost.py compares
# it (the module is now built on argon2's reference code by scripts/build_pwcheck.sh).
# lmdb-utils: mdb_copy and mdb_stat for `mimsdir directory compact`.
APT_PACKAGES=(slapd ldap-utils libldap2-dev libsasl2-dev libsodium-dev lmdb-utils
              fonts-noto-core fonts-noto-mono fonts-droid-fallback chromium curl nginx xmlsec1)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # slapd's own package starts a system slapd on port 389 on some systems; mimsdir never uses it.
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The device sign-in stacks the tests run in a private mount namespace (nslcd, SSSD,
# pamtester): installed switched off, this machine's NSS and PAM files untouched.
bash scripts/device_packages.sh

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.mimsdir-installed
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e ".[test]"
  touch "$stamp"
fi

bash scripts/build_pwcheck.sh

# The tests' independent OpenID Connect client (tests/rp-node: Node's openid-client, pinned by
# its package-lock.json), only where node and npm are installed (CI's image has node 20); never
# part of the product, so a failure here warns and the install carries on (the demo does not
# need it; tests/test_oidc_node.py then fails saying so).
if command -v npm >/dev/null 2>&1; then
  rp=tests/rp-node
  if [ ! -f $rp/node_modules/.package-lock.json ] || [ $rp/package-lock.json -nt $rp/node_modules/.package-lock.json ]; then
    (cd $rp && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
      echo "bootstrap: npm ci in $rp failed: the openid-client test cannot run until it works" >&2
  fi
fi
