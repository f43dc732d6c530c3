"""POSIX identities for device sign-in: what `getent passwd`, `id`, `su` and a display manager
need, derived by rules from what an entry already holds. Pure: no LDAP, no configuration
loading; the directory side is ``mimsdir/directory/idpool.py`` (numbers) and
``mimsdir/directory/posixfill.py`` (back-fill), the sync's is ``mimsdir/sync/plan.py``.

The rules (docs/directory.md, "POSIX accounts"):

- The Linux user name is the ``mail`` attribute (devices map it: nslcd ``map passwd uid
  mail``, SSSD ``ldap_user_name = mail``), which the roster stores lower-case; ``uid`` stays
  the student ID, the entry's stable key.
- ``homeDirectory`` comes from a template with ``{school}`` and ``{uid}`` (never from the
  email: it changes, and '@' in paths is ugly), each lower-cased and made a safe path segment.
- ``gidNumber`` is the student's school group (``school-<code>``) or, for staff, the one
  staff group (``mims-staff``). The prefixes keep every directory group name apart from a
  device's local groups: a school coded ``SUDO`` must never make its students ``%sudo``.
- ``uidNumber``/``gidNumber`` values are ``first + index * ID_STRIDE + server_id``: every
  provider hands out indexes from its own counter, so its numbers never meet another's.
"""

from __future__ import annotations

import functools
import re
import string

#: Numbers are interleaved by provider: ``first + index * ID_STRIDE + server_id``. Providers
#: (directory.replication.server_id) are therefore 1..ID_STRIDE-1; a directory without
#: replication is server 0.
ID_STRIDE = 64
#: Above this, some tools read a uid as negative (and systemd reserves 2**31 and up).
MAX_ID = 2**31 - 1
#: Below this are local users and groups of every Debian device (and nobody, 65534).
MIN_FIRST_ID = 65536

STAFF_GROUP = "mims-staff"
SCHOOL_GROUP_PREFIX = "school-"
#: ``{school}`` of a staff home when the member of staff has no school code.
STAFF_SCHOOL = "staff"

POSIX_CLASS = "posixAccount"
#: The attributes posixAccount adds to a student's or a staff member's entry.
POSIX_ATTRS = ("uidNumber", "gidNumber", "homeDirectory", "loginShell")

#: Placeholders in a sync plan, replaced by numbers reserved just before the plan is applied
#: (a dry run or a saved plan reserves nothing).
NEW_UID = "uid:new"
_NEW_GID = "gid:"

_TEMPLATE_FIELDS = frozenset({"uid", "school"})
# Printable ASCII without ':' (the passwd file's separator) or spaces.
_PATH_TEXT = re.compile(r"[!-9;-~]*")
_SEGMENT_BAD = re.compile(r"[^a-z0-9._-]")


def user_name(mail: str) -> str:
    """The Linux user name of an entry: its email, lower-case (``mail`` matches without case,
    so a device may be typed ``Wei_Ling@...`` and still find the entry)."""
    return mail.strip().lower()


@functools.lru_cache(maxsize=4096)
def school_group(school: str) -> str:
    """The posixGroup of a school's students: ``school-demops``."""
    return SCHOOL_GROUP_PREFIX + _segment(school)


def new_gid(group: str) -> str:
    return f"{_NEW_GID}{group}"


def placeholder_group(value: str | None) -> str | None:
    """The group whose number a plan's ``gid:<group>`` placeholder waits for, else None."""
    if value and value.startswith(_NEW_GID):
        return value[len(_NEW_GID):]
    return None


def is_placeholder(value: str | None) -> bool:
    return value == NEW_UID or placeholder_group(value) is not None


def _segment(value: str) -> str:
    """One safe path segment: lower-case ``[a-z0-9._-]`` (anything else becomes ``_``), never
    ``.``, ``..`` or a hidden name."""
    text = _SEGMENT_BAD.sub("_", value.strip().lower()) or "_"
    return "_" + text[1:] if text.startswith(".") else text


def template_problem(template: str) -> str | None:
    """Why ``template`` cannot be a home directory template, or None."""
    if not template.startswith("/") or template.endswith("/"):
        return "must be an absolute path, not ending in '/'"
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"not a template: {exc}"
    fields = set()
    for literal, name, spec, conversion in parts:
        if not _PATH_TEXT.fullmatch(literal):
            return "only printable ASCII, without spaces or ':'"
        if name is None:
            continue
        if name not in _TEMPLATE_FIELDS or spec or conversion:
            return f"unknown placeholder {{{name}}} (use {{uid}} and {{school}})"
        fields.add(name)
    if "uid" not in fields:
        return "must contain {uid} (each person needs a home of their own)"
    sample = template.format(uid="x", school="y")
    if any(seg in ("", ".", "..") for seg in sample.split("/")[1:]):
        return "no empty, '.' or '..' path segments"
    return None


def shell_problem(shell: str) -> str | None:
    if not shell.startswith("/") or not _PATH_TEXT.fullmatch(shell) or shell.endswith("/"):
        return "must be an absolute path of printable ASCII, without spaces or ':'"
    return None


def home_directory(template: str, uid: str, school: str | None) -> str:
    """The home directory of ``uid`` (the student or staff ID) at ``school``."""
    return template.format(uid=_segment(uid), school=_school_segment(school or STAFF_SCHOOL))


@functools.lru_cache(maxsize=4096)
def _school_segment(school: str) -> str:
    return _segment(school)  # the same few values for every student of a sync


def number(first: int, index: int, server_id: int) -> int:
    """The ``index``-th number that provider ``server_id`` hands out from a pool starting at
    ``first``. Raises ValueError when the pool is spent (beyond MAX_ID)."""
    if not 0 <= server_id < ID_STRIDE:
        raise ValueError(f"server id {server_id} is outside 0..{ID_STRIDE - 1}")
    value = first + index * ID_STRIDE + server_id
    if index < 0 or value > MAX_ID:
        raise ValueError(f"no numbers left: index {index} from {first} is beyond {MAX_ID}")
    return value


def server_id_of_csn(csn: str) -> int:
    """The server id in an entryCSN (``20261128020000.123456Z#000000#002#000000``): which
    provider made the change."""
    parts = csn.split("#")
    if len(parts) != 4:
        raise ValueError(f"not an entryCSN: {csn!r}")
    return int(parts[2], 16)
