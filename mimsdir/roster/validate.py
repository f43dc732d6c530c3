"""Field rules shared by every roster reader, so that one school gives one result in any format.

Each `clean_*` function takes the raw text of one field and returns the value the directory will
store, or raises `Invalid` with a reason a school's ICT staff can act on. `check_candidate` applies
them all to one row and turns every violation into a `RowError`.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mimsdir.roster.records import ACTIVE, LEFT, RosterStudent, RowError

MAX_NAME = 64
MAX_CLASS = 32
MAX_EMAIL = 254
MAX_SHOWN = 60

# The fields of RosterStudent that come from a roster row, in report order.
FIELDS = (
    "student_id",
    "email",
    "given_name",
    "family_name",
    "school_code",
    "level",
    "class_name",
    "form_teacher_email",
    "status",
)

# The id becomes the RDN `uid=<id>`: these characters need no DN escaping and survive every tool.
_STUDENT_ID = re.compile(r"[A-Za-z0-9._-]{1,32}", re.ASCII)
_SCHOOL_CODE = re.compile(r"[A-Za-z0-9]{1,16}", re.ASCII)
# RFC 5322 dot-atom local part; LDAP's `mail` is an IA5String, so addresses are ASCII only.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*", re.ASCII)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+[a-z](?:[a-z0-9-]{{0,61}}[a-z0-9])?", re.ASCII)
_LEVEL = re.compile(r"(?:P|PRI|PRIMARY)?\s*\.?\s*0?([1-6])", re.ASCII)
_LEVEL_LIKE = re.compile(r"(?:P|PRI|PRIMARY)?\s*\.?\s*(\d+)", re.ASCII)
# Exactly the characters of Unicode categories Cc, Cs, Zl and Zp (tests/test_roster_validate.py
# compares it with unicodedata over every code point): a regex, so a row costs C, not a Python
# loop per character.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Invisible characters that spreadsheets leave at the edges of cells.
_EDGE_JUNK = "\u200b\ufeff"

_STATUS = {
    "": ACTIVE,
    "active": ACTIVE,
    "left": LEFT,
    "inactive": LEFT,
    "withdrawn": LEFT,
    "graduated": LEFT,
}


class Invalid(ValueError):
    """A field value breaks a rule; the message is the reason shown after `file:line: field:`."""


def show(value: str) -> str:
    """Quote a value for a one-line message: repr escapes newlines and control characters."""
    if len(value) > MAX_SHOWN:
        return repr(value[:MAX_SHOWN]) + "..."
    return repr(value)


def trim(value: str | None) -> str:
    """Strip whitespace and the zero-width junk that copy-paste from spreadsheets leaves behind."""
    if value is None:
        return ""
    return value.strip().strip(_EDGE_JUNK).strip()


def clean_student_id(value: str) -> str:
    """The id is the stable LDAP key (`uid=`), so it is kept as given apart from trimming."""
    text = trim(value)
    if not text:
        raise Invalid("is required")
    if not _STUDENT_ID.fullmatch(text):
        raise Invalid(f"{show(text)} must be 1-32 characters of A-Z a-z 0-9 . _ -")
    return text


def clean_email(value: str, allowed_domains: Sequence[str] | None = None) -> str:
    """Lower-case the address (it is the login id) and refuse anything a device could not type."""
    text = trim(value).lower()
    if not text:
        raise Invalid("is required")
    if len(text) > MAX_EMAIL:
        raise Invalid(f"{show(text)} is longer than {MAX_EMAIL} characters")
    local, at, domain = text.rpartition("@")
    if (
        not at
        or len(local) > 64
        or not _LOCAL.fullmatch(local)
        or not _DOMAIN.fullmatch(domain)
        or any(len(label) > 63 for label in domain.split("."))
    ):
        raise Invalid(f"{show(text)} is not a valid email address")
    if allowed_domains is not None:
        allowed = {d.strip().lstrip("@").lower() for d in allowed_domains}
        if domain not in allowed:
            listed = ", ".join(sorted(allowed)) or "none"
            raise Invalid(f"{show(text)} is not in an allowed domain ({listed})")
    return text


def _check_text(text: str, limit: int) -> str:
    """Shared rule for names and classes: NFC (so formats compare equal), short, printable."""
    text = unicodedata.normalize("NFC", text)
    if _CONTROL.search(text):
        raise Invalid(f"{show(text)} contains a control character")
    if len(text) > limit:
        raise Invalid(f"{show(text)} is longer than {limit} characters")
    return text


def clean_name(value: str, *, required: bool) -> str:
    """Names keep any script and punctuation ("d/o", "O'Neil", Tamil, Chinese); NFC-normalised.

    A family name may be empty: some students have a single name, and the directory builds `cn`
    from given and family name together.
    """
    text = trim(value)
    if not text:
        if required:
            raise Invalid("is required")
        return ""
    return _check_text(text, MAX_NAME)


def clean_school_code(value: str) -> str:
    """School codes are short ASCII keys that appear in filters and reports; upper-cased."""
    text = trim(value)
    if not text:
        raise Invalid("is required")
    if not _SCHOOL_CODE.fullmatch(text):
        raise Invalid(f"{show(text)} must be 1-16 letters or digits")
    return text.upper()


def normalise_level(value: str) -> str:
    """Accept the ways schools write a level ("P4", "Primary 4", "PRI 4", "4", "04") -> "P4"."""
    text = re.sub(r"\s+", " ", trim(value)).upper()
    if not text:
        raise Invalid("is required")
    match = _LEVEL.fullmatch(text)
    if match:
        return f"P{match.group(1)}"
    if _LEVEL_LIKE.fullmatch(text):
        raise Invalid(f"{show(trim(value))} is not a primary level (P1-P6)")
    raise Invalid(f"{show(trim(value))} is not a level (expected P1-P6, e.g. 'P4' or 'Primary 4')")


def clean_class(value: str) -> str:
    """The class name is shown to teachers as written ("4 Courage", "5E"), so only trimmed."""
    text = trim(value)
    if not text:
        raise Invalid("is required")
    return _check_text(text, MAX_CLASS)


def clean_form_teacher_email(value: str) -> str | None:
    """Optional; when given it must be an address, because it is looked up in ou=staff."""
    if not trim(value):
        return None
    return clean_email(value)


def clean_status(value: str) -> str:
    """Map the words schools use to "active" or "left"; an unknown word is an error, not a guess."""
    text = trim(value)
    try:
        return _STATUS[text.lower()]
    except KeyError:
        words = ", ".join(w for w in _STATUS if w)
        raise Invalid(f"{show(text)} is not a status (empty, {words})") from None


def readable(value: str | None) -> str | None:
    """The value as the row names it, if it is there and could be decoded, for RowError ids."""
    text = trim(value)
    if not text or _SURROGATE.search(text):
        return None
    return text


@dataclass(frozen=True, slots=True)
class Candidate:
    """One roster row as a reader extracted it, before the shared rules are applied.

    `values` holds raw text by RosterStudent field name (absent = empty). `problems` are errors
    the reader found itself; when `structural` is true the row could not be read reliably (bad
    encoding, wrong number of fields) and its values are used only to protect the student it names.
    `origins` says, per field, which other file a value came from (OneRoster), for the reason text.
    `departs` marks an explicit deletion (OneRoster `tobedeleted`): only the id matters.
    `unchecked` names fields that could not be found because of a problem already reported
    (no class, so no level): they are not reported a second time.
    """

    source: str
    line: int
    values: Mapping[str, str]
    problems: tuple[tuple[str, str], ...] = ()
    structural: bool = False
    origins: Mapping[str, str] = field(default_factory=dict)
    departs: bool = False
    unchecked: frozenset[str] = frozenset()
    raw: bytes | None = None  # the digest of the raw cells (``table.stream_table``)


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of the rules on one candidate, plus the keys used across rows."""

    candidate: Candidate
    student: RosterStudent | None
    errors: tuple[RowError, ...]
    student_id: str | None  # valid id, as given (duplicates compare it case-insensitively)
    email: str | None  # valid email
    school_code: str | None  # valid school code, for scope and the shrink guard


def _valid(rule: Callable[[str], str], value: str) -> str | None:
    """The cleaned value if it passes `rule`, else None (used for cross-row keys)."""
    try:
        return rule(value)
    except Invalid:
        return None


def _cached(rule: Callable[[str], object]) -> Callable[[str], object]:
    """A pure rule, remembered per value: schools, levels, classes, form teachers, statuses and
    most names repeat across a roster, and a national one has 500,000 rows. Only results are
    kept; a value that breaks the rule raises each time, with its own reason."""
    return functools.lru_cache(maxsize=1 << 16)(rule)


_school_code = _cached(clean_school_code)
_level = _cached(normalise_level)
_class = _cached(clean_class)
_teacher = _cached(clean_form_teacher_email)
_status = _cached(clean_status)
_given_name = _cached(lambda v: clean_name(v, required=True))
_family_name = _cached(lambda v: clean_name(v, required=False))


@functools.lru_cache(maxsize=64)
def _rules(allowed: tuple[str, ...] | None) -> Mapping[str, Callable[[str], object]]:
    """The rule of each field, in report order (one mapping per allowed-domains setting)."""
    return {
        "student_id": clean_student_id,
        "email": lambda v: clean_email(v, allowed),
        "given_name": _given_name,
        "family_name": _family_name,
        "school_code": _school_code,
        "level": _level,
        "class_name": _class,
        "form_teacher_email": _teacher,
        "status": _status,
    }


def check_candidate(cand: Candidate, allowed_domains: Sequence[str] | None = None) -> Checked:
    """Apply every field rule to one row; each violation becomes its own RowError.

    All violations are reported at once (not just the first) so a school can fix a row in one go.
    """
    raw = {name: cand.values.get(name, "") for name in FIELDS}
    rid, remail = readable(raw["student_id"]), readable(raw["email"])
    remail = remail.lower() if remail else None

    def error(name: str, reason: str) -> RowError:
        origin = cand.origins.get(name)
        if origin:
            reason = f"{reason} (from {origin})"
        return RowError(cand.source, cand.line, name, reason, rid, remail)

    errors = [error(name, reason) for name, reason in cand.problems]
    if cand.structural or cand.departs:
        valid_id = _valid(clean_student_id, raw["student_id"])
        valid_school = (_valid(clean_school_code, raw["school_code"]) if raw["school_code"]
                        else None)
        if cand.structural:
            valid_email = _valid(clean_email, raw["email"])
            return Checked(cand, None, tuple(errors), valid_id, valid_email, valid_school)
        try:
            clean_student_id(raw["student_id"])
        except Invalid as exc:
            errors.append(error("student_id", str(exc)))
        return Checked(cand, None, tuple(errors), valid_id, None, valid_school)

    rules = _rules(tuple(allowed_domains) if allowed_domains is not None else None)
    done = {name for name, _ in cand.problems} | cand.unchecked
    clean: dict[str, Any] = {}
    for name, rule in rules.items():
        if name in done:
            continue
        try:
            clean[name] = rule(raw[name])
        except Invalid as exc:
            errors.append(error(name, str(exc)))
    # The keys compared across rows: the cleaned values when the rules passed (the same
    # functions), else whatever of them can still be read. Duplicates ignore the domain rule.
    valid_id = clean.get("student_id") or _valid(clean_student_id, raw["student_id"])
    if "email" in clean and allowed_domains is None:
        valid_email = clean["email"]
    else:
        valid_email = _valid(clean_email, raw["email"])
    valid_school = ((clean.get("school_code") or _valid(clean_school_code, raw["school_code"]))
                    if raw["school_code"] else None)
    student = None
    if not errors and len(clean) == len(rules):
        student = RosterStudent(**clean, source=cand.source, line=cand.line,  # type: ignore[arg-type]
                                raw=cand.raw)
    return Checked(cand, student, tuple(errors), valid_id, valid_email, valid_school)


# When a row has the wrong number of fields, only these values are kept, and only to protect the
# student: a stray comma shifts later columns, so a school code read there could be a level.
_TRUSTED_WHEN_SHIFTED = ("student_id", "email")


def row_candidate(
    source: str,
    line: int,
    values: Mapping[str, str],
    problem: tuple[str, str] | None = None,
    *,
    aligned: bool = True,
    raw: bytes | None = None,
) -> Candidate:
    """A Candidate for a CSV row; a broken row keeps only the values that can still be trusted."""
    if problem is None:
        return Candidate(source, line, values, raw=raw)
    if not aligned:
        values = {f: v for f, v in values.items() if f in _TRUSTED_WHEN_SHIFTED}
    return Candidate(source, line, values, problems=(problem,), structural=True)
