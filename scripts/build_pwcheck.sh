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
#   6. slapd's argon2 password module (slapd-modules/mims_argon2.c) on argon2's reference
#      library, when the .so is older than its sources or was built for another slapd. The
#      library's source is the copy in argon2-cffi-bindings' source release on PyPI
#      (extras/libargon2, the PHC reference code Debian's libargon2 is also built from),
#      fetched once by pip and checked against the SHA-256 below. Debian builds it without
#      SIMD; here its optimised opt.c is compiled once for each of SSE2, SSSE3, AVX2 and
#      AVX-512F and the widest the CPU has is chosen when slapd loads the module
#      (slapd-modules/argon2_simd.c): 11.6 ms of CPU a check at m=19456 t=3 with AVX-512F
#      on the build machine, against 24 ms in libsodium (10 of them page faults) and 43 ms in
#      Debian's libargon2 (docs/directory.md, "Passwords"). The same objects make
#      libmims_argon2.so, the benchmark's floor and the tests' way to check each width.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=build/mims_pwcheck
SO=$OUT/mims_pwcheck.so
ARGON2_SO=$OUT/mims_argon2.so
ARGON2_LIB=$OUT/libmims_argon2.so
ARGON2_SRC=build/argon2-src
# argon2-cffi-bindings 21.2.0's source release (its extras/libargon2 is the PHC reference
# code at 20190702 and after); the hash is the file PyPI serves.
ARGON2_SDIST=argon2-cffi-bindings-21.2.0.tar.gz
ARGON2_SDIST_SHA256=bb89ceffa6c791807d1305ceb77dbfacc5aa499891d2c55661c6459651fc39e3
DENY=$OUT/denylist.txt
SRC=slapd-modules/mims_pwcheck.c
CACHE=build/openldap-src
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

version=$(dpkg-query -W -f='${Version}' slapd)
mkdir -p "$OUT" "$CACHE"

headers() {
  # The openldap source tree with its generated headers, for the installed slapd.
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
}

built_for=$(cat "$OUT/slapd-version" 2>/dev/null || true)
if [ ! -f "$SO" ] || [ "$SRC" -nt "$SO" ] \
    || [ "$built_for" != "$version" ]; then
  headers
  echo "build_pwcheck: compiling $SO" >&2
  # -z nodelete: ppolicy dlopen()s and dlclose()s the module on every check; nodelete keeps
  # it loaded, so the deny-list is read once (and again only when the file changes).
  gcc -shared -fPIC -O2 -Wall -Wextra -Werror \
      -I"$tree/include" -I"$tree/servers/slapd" -Wl,-z,nodelete \
      -o "$SO.tmp" "$SRC"
  mv -f "$SO.tmp" "$SO"
fi

if [ ! -f "$ARGON2_SO" ] || [ ! -f "$ARGON2_LIB" ] || [ "$built_for" != "$version" ] \
    || [ slapd-modules/mims_argon2.c -nt "$ARGON2_SO" ] \
    || [ slapd-modules/argon2_simd.c -nt "$ARGON2_SO" ] \
    || [ slapd-modules/argon2_kept.c -nt "$ARGON2_SO" ] \
    || [ slapd-modules/argon2_kept.h -nt "$ARGON2_SO" ] \
    || [ scripts/build_pwcheck.sh -nt "$ARGON2_SO" ]; then
  headers
  lib=$ARGON2_SRC/libargon2
  if [ ! -f "$lib/src/opt.c" ]; then
    mkdir -p "$ARGON2_SRC"
    if [ ! -f "$ARGON2_SRC/$ARGON2_SDIST" ]; then
      echo "build_pwcheck: fetching argon2's reference source ($ARGON2_SDIST, PyPI)" >&2
      .venv/bin/pip download -q --no-deps --no-binary :all: -d "$ARGON2_SRC" \
        argon2-cffi-bindings==21.2.0 >"$ARGON2_SRC/fetch.log" 2>&1 \
        || { cat "$ARGON2_SRC/fetch.log" >&2; exit 1; }
    fi
    echo "$ARGON2_SDIST_SHA256  $ARGON2_SRC/$ARGON2_SDIST" | sha256sum -c --quiet - \
      || { echo "build_pwcheck: $ARGON2_SRC/$ARGON2_SDIST is not the pinned release" >&2;
           rm -f "$ARGON2_SRC/$ARGON2_SDIST"; exit 1; }
    rm -rf "$lib" "$lib.tmp" && mkdir -p "$lib.tmp"
    tar -xzf "$ARGON2_SRC/$ARGON2_SDIST" -C "$lib.tmp" --strip-components=3 \
      argon2-cffi-bindings-21.2.0/extras/libargon2/src \
      argon2-cffi-bindings-21.2.0/extras/libargon2/include \
      argon2-cffi-bindings-21.2.0/extras/libargon2/LICENSE
    mv "$lib.tmp" "$lib"
  fi
  echo "build_pwcheck: compiling $ARGON2_SO (argon2's reference code, SIMD chosen at load)" >&2
  obj=$OUT/argon2-obj
  rm -rf "$obj" && mkdir -p "$obj"
  # -DARGON2_NO_THREADS: a hash's lanes are computed in the calling thread (slapd's own
  # threads fill the cores; a thread a lane would only queue behind them).
  cflags=(-O3 -fPIC -Wall -Werror -DARGON2_NO_THREADS -I"$lib/include" -I"$lib/src")
  for f in argon2 core encoding blake2/blake2b; do
    gcc "${cflags[@]}" -c "$lib/src/$f.c" -o "$obj/$(basename "$f").o"
  done
  if [ "$(uname -m)" = x86_64 ]; then
    for width in sse2: ssse3:-mssse3 avx2:-mavx2 avx512f:-mavx512f; do
      name=${width%%:*}; flag=${width#*:}
      gcc "${cflags[@]}" $flag -Dfill_segment=mims_fill_segment_"$name" \
          -c "$lib/src/opt.c" -o "$obj/opt_$name.o"
    done
  else
    gcc "${cflags[@]}" -c "$lib/src/ref.c" -o "$obj/ref.o"
  fi
  gcc "${cflags[@]}" -c slapd-modules/argon2_simd.c -o "$obj/argon2_simd.o"
  gcc "${cflags[@]}" -Islapd-modules -c slapd-modules/argon2_kept.c -o "$obj/argon2_kept.o"
  ar rcs "$obj/libargon2.a" "$obj"/*.o
  # The library's symbols stay inside the module (--exclude-libs): a libargon2 that
  # something else loads into slapd keeps its own.
  gcc -shared -fPIC -O2 -Wall -Wextra -Werror -I"$lib/include" -Islapd-modules \
      -I"$tree/include" -I"$tree/servers/slapd" \
      -o "$ARGON2_SO.tmp" slapd-modules/mims_argon2.c "$obj/libargon2.a" \
      -Wl,--exclude-libs,ALL
  gcc -shared -o "$ARGON2_LIB.tmp" -Wl,--whole-archive "$obj/libargon2.a" \
      -Wl,--no-whole-archive
  mv -f "$ARGON2_SO.tmp" "$ARGON2_SO"
  mv -f "$ARGON2_LIB.tmp" "$ARGON2_LIB"
fi
echo "$version" >"$OUT/slapd-version"

if [ ! -f "$DENY" ] || [ scripts/build_denylist.py -nt "$DENY" ] \
    || [ slapd-modules/denylist-school.txt -nt "$DENY" ] || [ setup.cfg -nt "$DENY" ]; then
  .venv/bin/python scripts/build_denylist.py "$DENY"
fi
