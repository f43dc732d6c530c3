"""The portal's Chinese, Malay and Tamil catalogs: complete, well-formed, compiled and current.

Pure babel, no server: reads messages.pot and each language's messages.po/.mo, and re-extracts
the template from the sources in memory. scripts/i18n.sh fixes whatever fails here except a
missing translation, which a person writes in the .po file (see the script's header).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

PORTAL = Path(__file__).resolve().parents[1] / "mimsdir" / "portal"
TRANSLATIONS = PORTAL / "translations"
POT = TRANSLATIONS / "messages.pot"
LANGS = ("zh", "ms", "ta")
PLURAL_FORMS = {"zh": 1, "ms": 1, "ta": 2}
# The keywords scripts/i18n.sh passes to `pybabel extract` (-k adds to babel's defaults).
KEYWORDS = {**DEFAULT_KEYWORDS, "lazy_gettext": None, "_": None, "ngettext": (1, 2)}
# A Python %-format placeholder with a name: %(name)s, %(n)d, %(x)05.2f...
PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[hlL]?[diouxXeEfFgGcrsa]")
# Templates mark a translation safe (Jinja's newstyle gettext): it must stay plain text.
HTML_SPECIAL = set('<>&"')

Key = tuple[str | None, str | tuple[str, ...]]  # (msgctxt, msgid or (msgid, msgid_plural))


def _load_po(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def _key(message: Message) -> Key:
    """The context and msgid, with msgid_plural for a plural message."""
    msgid = message.id
    return message.context, (tuple(msgid) if isinstance(msgid, list | tuple) else msgid)


def _strings(message: Message) -> tuple[str, ...]:
    s = message.string
    return tuple(s) if isinstance(s, list | tuple) else (s,)


def _messages(catalog: Iterable[Message]) -> list[Message]:
    return [m for m in catalog if m.id]  # without the header entry


def _placeholders(text: str) -> set[str]:
    return {m.group(0) for m in PLACEHOLDER.finditer(text)}


def _stray_percent(text: str) -> bool:
    """A % that is neither a placeholder nor %% (it would break the formatting)."""
    return "%" in PLACEHOLDER.sub("", text).replace("%%", "")


def _table(catalog: Catalog) -> dict[Key, tuple[str, ...]]:
    return {_key(m): _strings(m) for m in _messages(catalog)}


@pytest.fixture(scope="module")
def pot() -> Catalog:
    return _load_po(POT)


@pytest.fixture(scope="module", params=LANGS)
def lang(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def po(lang: str) -> Catalog:
    path = TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"
    assert path.is_file(), f"{path} is missing: run scripts/i18n.sh"
    return _load_po(path, locale=lang)


def test_catalog_header(po: Catalog, lang: str) -> None:
    assert str(po.locale) == lang
    assert po.num_plurals == PLURAL_FORMS[lang]
    assert not po.fuzzy, "the header is fuzzy: pybabel compile would skip the whole catalog"


def test_same_messages_as_template(pot: Catalog, po: Catalog) -> None:
    expected = {_key(m) for m in _messages(pot)}
    have = {_key(m) for m in _messages(po)}
    assert sorted(expected - have, key=str) == [], "not in the .po: run scripts/i18n.sh"
    assert sorted(have - expected, key=str) == [], "no longer in the .pot: run scripts/i18n.sh"


def test_every_message_translated(po: Catalog) -> None:
    missing = [_key(m) for m in _messages(po)
               if len(_strings(m)) != (po.num_plurals if m.pluralizable else 1)
               or not all(s.strip() for s in _strings(m))]
    assert missing == [], "untranslated (or a plural form missing)"


def test_nothing_fuzzy(po: Catalog) -> None:
    assert [_key(m) for m in _messages(po) if m.fuzzy] == []


def test_placeholders_kept(po: Catalog) -> None:
    wrong = []
    for m in _messages(po):
        ids = (m.id,) if isinstance(m.id, str) else tuple(m.id)
        wanted = set().union(*(_placeholders(i) for i in ids))
        for s in _strings(m):
            if _placeholders(s) != wanted or _stray_percent(s):
                wrong.append((ids[0], s))
    assert wrong == []


def test_plain_text(po: Catalog) -> None:
    """No markup or double quote that the English does not have (it would not be escaped)."""
    wrong = []
    for m in _messages(po):
        english = set(m.id if isinstance(m.id, str) else "".join(m.id))
        wrong += [(_key(m), s) for s in _strings(m) if (set(s) & HTML_SPECIAL) - english]
    assert wrong == []


def test_babel_checks_pass(po: Catalog) -> None:
    """What `pybabel compile` reports as errors (python-format, number of plural forms)."""
    assert [(_key(m), errors) for m, errors in po.check()] == []


def test_mo_up_to_date(po: Catalog, lang: str) -> None:
    mo_path = TRANSLATIONS / lang / "LC_MESSAGES" / "messages.mo"
    assert mo_path.is_file(), f"{mo_path} is missing: run scripts/i18n.sh"
    fresh = io.BytesIO()
    write_mo(fresh, po)  # what `pybabel compile` writes (fuzzy entries left out)
    fresh.seek(0)
    with mo_path.open("rb") as f:
        committed = read_mo(f)
    compiled = read_mo(fresh)
    assert committed.plural_forms == compiled.plural_forms
    assert _table(committed) == _table(compiled), "stale .mo: run scripts/i18n.sh"


def test_template_up_to_date(pot: Catalog) -> None:
    with (PORTAL / "babel.cfg").open(encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)
    extracted: set[Key] = set()
    for _filename, _lineno, message, _comments, context in extract_from_dir(
            PORTAL, method_map, options_map, keywords=KEYWORDS):
        extracted.add((context, message if isinstance(message, str) else tuple(message)))
    have = {_key(m) for m in _messages(pot)}
    assert sorted(extracted - have, key=str) == [], "not in messages.pot: run scripts/i18n.sh"
    assert sorted(have - extracted, key=str) == [], "gone from the code: run scripts/i18n.sh"


def test_question_texts_mark_every_built_in_question() -> None:
    """The portal translates the catalogue's questions: each must be in the catalogs."""
    from mimsdir.challenge import DEFAULT_QUESTIONS
    from mimsdir.portal.question_texts import TEXTS

    assert [str(t._args[0]) if hasattr(t, "_args") else str(t) for t in TEXTS] == \
        [q.text for q in DEFAULT_QUESTIONS]
