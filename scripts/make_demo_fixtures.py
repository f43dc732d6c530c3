#!/usr/bin/env python3
"""Generate the demo school's fixtures from one data source.

Demo Primary School (``DEMOPS``) is a made-up school. It has 40 students in six classes
(2A, 3A, 4A, 4B, 5A, 6A), one form teacher per class and one ICT admin. This module holds
the school as Python data (``STAFF``, ``CLASSES``, ``STUDENTS``) and writes it in two forms:

* ``ldap-fixtures/demo-school.csv``: the student roster in the native CSV format
  (design notes section 7), which is what ``mimsdir sync`` reads;
* ``ldap-fixtures/demo-school.ldif``: the staff, the ``cn=ict-admins`` group and the same
  students as LDIF entries under ``dc=mims,dc=example``, which ``mimsdir directory load`` loads.
  The LDIF leaves out the base entry and the ``ou=`` containers because ``directory up``
  creates them.

Both files are committed. ``tests/test_demo_fixtures.py`` regenerates them and fails if the
committed copies differ from this script's output. So edit this script, never the files::

    .venv/bin/python scripts/make_demo_fixtures.py            # rewrite ldap-fixtures/demo-school.*
    .venv/bin/python scripts/make_demo_fixtures.py --check    # exit 1 if they are out of date

The output is deterministic: there is no randomness, no timestamp and no dependence on
dict or set ordering.

The names are fictional but typical of a Singapore school: Chinese, Malay, Indian and
Eurasian students, with Chinese-character and Tamil-script display names, ``bin``, ``binte``,
``s/o`` and ``d/o``, apostrophes, hyphens and accented letters. Student ids have the NRIC
shape (``S`` + 7 digits + a letter), but every check letter is deliberately wrong, so
a fixture id can never be a real person's NRIC. ``is_valid_nric_checksum`` is the check.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import ldif

from mimsdir.roster.native import COLUMNS as NATIVE_COLUMNS

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_OUT_DIR: Final = REPO_ROOT / "ldap-fixtures"
CSV_NAME: Final = "demo-school.csv"
LDIF_NAME: Final = "demo-school.ldif"

BASE_DN: Final = "dc=mims,dc=example"
STUDENTS_DN: Final = f"ou=students,{BASE_DN}"
STAFF_DN: Final = f"ou=staff,{BASE_DN}"
GROUPS_DN: Final = f"ou=groups,{BASE_DN}"
POLICIES_DN: Final = f"ou=policies,{BASE_DN}"
ICT_ADMINS_DN: Final = f"cn=ict-admins,{GROUPS_DN}"

SCHOOL_CODE: Final = "DEMOPS"
SCHOOL_NAME: Final = "Demo Primary School"
STUDENT_MAIL_DOMAIN: Final = "students.demo.edu.sg"
STAFF_MAIL_DOMAIN: Final = "demo.edu.sg"

#: The native roster columns, in order (design notes section 7), as the reader defines them.
CSV_COLUMNS: Final = tuple(NATIVE_COLUMNS)

LOWER_PRIMARY_POLICY_DN: Final = f"cn=lower-primary,{POLICIES_DN}"
UPPER_PRIMARY_POLICY_DN: Final = f"cn=upper-primary,{POLICIES_DN}"
STAFF_POLICY_DN: Final = f"cn=staff,{POLICIES_DN}"


@dataclass(frozen=True)
class Staff:
    """One staff member as written in the data source below."""

    staff_id: str
    given_name: str
    family_name: str
    mail_local: str  # the part before @demo.edu.sg; staff addresses are issued, not derived
    form_class: str | None = None  # the class this person is form teacher of, if any

    @property
    def dn(self) -> str:
        return f"uid={self.staff_id},{STAFF_DN}"

    @property
    def mail(self) -> str:
        return f"{self.mail_local}@{STAFF_MAIL_DOMAIN}"

    @property
    def cn(self) -> str:
        return f"{self.given_name} {self.family_name}"


@dataclass(frozen=True)
class Student:
    """One student as written in the data source below. The other fields are derived."""

    student_id: str
    given_name: str
    family_name: str
    school_class: str
    script_name: str | None = None  # the name in Chinese characters or Tamil script, if any


@dataclass(frozen=True)
class StudentRecord:
    """A student with every derived field filled in: one CSV row, one LDIF entry."""

    student_id: str
    email: str
    given_name: str
    family_name: str
    cn: str
    display_name: str
    level: str
    school_class: str
    teacher: Staff

    @property
    def dn(self) -> str:
        return f"uid={self.student_id},{STUDENTS_DN}"

    @property
    def policy_dn(self) -> str:
        return policy_for_level(self.level)


# --------------------------------------------------------------------------------------------
# The data source. Everything below the data is derived from it.
# --------------------------------------------------------------------------------------------

STAFF: Final[tuple[Staff, ...]] = (
    Staff("T3817402", "Mei Hua", "Tan", "tan_mei_hua", form_class="2A"),
    Staff("T5230916", "Siti Rahimah", "binte Osman", "siti_rahimah_osman", form_class="3A"),
    Staff("T4471253", "Jason", "Lim", "jason_lim", form_class="4A"),
    Staff("T6092384", "Nirmala", "d/o Rajaratnam", "nirmala_rajaratnam", form_class="4B"),
    Staff("T2785610", "Andrea", "Fernandez", "andrea_fernandez", form_class="5A"),
    Staff("T7348125", "Hui Min", "Ng", "ng_hui_min", form_class="6A"),
    Staff("ICT0001", "Ahmad Firdaus", "bin Jamil", "ahmad_firdaus_jamil"),
)

#: The ids of the staff in ``cn=ict-admins,ou=groups``.
ICT_ADMIN_IDS: Final[tuple[str, ...]] = ("ICT0001",)

STUDENTS: Final[tuple[Student, ...]] = (
    # 2A: Mdm Tan Mei Hua
    Student("S2614023J", "Wei Ling", "Tan", "2A", "陈伟玲"),
    Student("S2718752C", "Nur Aisyah", "binte Mohamed Rizal", "2A"),
    Student("S2823481I", "Arjun", "s/o Krishnan", "2A"),
    Student("S2928210H", "Zoë", "D'Souza", "2A"),
    Student("S2632939A", "Ethan Jun Jie", "Ng", "2A", "黄俊杰"),
    Student("S2737668G", "Muhammad Haziq", "bin Ismail", "2A"),
    Student("S2842397B", "Xin Yi", "Lim", "2A", "林欣怡"),
    # 3A: Cikgu Siti Rahimah
    Student("S2947126A", "Jun Jie", "Tan", "3A", "陈俊杰"),
    Student("S2651855J", "Kavin", "s/o Murugan", "3A", "கவின் முருகன்"),
    Student("S2756584F", "Aqilah", "binte Salleh", "3A"),
    Student("S2861313E", "Chloé", "Pereira", "3A"),
    Student("S2966042J", "Yu Xuan", "Chua", "3A", "蔡雨萱"),
    Student("S2670771Z", "Rohan", "Nair", "3A"),
    Student("S2775500I", "Siti Nur Qistina", "binte Abdul Rahman", "3A"),
    # 4A: Mr Jason Lim
    Student("S2880229I", "Priya", "d/o Ramasamy", "4A", "பிரியா ராமசாமி"),
    Student("S2984958B", "Kai Wen", "Goh", "4A", "吴凯文"),
    Student("S2689687C", "Ryan", "Lim-Ong", "4A"),
    Student("S2794416B", "Nurul Huda", "binte Rahmat", "4A"),
    Student("S2899145H", "Zi Xuan", "Ong", "4A", "王子轩"),
    Student("S2603874E", "Harpreet", "Kaur", "4A"),
    Student("S2708603D", "Adam Rayyan", "bin Kamarudin", "4A"),
    # 4B: Mrs Nirmala
    Student("S2813332Z", "Muhammad Aiman", "bin Ma'arof", "4B"),
    Student("S2918061E", "Jia Hui", "Koh", "4B", "许佳慧"),
    Student("S2622790D", "Lakshmi", "d/o Subramaniam", "4B", "லட்சுமி சுப்பிரமணியம்"),
    Student("S2727519H", "Inês", "Rodrigues", "4B"),
    Student("S2832248C", "Hao Ran", "Teo", "4B", "张浩然"),
    Student("S2936977G", "Aditya", "Sharma", "4B"),
    # 5A: Ms Andrea Fernandez
    Student("S2641706A", "Jun Jie", "Tan", "5A", "陈骏捷"),
    Student("S2746435G", "Putri Balqis", "binte Yusof", "5A"),
    Student("S2851164B", "Noël", "Westerhout", "5A"),
    Student("S2955893F", "Shi Min", "Yeo", "5A", "杨诗敏"),
    Student("S2660622J", "Arun", "s/o Rajendran", "5A", "அருண் ராஜேந்திரன்"),
    Student("S2765351F", "Ahmad Faris", "bin Hamzah", "5A"),
    Student("S2870080A", "En Qi", "Sim", "5A", "沈恩琪"),
    # 6A: Mdm Ng Hui Min
    Student("S2974809C", "Divya", "d/o Chandrasekaran", "6A"),
    Student("S2679538D", "Zhi Hao", "Low", "6A", "刘志豪"),
    Student("S2784267Z", "Irfan Hakimi", "bin Sulaiman", "6A"),
    Student("S2888996C", "Matthew", "Conceição", "6A"),
    Student("S2993725B", "Jing Yi", "Ho", "6A", "何静怡"),
    Student("S2698454C", "Sanjana", "Pillai", "6A"),
)

# --------------------------------------------------------------------------------------------
# The demo's named accounts. Demo scripts, docs and tests import these instead of copying ids.
# --------------------------------------------------------------------------------------------

#: A P2 student in 2A, so on the lower-primary policy, with a Chinese-character display name
#: (陈伟玲). This is the pre-set challenge card (``qna cards``) and slip demo for P2-P3.
DEMO_P2_STUDENT: Final = "S2614023J"

#: A P4 student in 4A, so on the upper-primary policy, who sets their own questions. The
#: display name is in Tamil script (பிரியா ராமசாமி) and the family name has ``d/o``.
#: ``DEMO_TEACHER`` is this student's form teacher.
DEMO_P4_STUDENT: Final = "S2880229I"

#: The form teacher of 4A (``DEMO_P4_STUDENT``'s class). Teacher-view demo: this teacher
#: may reset and unlock 4A students only.
DEMO_TEACHER: Final = "T4471253"

#: A P4 student in 4B, which has a different form teacher. ``DEMO_TEACHER`` must NOT be able
#: to reset or unlock this student, even though the level is the same: the ACL negative case.
DEMO_OTHER_CLASS_STUDENT: Final = "S2918061E"

#: The ICT admin (staff, sole member of ``cn=ict-admins,ou=groups``): CLI operator.
DEMO_ICT_ADMIN: Final = "ICT0001"

#: Two students with the same name, "Jun Jie Tan" (3A and 5A), written 陈俊杰 and 陈骏捷.
#: The first keeps ``jun_jie_tan@``, the second gets ``jun_jie_tan_2@``. Use them to show that
#: login is by the unique ``mail`` and records are keyed by ``uid``, never by name.
DEMO_NAMESAKES: Final[tuple[str, str]] = ("S2947126A", "S2641706A")


# --------------------------------------------------------------------------------------------
# Derivations
# --------------------------------------------------------------------------------------------

_NRIC_WEIGHTS: Final = (2, 7, 6, 5, 4, 3, 2)
_NRIC_LETTERS_ST: Final = "JZIHGFEDCBA"
_STUDENT_ID_RE: Final = re.compile(r"S\d{7}[A-Z]")
_CLASS_RE: Final = re.compile(r"([1-6])[A-Z]")
# Words that mark a patronymic ("bin Ismail", "d/o Ramasamy"). They stay in family_name and cn,
# but not in the email address.
_PATRONYMIC_MARKERS: Final = frozenset({"bin", "binte", "binti", "s/o", "d/o", "a/l", "a/p"})


def is_valid_nric_checksum(ident: str) -> bool:
    """True if ``ident`` (``S``/``T`` + 7 digits + letter) has a correct NRIC check letter."""
    if len(ident) != 9 or ident[0] not in "ST" or not ident[1:8].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(ident[1:8], _NRIC_WEIGHTS, strict=True))
    if ident[0] == "T":
        total += 4
    return _NRIC_LETTERS_ST[total % 11] == ident[8]


def level_of(school_class: str) -> str:
    """The level of a class: ``"4B"`` -> ``"P4"``."""
    match = _CLASS_RE.fullmatch(school_class)
    if match is None:
        raise ValueError(f"not a primary-school class: {school_class!r}")
    return f"P{match.group(1)}"


def policy_for_level(level: str) -> str:
    """The ppolicy entry for a level: lower primary for P1-P3, upper primary for P4-P6."""
    if level in ("P1", "P2", "P3"):
        return LOWER_PRIMARY_POLICY_DN
    if level in ("P4", "P5", "P6"):
        return UPPER_PRIMARY_POLICY_DN
    raise ValueError(f"not a primary level: {level!r}")


def ascii_slug(text: str) -> str:
    """Lower-case ASCII words joined by ``_``: ``"Lim-Ong"`` -> ``"lim_ong"``.

    Accents are removed (``"Zoë"`` -> ``"zoe"``), apostrophes dropped (``"D'Souza"`` ->
    ``"dsouza"``), and any other run of characters that are not letters or digits (spaces,
    hyphens, slashes) becomes one ``_``.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = decomposed.encode("ascii", "ignore").decode("ascii").lower()
    ascii_text = ascii_text.replace("'", "")
    return re.sub(r"[^a-z0-9]+", "_", ascii_text).strip("_")


def email_local_part(given_name: str, family_name: str) -> str:
    """The part before the @ of a student's email address, without the namesake suffix.

    The rule is ``<given name>_<family name>``, with the ``bin``/``binte``/``s/o``/``d/o``
    marker left out: ``Nur Aisyah`` + ``binte Mohamed Rizal`` -> ``nur_aisyah_mohamed_rizal``.
    """
    family_words = [w for w in family_name.split() if w.lower() not in _PATRONYMIC_MARKERS]
    local = f"{ascii_slug(given_name)}_{ascii_slug(' '.join(family_words))}"
    if not re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", local):
        raise ValueError(f"cannot make an email address for {given_name!r} {family_name!r}")
    return local


def teachers_by_class() -> dict[str, Staff]:
    """The form teacher of each class."""
    result: dict[str, Staff] = {}
    for person in STAFF:
        if person.form_class is not None:
            if person.form_class in result:
                raise ValueError(f"class {person.form_class} has two form teachers")
            result[person.form_class] = person
    return result


def staff_records() -> list[Staff]:
    """The staff, checked: ids, mail addresses and ICT admin ids are consistent."""
    ids = [p.staff_id for p in STAFF]
    mails = [p.mail for p in STAFF]
    if len(set(ids)) != len(ids) or len(set(mails)) != len(mails):
        raise ValueError("duplicate staff id or mail")
    for admin in ICT_ADMIN_IDS:
        if admin not in ids:
            raise ValueError(f"ICT admin {admin} is not in STAFF")
    return list(STAFF)


def student_records() -> list[StudentRecord]:
    """Every student with the derived fields filled in, in data-source order.

    A second student whose email would be the same as an earlier student's gets ``_2``
    appended (a third gets ``_3``, and so on), so the addresses are unique and the suffixes
    are stable while the order of ``STUDENTS`` stays the same.
    """
    teachers = teachers_by_class()
    used: set[str] = set()
    seen_ids: set[str] = set()
    records: list[StudentRecord] = []
    for s in STUDENTS:
        if not _STUDENT_ID_RE.fullmatch(s.student_id):
            raise ValueError(f"bad student id {s.student_id!r}")
        if is_valid_nric_checksum(s.student_id):
            raise ValueError(f"{s.student_id} is a valid NRIC; fixtures must not use one")
        if s.student_id in seen_ids:
            raise ValueError(f"duplicate student id {s.student_id}")
        seen_ids.add(s.student_id)
        if s.school_class not in teachers:
            raise ValueError(f"class {s.school_class} has no form teacher")
        base = email_local_part(s.given_name, s.family_name)
        local, n = base, 1
        while local in used:
            n += 1
            local = f"{base}_{n}"
        used.add(local)
        cn = f"{s.given_name} {s.family_name}"
        records.append(
            StudentRecord(
                student_id=s.student_id,
                email=f"{local}@{STUDENT_MAIL_DOMAIN}",
                given_name=s.given_name,
                family_name=s.family_name,
                cn=cn,
                display_name=s.script_name or cn,
                level=level_of(s.school_class),
                school_class=s.school_class,
                teacher=teachers[s.school_class],
            )
        )
    return records


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------

LDIF_HEADER: Final = f"""\
# {SCHOOL_NAME} ({SCHOOL_CODE}): staff, the ict-admins group, students.
# Generated by scripts/make_demo_fixtures.py. Do not edit this file:
# change the script and rerun it.
# Entries go under {BASE_DN}; its ou=students, ou=staff, ou=groups
# and ou=policies containers must already exist. Load with:
#   mimsdir directory load ldap-fixtures/{LDIF_NAME}
# Values that are not plain ASCII are base64 (attr:: ...), per RFC 2849.

"""
# No "version: 1" line: slapadd (OpenLDAP 2.5) rejects it, and ldapadd and python-ldap's
# parser do not need it.


def _values(*values: str) -> list[bytes]:
    return [v.encode("utf-8") for v in values]


def staff_entry(person: Staff) -> dict[str, list[bytes]]:
    """The LDIF/LDAP entry of a staff member."""
    entry: dict[str, list[bytes]] = {
        "objectClass": _values("inetOrgPerson", "mimsStaff"),
        "uid": _values(person.staff_id),
        "mail": _values(person.mail),
        "cn": _values(person.cn),
        "sn": _values(person.family_name),
        "givenName": _values(person.given_name),
        "mimsSchoolCode": _values(SCHOOL_CODE),
        "mimsAccountStatus": _values("active"),
        "pwdPolicySubentry": _values(STAFF_POLICY_DN),
    }
    if person.form_class is not None:
        entry["mimsClass"] = _values(person.form_class)
    return entry


def group_entry(member_dns: list[str]) -> dict[str, list[bytes]]:
    """The ``cn=ict-admins`` group entry."""
    return {
        "objectClass": _values("groupOfNames"),
        "cn": _values("ict-admins"),
        "member": _values(*member_dns),
    }


def student_entry(rec: StudentRecord) -> dict[str, list[bytes]]:
    """The LDIF/LDAP entry of a student. It has no userPassword and no mimsChallenge."""
    return {
        "objectClass": _values("inetOrgPerson", "mimsStudent"),
        "uid": _values(rec.student_id),
        "mail": _values(rec.email),
        "cn": _values(rec.cn),
        "sn": _values(rec.family_name),
        "givenName": _values(rec.given_name),
        "displayName": _values(rec.display_name),
        "mimsSchoolCode": _values(SCHOOL_CODE),
        "mimsLevel": _values(rec.level),
        "mimsClass": _values(rec.school_class),
        "mimsFormTeacher": _values(rec.teacher.dn),
        "mimsAccountStatus": _values("active"),
        "pwdPolicySubentry": _values(rec.policy_dn),
    }


def ldif_entries() -> list[tuple[str, dict[str, list[bytes]]]]:
    """All entries in load order: staff, then the group, then students."""
    staff = staff_records()
    by_id = {p.staff_id: p for p in staff}
    entries = [(p.dn, staff_entry(p)) for p in staff]
    entries.append((ICT_ADMINS_DN, group_entry([by_id[i].dn for i in ICT_ADMIN_IDS])))
    entries.extend((rec.dn, student_entry(rec)) for rec in student_records())
    return entries


def render_ldif() -> str:
    """The text of demo-school.ldif. python-ldap's LDIFWriter does the base64 and folding."""
    out = io.StringIO()
    out.write(LDIF_HEADER)
    writer = ldif.LDIFWriter(out, cols=76, line_sep="\n")
    for dn, entry in ldif_entries():
        writer.unparse(dn, entry)
    return out.getvalue()


def render_csv() -> str:
    """The text of demo-school.csv: a header row, then one row per student."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for rec in student_records():
        writer.writerow(
            (
                rec.student_id,
                rec.email,
                rec.given_name,
                rec.family_name,
                SCHOOL_CODE,
                rec.level,
                rec.school_class,
                rec.teacher.mail,
                "active",
            )
        )
    return out.getvalue()


def rendered() -> dict[str, str]:
    """File name -> text for every generated file."""
    return {CSV_NAME: render_csv(), LDIF_NAME: render_ldif()}


def write_fixtures(out_dir: Path) -> list[Path]:
    """Write the fixtures into ``out_dir`` (created if missing), as UTF-8 with LF line ends."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name, text in rendered().items():
        path = out_dir / name
        path.write_bytes(text.encode("utf-8"))
        paths.append(path)
    return paths


def stale_fixtures(out_dir: Path) -> list[Path]:
    """The files in ``out_dir`` that are missing or differ from what this script generates."""
    stale: list[Path] = []
    for name, text in rendered().items():
        path = out_dir / name
        if not path.is_file() or path.read_bytes() != text.encode("utf-8"):
            stale.append(path)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=f"Write the {SCHOOL_NAME} roster CSV and LDIF fixtures.",
        epilog="example: .venv/bin/python scripts/make_demo_fixtures.py --check",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help=f"where to write {CSV_NAME} and {LDIF_NAME} (default: ldap-fixtures/)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the files in --out-dir are missing or out of date",
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_fixtures(args.out_dir)
        for path in stale:
            print(f"out of date: {path}", file=sys.stderr)
        return 1 if stale else 0
    for path in write_fixtures(args.out_dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
