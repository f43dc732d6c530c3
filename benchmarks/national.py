"""The national data set of `make bench`: generated, deterministic, loaded fast.

- ``write_roster``: N students in schools of about 1,000 (levels P1-P6, classes of 30, one form
  teacher a class), names in the styles and scripts of Singapore's communities (Chinese names
  in Hanyu Pinyin and some in Han characters, Malay names with bin/binte, Indian names with
  s/o, d/o and some in Tamil script, Eurasian names), every email unique and stable.
- ``next_night``: the same roster a night later: new pupils, leavers, class moves, name and
  email changes (``--changes`` of the rows, 2% by default), and ``class_moves``: only class
  changes (the "2% delta" workload, whose floor is ``ldapmodify`` of the same modifies).
- ``write_ldif``: the directory that a first sync of that roster makes (the sync's own planner
  on an empty directory, numbers handed out as the id pools would), with the form teachers,
  the school groups and the id counters; every student holds one argon2 password hash.
  ``mimsdir directory load --offline`` (slapadd) loads it in seconds, where the sync would
  spend hours hashing 500,000 passwords.

Same ``seed`` and size, same bytes: two runs of the benchmark compare like with like.
"""

from __future__ import annotations

import base64
import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from mimsdir.config import PosixConfig
from mimsdir.directory.slapdconf import Dns
from mimsdir.posix import STAFF_GROUP, home_directory, number
from mimsdir.roster import read_roster
from mimsdir.sync.apply import add_attrs
from mimsdir.sync.model import CREATE, GROUP
from mimsdir.sync.plan import DirectoryState, assign_numbers, numbers_needed, plan_sync

SCHOOL_SIZE = 1000
CLASS_SIZE = 30
LEVELS = ("P1", "P2", "P3", "P4", "P5", "P6")
STUDENT_DOMAIN = "students.moe.edu.sg"
STAFF_DOMAIN = "schools.moe.edu.sg"
HEADER = ["student_id", "email", "given_name", "family_name", "school_code", "level", "class",
          "form_teacher_email", "status"]
CLASS_WORDS = ("Courage", "Respect", "Integrity", "Harmony", "Kindness", "Wisdom", "Grace",
               "Unity", "Honour", "Resilience")

# (given names, family names, share of the population); a few names in their own script.
CHINESE_GIVEN = ("Wei Ling", "Jun Jie", "Xin Yi", "Zhi Hao", "Hui Min", "Jia Hui", "Kai Xuan",
                 "Yu Xuan", "Rui En", "Zi Xuan", "Jing Yi", "Yi Xuan", "Jun Wei", "Shu Ting",
                 "Siew-Ling", "Ethan", "Chloe", "Ryan", "Natalie", "Isaac")
CHINESE_FAMILY = ("Tan", "Lim", "Lee", "Ng", "Ong", "Wong", "Goh", "Chua", "Chan", "Koh", "Teo",
                  "Ang", "Yeo", "Tay", "Ho", "Low", "Toh", "Sim", "Chong", "Chia")
HAN = (("伟玲", "陈"), ("俊杰", "林"), ("欣怡", "李"), ("志豪", "黄"), ("慧敏", "吴"))
MALAY_GIVEN = ("Nur Aisyah", "Muhammad Haziq", "Siti Nurhaliza", "Ahmad Faris", "Nurul Huda",
               "Muhammad Irfan", "Nur Qistina", "Danish", "Aqilah", "Hafiz", "Nur Iman",
               "Adam")
MALAY_FAMILY = ("binte Rahman", "bin Ismail", "binte Osman", "bin Abdullah", "bin Hassan",
                "binte Yusof", "bin Salleh", "binte Kassim")
INDIAN_GIVEN = ("Priya", "Arjun", "Kavya", "Rahul", "Divya", "Sanjay", "Meera", "Karthik",
                "Ananya", "Vikram", "Nithya", "Rohan")
INDIAN_FAMILY = ("d/o Ramasamy", "s/o Krishnan", "Pillai", "Nair", "Subramaniam",
                 "d/o Muthu", "s/o Raman", "Menon", "Singh", "Kaur")
TAMIL = (("பிரியா", "ராமசாமி"), ("அர்ஜுன்", "கிருஷ்ணன்"), ("கவ்யா", "முத்து"))
EURASIAN_GIVEN = ("Sophie", "Ryan", "Chloe", "Marcus", "Olivia", "Nathan", "Gabrielle")
EURASIAN_FAMILY = ("de Souza", "Pereira", "Rodrigues", "D'Cruz", "Oliveiro", "Fernandez",
                   "Schelvis")


def _name(rng: random.Random) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.72:
        if rng.random() < 0.04:
            return rng.choice(HAN)
        return rng.choice(CHINESE_GIVEN), rng.choice(CHINESE_FAMILY)
    if roll < 0.87:
        return rng.choice(MALAY_GIVEN), rng.choice(MALAY_FAMILY)
    if roll < 0.97:
        if rng.random() < 0.04:
            return rng.choice(TAMIL)
        return rng.choice(INDIAN_GIVEN), rng.choice(INDIAN_FAMILY)
    return rng.choice(EURASIAN_GIVEN), rng.choice(EURASIAN_FAMILY)


def _ascii(text: str) -> str:
    out = "".join(ch for ch in text.lower() if "a" <= ch <= "z")
    return out or "pupil"


@dataclass(frozen=True)
class Row:
    student_id: str
    email: str
    given_name: str
    family_name: str
    school: str
    level: str
    class_name: str
    teacher: str
    status: str = ""

    def cells(self) -> list[str]:
        return [self.student_id, self.email, self.given_name, self.family_name, self.school,
                self.level, self.class_name, self.teacher, self.status]


def school_code(i: int) -> str:
    return f"S{i:04d}"


def teacher_mail(school: str, class_name: str) -> str:
    slug = "".join(ch for ch in class_name.lower() if ch.isascii() and ch.isalnum())
    return f"ft.{school.lower()}.{slug}@{STAFF_DOMAIN}"


def _email(given: str, family: str, serial: int) -> str:
    return f"{_ascii(given)}.{_ascii(family)}.{serial}@{STUDENT_DOMAIN}"


def class_of(level: str, index: int) -> str:
    """``1 Courage``, ``1 Respect``, ...: a level's classes in turn, by the pupil's index."""
    return f"{level[1]} {CLASS_WORDS[index % len(CLASS_WORDS)]}"


def rows(n: int, seed: int = 20261201, start: int = 0) -> Iterator[Row]:
    """N pupils: schools of SCHOOL_SIZE, a school's pupils spread over P1-P6, classes of
    CLASS_SIZE (so about six classes a level). ``start``: the first pupil's number; pupils
    from ``start`` on have other ids, emails and (from a multiple of SCHOOL_SIZE) schools
    than those before it (new schools joining a loaded directory)."""
    rng = random.Random(seed)
    for i in range(start, start + n):
        school = school_code(i // SCHOOL_SIZE)
        in_school = i % SCHOOL_SIZE
        level = LEVELS[in_school * len(LEVELS) // SCHOOL_SIZE]
        per_level = SCHOOL_SIZE // len(LEVELS)
        klass = class_of(level, (in_school % per_level) // CLASS_SIZE)
        given, family = _name(rng)
        yield Row(f"T{i:07d}", _email(given, family, i), given, family, school, level, klass,
                  teacher_mail(school, klass))


def write_roster(path: Path, items: Iterator[Row] | list[Row]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for r in items:
            w.writerow(r.cells())
    return path


def class_moves(base: list[Row], share: float, seed: int = 7) -> tuple[list[Row], list[Row]]:
    """``share`` of the pupils move to another class of their level: (new roster, moved)."""
    rng = random.Random(seed)
    out, moved = [], []
    for r in base:
        if rng.random() < share:
            words = [w for w in CLASS_WORDS if w != r.class_name.split(" ", 1)[1]]
            klass = f"{r.level[1]} {rng.choice(words[:5])}"
            r = replace(r, class_name=klass, teacher=teacher_mail(r.school, klass))
            moved.append(r)
        out.append(r)
    return out, moved


def next_night(base: list[Row], share: float, seed: int = 11) -> list[Row]:
    """The roster a night later: of ``share`` of the rows, a quarter each move class or leave,
    and a quarter change name or email; as many new pupils as leavers join."""
    rng = random.Random(seed)
    out: list[Row] = []
    joined = 0
    for r in base:
        if rng.random() >= share:
            out.append(r)
            continue
        what = rng.randrange(4)
        if what == 0:
            klass = f"{r.level[1]} {rng.choice(CLASS_WORDS[:5])}"
            out.append(replace(r, class_name=klass, teacher=teacher_mail(r.school, klass)))
        elif what == 1:
            joined += 1  # a leaver: the row is gone, a new pupil takes the place below
        elif what == 2:
            given, family = _name(rng)
            out.append(replace(r, given_name=given, family_name=family))
        else:
            out.append(replace(r, email=r.email.replace("@", f".{rng.randrange(99)}@")))
    for j in range(joined):
        given, family = _name(rng)
        src = base[rng.randrange(len(base))]
        out.append(replace(src, student_id=f"N{j:07d}", email=_email(given, family, 9_000_000 + j),
                           given_name=given, family_name=family))
    return out


def _ldif_value(name: str, value: bytes) -> str:
    if value and all(32 <= b < 127 for b in value) and value[:1] not in (b" ", b":", b"<") \
            and value[-1:] != b" ":
        return f"{name}: {value.decode()}\n"
    return f"{name}:: {base64.b64encode(value).decode()}\n"


def _entry(dn: str, attrs: dict[str, list[bytes]]) -> str:
    lines = [_ldif_value("dn", dn.encode())]
    for name, vals in attrs.items():
        lines.extend(_ldif_value(name, v) for v in vals)
    return "".join(lines) + "\n"


def write_ldif(path: Path, roster_csv: Path, base_dn: str, password_hash: str,
               posix: PosixConfig | None = None) -> int:
    """The entries a first sync of ``roster_csv`` would leave (and its form teachers), as
    LDIF for slapadd. Returns the number of entries."""
    posix = posix or PosixConfig()
    dns = Dns(base_dn)
    roster = read_roster(roster_csv, "native")
    if roster.errors:
        raise SystemExit(f"{roster_csv}: {len(roster.errors)} row errors: {roster.errors[0]}")
    # Form teachers first, so the planner links them, then groups, then students.
    teachers = sorted({(s.school_code, s.class_name, s.form_teacher_email)
                       for s in roster.students if s.form_teacher_email})
    teacher_dns = {mail: f"uid=F{i:07d},{dns.staff}" for i, (_, _, mail) in enumerate(teachers)}
    state = DirectoryState(students={}, mail_owners={}, teachers=teacher_dns, groups={})
    plan = plan_sync(roster, state, dns=dns, now=datetime.now(UTC), posix=posix)
    uid_count, groups = numbers_needed(plan)
    total_uids = uid_count + len(teachers)
    uids = [number(posix.uid_min, i, 0) for i in range(total_uids)]
    names = [*sorted(g.uid for g in groups), STAFF_GROUP]
    gids = {name: number(posix.gid_min, i, 0) for i, name in enumerate(names)}
    plan = assign_numbers(plan, uids[:uid_count], gids)
    count = 0
    with path.open("w", encoding="utf-8") as fh:
        fh.write(_entry(dns.posix_group(STAFF_GROUP), {
            "objectClass": [b"posixGroup"], "cn": [STAFF_GROUP.encode()],
            "gidNumber": [str(gids[STAFF_GROUP]).encode()], "description": [b"MIMS staff"]}))
        count += 1
        for (school, klass, mail), uid_number in zip(teachers, uids[uid_count:], strict=True):
            uid = teacher_dns[mail].split(",", 1)[0].split("=", 1)[1]
            fh.write(_entry(teacher_dns[mail], {
                "objectClass": [b"inetOrgPerson", b"mimsStaff", b"posixAccount"],
                "uid": [uid.encode()], "cn": [f"Form teacher {klass}".encode()],
                "sn": [b"Teacher"], "mail": [mail.encode()], "mimsSchoolCode": [school.encode()],
                "mimsClass": [klass.encode()], "mimsAccountStatus": [b"active"],
                "pwdPolicySubentry": [dns.policy("staff").encode()],
                "uidNumber": [str(uid_number).encode()],
                "gidNumber": [str(gids[STAFF_GROUP]).encode()],
                "homeDirectory": [home_directory(posix.staff_home_template, uid, school).encode()],
                "loginShell": [posix.shell.encode()]}))
            count += 1
        for c in plan.changes:
            if c.kind == GROUP:
                fh.write(_entry(c.dn, {
                    "objectClass": [b"posixGroup"], "cn": [c.uid.encode()],
                    "gidNumber": [str(gids[c.uid]).encode()],
                    "description": [c.name.encode()]}))
            elif c.kind == CREATE:
                attrs = add_attrs(c)
                # As the first sync leaves a student once the slip is written: a default
                # password to change at first sign-in, nothing pending.
                attrs.pop("mimsCredentialPending", None)
                attrs["userPassword"] = [password_hash.encode()]
                attrs["pwdReset"] = [b"TRUE"]
                fh.write(_entry(c.dn, attrs))
            else:
                raise SystemExit(f"unexpected {c.kind} in a first sync's plan")
            count += 1
        for pool, used in (("uid", total_uids), ("gid", len(names))):
            fh.write(_entry(dns.idpool(f"{pool}-0"), {
                "objectClass": [b"mimsIdPool"], "cn": [f"{pool}-0".encode()],
                "mimsIdNext": [str(used).encode()],
                "description": [f"{pool} numbers of server 0".encode()]}))
            count += 1
    return count
