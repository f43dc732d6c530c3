#!/usr/bin/env bash
# The two device sign-in stacks the tests run (tests/devices.py, docs/devices.md): nslcd
# (libnss-ldapd, libpam-ldapd) and SSSD (sssd-ldap, libnss-sss, libpam-sss), and pamtester.
# Installed only if missing, WITHOUT turning either stack on for this machine: the host's
# /etc/nsswitch.conf and /etc/pam.d/common-* stay exactly as they were (checked at the end,
# and by tests/test_devices.py), and no daemon is started. The tests run the stacks inside a
# private mount namespace with their own copies of those files.
#
# What each package would otherwise do, and what stops it:
# - libnss-ldapd asks which NSS maps to switch to ldap: preseeded to none.
# - libnss-sss (dh_installnss) adds `sss` to passwd/group/shadow/... when a marker its preinst
#   leaves (/etc/nsswitch.conf.nss.libnss-sss-will-install) is there at configure time: it is
#   unpacked, the marker removed, then configured (and the empty `automount:` line the same
#   step appends goes to a copy of the file).
# - libpam-ldapd, libpam-sss and libpam-pwquality (pulled in by libpam-sss) run
#   `pam-auth-update --package`, which enables every profile it has not seen before and whose
#   default is yes: their profiles (ldap, sss, pwquality) are marked seen first, which is how
#   pam-auth-update records an administrator's choice; `pam-auth-update --enable ldap` still
#   turns one on later.
# - nslcd and sssd-common start their daemons through invoke-rc.d: a policy-rc.d that forbids
#   it is put in place for the install when the machine has none (containers usually do).
set -euo pipefail

PACKAGES=(nslcd libnss-ldapd libpam-ldapd sssd-ldap libnss-sss libpam-sss pamtester)
PAM_PROFILES=(ldap sss pwquality)
WATCHED=(/etc/nsswitch.conf /etc/pam.d/common-auth /etc/pam.d/common-account
         /etc/pam.d/common-password /etc/pam.d/common-session
         /etc/pam.d/common-session-noninteractive)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "device_packages: ${missing[*]} missing; run as root (make install) to install them" >&2
  exit 1
fi
echo "bootstrap: installing the device stacks (${missing[*]}), switched off on this machine" >&2
export DEBIAN_FRONTEND=noninteractive

before=$(sha256sum "${WATCHED[@]}" 2>/dev/null || true)

cleanup=()
trap 'for f in "${cleanup[@]}"; do rm -rf "$f"; done' EXIT
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\n# mimsdir bootstrap: no daemon starts while the device stacks install\nexit 101\n' \
    >/usr/sbin/policy-rc.d
  chmod 0755 /usr/sbin/policy-rc.d
  cleanup+=(/usr/sbin/policy-rc.d)
fi

echo "libnss-ldapd libnss-ldapd/nsswitch multiselect " | debconf-set-selections
mkdir -p /var/lib/pam
touch /var/lib/pam/seen
for prof in "${PAM_PROFILES[@]}"; do
  grep -qx "$prof" /var/lib/pam/seen || echo "$prof" >>/var/lib/pam/seen
done

apt-get update -qq
if ! installed libnss-sss; then
  dl=$(mktemp -d)
  cleanup+=("$dl")
  chown _apt "$dl" 2>/dev/null || true
  (cd "$dl" && apt-get download -qq libnss-sss >/dev/null)
  dpkg --unpack "$dl"/libnss-sss_*.deb >/dev/null
  rm -f /etc/nsswitch.conf.nss.libnss-sss-will-install
  # Its configure step also appends an empty `automount:` line when there is none: it
  # writes to a copy, bind-mounted over the file in a mount namespace of its own.
  copy=$(mktemp)
  cleanup+=("$copy")
  cp /etc/nsswitch.conf "$copy"
  unshare --mount --propagation private sh -c \
    'mount --bind "$1" /etc/nsswitch.conf && dpkg --configure libnss-sss >/dev/null' sh "$copy"
fi
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null

after=$(sha256sum "${WATCHED[@]}" 2>/dev/null || true)
if [ "$before" != "$after" ]; then
  echo "device_packages: installing changed this machine's NSS or PAM files:" >&2
  diff <(echo "$before") <(echo "$after") >&2 || true
  exit 1
fi
