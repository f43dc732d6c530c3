"""OneRoster 1.1 CSV: join users, orgs, classes and enrollments into one record per student.

- student_id is the user's `identifier` (the school's own id, what the other formats carry) and,
  when that is empty, the `sourcedId`;
- school code is the `identifier` of the user's org of type "school";
- class is the `title` of the student's homeroom class (or of the only class the student is in);
  level comes from that class's `grades` (OneRoster codes "01".."06"), else the user's own grades;
- form teacher is the class's primary teacher (else its first teacher), by that user's email;
- `tobedeleted` users are departures, `enabledUser=false` means the student has left;
- a manifest saying `delta` makes the roster a delta: absent students have not left.

Problems in the joined files are reported on the student's users.csv line, naming the other file's
line, so that each student has one place in the reports.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mimsdir.roster.assemble import assemble
from mimsdir.roster.oneroster_files import CsvSet, manifest_modes, open_set
from mimsdir.roster.records import Roster, RosterError, RowError
from mimsdir.roster.table import Table, TableRow, parse_table
from mimsdir.roster.validate import Candidate, show

_META = ("sourcedId", "status", "dateLastModified")
SPEC_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "orgs": (*_META, "name", "type", "identifier", "parentSourcedId"),
    "users": (
        *_META,
        "enabledUser",
        "orgSourcedIds",
        "role",
        "username",
        "userIds",
        "givenName",
        "familyName",
        "middleName",
        "identifier",
        "email",
        "sms",
        "phone",
        "agentSourcedIds",
        "grades",
        "password",
    ),
    "classes": (
        *_META,
        "title",
        "grades",
        "courseSourcedId",
        "classCode",
        "classType",
        "location",
        "schoolSourcedId",
        "termSourcedIds",
        "subjects",
        "subjectCodes",
        "periods",
    ),
    "enrollments": (
        *_META,
        "classSourcedId",
        "schoolSourcedId",
        "userSourcedId",
        "role",
        "primary",
        "beginDate",
        "endDate",
    ),
}
REQUIRED: Mapping[str, tuple[str, ...]] = {
    "orgs": ("sourcedId", "type", "identifier"),
    "users": ("sourcedId", "orgSourcedIds", "role", "givenName", "familyName", "email"),
    "classes": ("sourcedId", "title"),
    "enrollments": ("classSourcedId", "userSourcedId", "role"),
}
_DELETED = "tobedeleted"


@dataclass(frozen=True)
class _Ref:
    """A row of orgs/classes/users kept for lookups, with where it was."""

    values: Mapping[str, str]
    line: int


@dataclass
class _Index:
    """sourcedId -> row for one file; ids that appear twice map to None (ambiguous)."""

    file: str
    rows: dict[str, _Ref | None] = field(default_factory=dict)

    def add(self, row: TableRow) -> None:
        key = row.values.get("sourcedid", "").strip()
        if key:
            self.rows[key] = None if key in self.rows else _Ref(row.values, row.line)

    def find(self, key: str) -> tuple[_Ref | None, str | None]:
        """The row, or None and the reason it cannot be used."""
        if key not in self.rows:
            return None, f"{key!r} is not in {self.file}"
        ref = self.rows[key]
        if ref is None:
            return None, f"{key!r} appears more than once in {self.file}"
        return ref, None


def _split(text: str | None) -> list[str]:
    """OneRoster lists (orgSourcedIds, grades) are comma-separated inside one field."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _active(row: TableRow) -> bool:
    return row.values.get("status", "").strip().lower() != _DELETED


class _Reader:
    """State for one OneRoster set: the parsed files, the lookups, and errors outside users.csv."""

    def __init__(self, found: CsvSet, is_delta: bool) -> None:
        self.found = found
        self.is_delta = is_delta
        self.errors: list[RowError] = []
        self.warnings: list[str] = []
        self.tables = {name: self._table(name) for name in SPEC_COLUMNS}
        self.orgs = _Index("orgs.csv")
        self.classes = _Index("classes.csv")
        self.users = _Index("users.csv")
        self.student_classes: dict[str, list[tuple[str, int]]] = defaultdict(list)
        self.class_teachers: dict[str, list[tuple[str, bool, int]]] = defaultdict(list)
        self._index()

    def _table(self, name: str) -> Table | None:
        data = self.found.files.get(name)
        if data is None:
            if not self.is_delta:
                raise RosterError(f"{self.found.shown}: has no {name}.csv")
            self.warnings.append(f"{name}.csv: not in this delta; students may lack its data")
            return None
        columns = {c.lower(): c for c in SPEC_COLUMNS[name]}
        table = parse_table(
            data,
            shown=f"{self.found.shown}: {name}.csv",
            source=f"{name}.csv",
            columns=columns,
            required=tuple(c.lower() for c in REQUIRED[name]),
        )
        self.warnings.extend(table.warnings)
        return table

    def _rows(self, name: str) -> list[TableRow]:
        """Usable rows of a joined file; broken ones become RowErrors of that file."""
        table = self.tables[name]
        good = []
        for row in table.rows if table else ():
            if row.problem is not None:
                self.errors.append(RowError(f"{name}.csv", row.line, *row.problem))
            elif _active(row):
                good.append(row)
        return good

    def _index(self) -> None:
        for row in self._rows("orgs"):
            self.orgs.add(row)
        for row in self._rows("classes"):
            self.classes.add(row)
        table = self.tables["users"]
        for row in table.rows if table else ():
            if row.problem is None and _active(row):
                self.users.add(row)
        for row in self._rows("enrollments"):
            role = row.values.get("role", "").strip().lower()
            user = row.values.get("usersourcedid", "").strip()
            klass = row.values.get("classsourcedid", "").strip()
            if role == "student":
                self.student_classes[user].append((klass, row.line))
            elif role == "teacher":
                primary = row.values.get("primary", "").strip().lower() == "true"
                self.class_teachers[klass].append((user, primary, row.line))

    # --- one student -------------------------------------------------------------------------

    def school(self, user: Mapping[str, str], class_school: str | None) -> tuple[str, str, str]:
        """(school code, origin, problem) from the user's orgs of type "school".

        Orgs missing from orgs.csv are ignored when a school is found anyway: an export filtered
        to one school often leaves out the district that its users still name.
        """
        ids = _split(user.get("orgsourcedids"))
        if not ids:
            return "", "", "the student has no orgSourcedIds"
        schools: list[tuple[str, _Ref]] = []
        unusable: list[str] = []
        for org_id in ids:
            ref, why = self.orgs.find(org_id)
            if ref is None:
                unusable.append(f"org {why}")
            elif ref.values.get("type", "").strip().lower() == "school":
                schools.append((org_id, ref))
        if len(schools) > 1 and class_school:
            schools = [s for s in schools if s[0] == class_school] or schools
        if not schools:
            if unusable:
                return "", "", "; ".join(unusable)
            return "", "", f"none of the orgs {', '.join(ids)} is of type 'school'"
        if len(schools) > 1:
            return "", "", f"the student is in several schools ({', '.join(s for s, _ in schools)})"
        ref = schools[0][1]
        return ref.values.get("identifier", ""), f"orgs.csv:{ref.line}", ""

    def klass(self, user_key: str) -> tuple[_Ref | None, str]:
        """The student's class: the homeroom, else the only class; (None, problem) otherwise."""
        enrolled = self.student_classes.get(user_key, [])
        hint = " (a delta carries only changes)" if self.is_delta else ""
        if not enrolled:
            return None, f"no active class enrollment in enrollments.csv{hint}"
        refs: list[_Ref] = []
        for class_id, line in enrolled:
            ref, why = self.classes.find(class_id)
            if ref is None:
                return None, f"class {why} (enrollments.csv:{line})"
            refs.append(ref)
        homerooms = [r for r in refs if r.values.get("classtype", "").strip().lower() == "homeroom"]
        if len(homerooms) == 1:
            return homerooms[0], ""
        if len(refs) == 1:
            return refs[0], ""
        titles = ", ".join(show(r.values.get("title", "")) for r in homerooms or refs)
        kind = "homeroom classes" if homerooms else "classes and none is a homeroom"
        return None, f"the student is in several {kind} ({titles})"

    def teacher_email(self, class_key: str) -> tuple[str, str, str]:
        """(email, origin, problem) of the class's primary teacher, else its first teacher."""
        teachers = self.class_teachers.get(class_key, [])
        if not teachers:
            return "", "", ""
        user_key, _, line = next((t for t in teachers if t[1]), teachers[0])
        ref, why = self.users.find(user_key)
        if ref is None:
            return "", "", f"teacher {why} (enrollments.csv:{line})"
        return ref.values.get("email", ""), f"users.csv:{ref.line}", ""

    def candidate(self, row: TableRow) -> Candidate | None:
        """The Candidate for one users.csv row, or None if the row is not a student."""
        v = row.values
        role = v.get("role")
        if row.aligned and role is not None and role.strip().lower() != "student":
            if row.problem is not None:  # a broken teacher row: reported, never a student
                self.errors.append(RowError("users.csv", row.line, *row.problem))
            return None
        student_id = v.get("identifier", "").strip() or v.get("sourcedid", "")
        values = {"student_id": student_id, "email": v.get("email", "")}
        if row.problem is not None:
            if row.aligned:
                values["school_code"] = self.school(v, None)[0]
            return Candidate("users.csv", row.line, values, (row.problem,), structural=True)
        if not _active(row):
            values["school_code"] = self.school(v, None)[0]
            return Candidate("users.csv", row.line, values, departs=True)

        problems: list[tuple[str, str]] = []
        origins: dict[str, str] = {}
        unchecked: frozenset[str] = frozenset()
        user_key = v.get("sourcedid", "").strip()
        if self.users.rows.get(user_key, True) is None:
            problems.append(("student_id", f"sourcedId {user_key!r} appears twice in users.csv"))
        ref, why = self.klass(user_key)
        if ref is None:
            problems.append(("class_name", why))
            unchecked = frozenset({"level"})  # it comes from the class
        else:
            values["class_name"] = ref.values.get("title", "")
            origins["class_name"] = f"classes.csv:{ref.line}"
            values["level"], origins["level"], why = self._level(ref, v)
            if why:
                problems.append(("level", why))
            email, origin, why = self.teacher_email(ref.values.get("sourcedid", "").strip())
            values["form_teacher_email"] = email
            origins["form_teacher_email"] = origin
            if why:
                problems.append(("form_teacher_email", why))
        class_school = ref.values.get("schoolsourcedid", "").strip() if ref else None
        values["school_code"], origins["school_code"], why = self.school(v, class_school)
        if why:
            problems.append(("school_code", why))
        values["given_name"] = v.get("givenname", "")
        values["family_name"] = v.get("familyname", "")
        enabled = v.get("enableduser", "").strip().lower()
        values["status"] = "left" if enabled == "false" else v.get("status", "")
        return Candidate(
            "users.csv", row.line, values, tuple(problems), origins=origins, unchecked=unchecked
        )

    @staticmethod
    def _level(ref: _Ref, user: Mapping[str, str]) -> tuple[str, str, str]:
        """(grade, origin, problem): the class's single grade, else the student's own one."""
        class_grades = _split(ref.values.get("grades"))
        if len(class_grades) == 1:
            return class_grades[0], f"classes.csv:{ref.line}", ""
        user_grades = _split(user.get("grades"))
        if len(user_grades) == 1:
            return user_grades[0], "", ""
        if class_grades:
            grades = ", ".join(class_grades)
            return (
                "",
                "",
                f"class {show(ref.values.get('title', ''))} has several grades ({grades})",
            )
        return "", "", "neither the class nor the student has a grade"


def read_oneroster(
    path: str | os.PathLike[str], *, allowed_domains: Sequence[str] | None = None
) -> Roster:
    """Read a OneRoster 1.1 CSV set (folder or zip) into one Roster of its students."""
    found = open_set(path)
    modes = manifest_modes(found.files.get("manifest"), found.shown)
    user_modes = modes.get("users", set())
    if user_modes == {"absent"}:
        raise RosterError(f"{found.shown}: manifest.csv says the users file is absent")
    # Delta if anything says so: wrongly treating a delta as bulk would disable everyone in it.
    is_delta = "delta" in user_modes
    reader = _Reader(found, is_delta)
    if "manifest" not in found.files:
        reader.warnings.append("manifest.csv: not found; the set is read as a bulk file")
    table = reader.tables["users"]
    candidates = [c for row in (table.rows if table else ()) if (c := reader.candidate(row))]
    return assemble(
        "oneroster",
        candidates,
        allowed_domains=allowed_domains,
        warnings=reader.warnings,
        extra_errors=reader.errors,
        is_delta=is_delta,
    )
