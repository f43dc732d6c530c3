#!/usr/bin/env bash
# i18n.sh: bring the portal's translations up to date, in one command.
#
#   scripts/i18n.sh
#
# 1. re-extracts mimsdir/portal/translations/messages.pot from the Python code and the
#    Jinja templates (babel.cfg), with the same command as always:
#      cd mimsdir/portal && pybabel extract -F babel.cfg -k lazy_gettext -k _ \
#          -k ngettext:1,2 --no-location --sort-output -o translations/messages.pot .
#    When no msgid changed, the old file is kept (only POT-Creation-Date would differ),
#    so running this twice changes nothing;
# 2. updates translations/{zh,ms,ta}/LC_MESSAGES/messages.po (creating a missing one):
#      --no-fuzzy-matching  a new or reworded string arrives with an EMPTY msgstr, never
#                           with a guessed "fuzzy" translation of a similar string that
#                           someone could un-fuzzy by mistake;
#      --ignore-obsolete    a string removed from the code leaves the .po (git keeps it);
# 3. compiles every .po into its .mo (the .mo files are committed: the package ships them),
#    then lists what is still untranslated or fuzzy in each language.
#
# Adding or changing a string
# ---------------------------
# a. Mark it in the code, as a whole sentence with named placeholders (never build a
#    sentence from pieces, never an f-string inside _()):
#      Python view:   from flask_babel import gettext as _
#                     _("Hello, %(name)s!", name=person.name)
#      module level:  from flask_babel import lazy_gettext as _   (evaluated per request)
#      plural:        ngettext("Wait %(num)d minute.", "Wait %(num)d minutes.", n)
#      template:      {{ _("Hello, %(name)s!", name=person.name) }}
#    In a template every string goes through "%" formatting: write a literal % as %%.
#    Translations are trusted text in templates (not escaped): no HTML, no " in them.
# b. Run scripts/i18n.sh. The new msgid is now in messages.pot and, with an empty msgstr,
#    in the three .po files; the script lists it under "untranslated" for each language.
# c. Translate it in mimsdir/portal/translations/{zh,ms,ta}/LC_MESSAGES/messages.po:
#    Chinese (Simplified, as in Singapore schools), Malay and Tamil as used in Singapore
#    schools, short words for 8-12 year-olds. Keep every placeholder (%(name)s, %(n)d...)
#    exactly; fill every plural form (msgstr[0], msgstr[1]...: zh and ms have one, ta two);
#    remove any "#, fuzzy" line once the translation is right.
# d. Run scripts/i18n.sh again (compiles the .mo files), then
#      .venv/bin/pytest tests/test_i18n.py
#    and commit messages.pot, the .po and the .mo files together.
#
# Adding a language: add its code to LANGS below and to NAMES in mimsdir/portal/i18n.py.
#
# Uses $PYBABEL if set, else the project's .venv/bin/pybabel, else pybabel on PATH.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORTAL=$ROOT/mimsdir/portal
POT=translations/messages.pot
LANGS=(zh ms ta)

if [[ -z ${PYBABEL:-} ]]; then
    if [[ -x $ROOT/.venv/bin/pybabel ]]; then
        PYBABEL=$ROOT/.venv/bin/pybabel
    else
        PYBABEL=$(command -v pybabel) || { echo "i18n.sh: pybabel not found" >&2; exit 1; }
    fi
fi
PYTHON=$(dirname "$PYBABEL")/python
[[ -x $PYTHON ]] || PYTHON=python3

cd "$PORTAL"

# 1. Extract. Keep the previous template when only its POT-Creation-Date changed.
old=$(mktemp)
trap 'rm -f "$old"' EXIT
had_pot=0
if [[ -f $POT ]]; then
    cp "$POT" "$old"
    had_pot=1
fi
"$PYBABEL" extract -F babel.cfg -k lazy_gettext -k _ -k ngettext:1,2 --no-location \
    --sort-output -o "$POT" .
if ((had_pot)) && diff -q <(grep -v '^"POT-Creation-Date: ' "$old") \
                           <(grep -v '^"POT-Creation-Date: ' "$POT") >/dev/null; then
    cp "$old" "$POT"
    echo "messages.pot: no change"
else
    echo "messages.pot: re-extracted"
fi

# 2. Update (or create) each language's catalog.
for lang in "${LANGS[@]}"; do
    "$PYBABEL" update -i "$POT" -d translations -l "$lang" --init-missing \
        --no-fuzzy-matching --ignore-obsolete
done

# 3. Compile. pybabel exits non-zero when a translation is broken (e.g. a placeholder
#    that is not in the msgid, or the wrong number of plural forms).
"$PYBABEL" compile -d translations --statistics

# What a translator still has to do.
"$PYTHON" - "${LANGS[@]}" <<'PY'
import sys

from babel.messages.pofile import read_po

todo = 0
for lang in sys.argv[1:]:
    path = f"translations/{lang}/LC_MESSAGES/messages.po"
    with open(path, "rb") as f:
        catalog = read_po(f, locale=lang)
    for message in list(catalog)[1:]:
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        msgid = message.id[0] if isinstance(message.id, tuple) else message.id
        if not all(strings):
            print(f"{lang}: untranslated: {msgid!r}")
            todo += 1
        elif message.fuzzy:
            print(f"{lang}: fuzzy: {msgid!r}")
            todo += 1
if todo:
    print(f"i18n.sh: {todo} message(s) to translate; they show in English until then.")
else:
    print("i18n.sh: every message is translated in " + ", ".join(sys.argv[1:]) + ".")
PY
