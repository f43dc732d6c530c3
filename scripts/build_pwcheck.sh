#!/usr/bin/env bash
# Builds slapd's password check module (slapd-modules/mims_pwcheck.c) and its deny-list into
# build/mims_pwcheck/, idempotently; run by scripts/bootstrap.sh (after the venv exists).
#
# Debian 12 ships no ppolicy check module and no slapd headers, so the module is compiled
# against the headers of Debian's own openldap source package for the installed slapd's
# version: the Entry and Attribute layouts the module reads are that slapd's. Steps, each
# skipped when its result is already there:
#   1. a deb-src entry for Debian's archive (added when apt knows no openldap source);
#   2. `apt-get source --download-only openldap=<installed version>` into build/openldap-src/;
#   3. dpkg-source -x (Debian's patches applied), a minimal ./configure and the one generated
#      header the slapd headers include (include/ldap_config.h): about 10 s, once;
#   4. gcc -shared, when the .so is older than its source or was built for another slapd;
#   5. the deny-list (scripts/build_denylist.py), when older than its inputs;
#   6. slapd's argon2 password module, OpenLDAP's own source (servers/slapd/pwmods/argon2.c
#      of the same Debian source) linked with libsodium instead of Debian's libargon2, when
#      the .so is missing or was built for another slapd. Debian builds libargon2 without
#      SIMD (its portable reference code): a check at m=19456 t=3 cost 43 ms of CPU there and
#      27 ms in libsodium (SSE/AVX2, chosen at run time) on the build machine; the module
#      makes argon2id and checks argon2i and argon2id (docs/directory.md, "Password hashes").
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=build/mims_pwcheck
SO=$OUT/mims_pwcheck.so
ARGON2_SO=$OUT/mims_argon2.so
DENY=$OUT/denylist.txt
SRC=slapd-modules/mims_pwcheck.c
CACHE=build/openldap-src
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

version=$(dpkg-query -W -f='${Version}' slapd)
mkdir -p "$OUT" "$CACHE"

built_for=$(cat "$OUT/slapd-version" 2>/dev/null || true)
if [ ! -f "$SO" ] || [ ! -f "$ARGON2_SO" ] || [ "$SRC" -nt "$SO" ] \
    || [ "$built_for" != "$version" ]; then
  upstream=${version#*:}; upstream=${upstream%%-*}; upstream=${upstream%%+*}
  tree=$CACHE/openldap-$version
  if [ ! -f "$tree/include/ldap_config.h" ]; then
    dsc=$(ls "$CACHE"/openldap_"${version#*:}".dsc 2>/dev/null || true)
    if [ -z "$dsc" ]; then
      if ! apt-cache showsrc openldap 2>/dev/null | grep -qxF "Version: $version"; then
        if ! grep -rqs "^Types:.*deb-src" /etc/apt/sources.list.d/ \
            && ! grep -qs "^deb-src " /etc/apt/sources.list; then
          echo "build_pwcheck: adding Debian's deb-src entries (/etc/apt/sources.list.d/mimsdir-src.sources)" >&2
          printf '%s\n' "Types: deb-src" "URIs: http://deb.debian.org/debian" \
            "Suites: bookworm bookworm-updates" "Components: main" \
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" "" \
            "Types: deb-src" "URIs: http://deb.debian.org/debian-security" \
            "Suites: bookworm-security" "Components: main" \
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" \
            | $SUDO tee /etc/apt/sources.list.d/mimsdir-src.sources >/dev/null
        fi
        $SUDO apt-get update -qq
      fi
      echo "build_pwcheck: fetching Debian's openldap $version source" >&2
      (cd "$CACHE" && apt-get source -qq --download-only "openldap=$version" >fetch.log 2>&1) \
        || { cat "$CACHE/fetch.log" >&2; exit 1; }
      dsc=$(ls "$CACHE"/openldap_"${version#*:}".dsc)
    fi
    rm -rf "$tree"
    # apt checked the files against Debian's signed Sources index; dpkg-source's own
    # note that it has no key for the maintainer's signature goes to the log.
    dpkg-source -x "$dsc" "$tree" >"$CACHE/unpack.log" 2>&1 \
      || { cat "$CACHE/unpack.log" >&2; exit 1; }
    echo "build_pwcheck: configuring the openldap $upstream headers" >&2
    # Only the generated headers are needed (portable.h, ldap_features.h, lber_types.h,
    # ldap_config.h): nothing is compiled, so every optional part is left out.
    (cd "$tree" && ./configure --quiet --disable-slapd --disable-backends --enable-mdb=no \
       --disable-overlays --without-cyrus-sasl --without-tls --without-argon2 \
       >configure.out 2>&1 && make -s -C include ldap_config.h >/dev/null) \
      || { tail -20 "$tree/configure.out" >&2; exit 1; }
  fi
  echo "build_pwcheck: compiling $SO" >&2
  # -z nodelete: ppolicy dlopen()s and dlclose()s the module on every check; nodelete keeps
  # it loaded, so the deny-list is read once (and again only when the file changes).
  gcc -shared -fPIC -O2 -Wall -Wextra -Werror \
      -I"$tree/include" -I"$tree/servers/slapd" -Wl,-z,nodelete \
      -o "$SO.tmp" "$SRC"
  mv -f "$SO.tmp" "$SO"
  echo "build_pwcheck: compiling $ARGON2_SO (OpenLDAP's argon2 module, with libsodium)" >&2
  gcc -shared -fPIC -O2 -Wall -Werror -Wno-unused-variable \
      -DSLAPD_PWMOD_PW_ARGON2 -DHAVE_LIBSODIUM \
      -I"$tree/include" -I"$tree/servers/slapd" \
      -o "$ARGON2_SO.tmp" "$tree/servers/slapd/pwmods/argon2.c" -lsodium
  mv -f "$ARGON2_SO.tmp" "$ARGON2_SO"
  echo "$version" >"$OUT/slapd-version"
fi

if [ ! -f "$DENY" ] || [ scripts/build_denylist.py -nt "$DENY" ] \
    || [ slapd-modules/denylist-school.txt -nt "$DENY" ] || [ setup.cfg -nt "$DENY" ]; then
  .venv/bin/python scripts/build_denylist.py "$DENY"
fi
