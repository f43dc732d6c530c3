"""The field rules every roster format shares (mimsdir.roster.validate)."""

from __future__ import annotations

import unicodedata

import pytest

from mimsdir.roster.records import RowError
from mimsdir.roster.validate import (
    Invalid,
    clean_class,
    clean_email,
    clean_form_teacher_email,
    clean_name,
    clean_school_code,
    clean_status,
    clean_student_id,
    normalise_level,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("S1234567A", "S1234567A"), ("  t0012-x.y_z ", "t0012-x.y_z"), ("a" * 32, "a" * 32)],
)
def test_student_id_kept_as_given(raw: str, expected: str) -> None:
    assert clean_student_id(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "   ", "a" * 33, "S 123", "S123,", "uid=x", "Sé1", "S1+2", "a/b"]
)
def test_student_id_rejected(raw: str) -> None:
    with pytest.raises(Invalid):
        clean_student_id(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Tan.AhKow@Students.EDU.sg", "tan.ahkow@students.edu.sg"),
        ("  o'neil+p4@x.sg ", "o'neil+p4@x.sg"),
        ("a@b-c.d.sg", "a@b-c.d.sg"),
    ],
)
def test_email_lower_cased(raw: str, expected: str) -> None:
    assert clean_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "x@",
        "@x.sg",
        "x",
        "x@sg",
        "x@@x.sg",
        "a b@x.sg",
        "a@x .sg",
        "a..b@x.sg",
        ".a@x.sg",
        "a@-x.sg",
        "a@x.sg.",
        "é@x.sg",
        "a@x.1",
        "a" * 65 + "@x.sg",
        "a@" + "b" * 250 + ".sg",
    ],
)
def test_email_rejected(raw: str) -> None:
    with pytest.raises(Invalid):
        clean_email(raw)


def test_email_message_names_value() -> None:
    with pytest.raises(Invalid) as info:
        clean_email("x@")
    assert str(info.value) == "'x@' is not a valid email address"


def test_email_allowed_domains() -> None:
    assert clean_email("a@S.edu.sg", ("s.edu.sg",)) == "a@s.edu.sg"
    assert clean_email("a@s.edu.sg", ("@S.EDU.SG",)) == "a@s.edu.sg"
    with pytest.raises(Invalid, match="allowed domain"):
        clean_email("a@gmail.com", ("s.edu.sg",))
    with pytest.raises(Invalid, match="allowed domain"):
        clean_email("a@sub.s.edu.sg", ("s.edu.sg",))  # exact domains only


@pytest.mark.parametrize(
    "raw",
    ["陈小明", "பிரியா", "Chloé", "O'Neil", "d/o Ramasamy", "binte Rahman", "Nur-Aisyah", "José"],
)
def test_names_keep_unicode_and_punctuation(raw: str) -> None:
    assert clean_name(f"  {raw} ", required=True) == raw


def test_names_are_nfc_normalised() -> None:
    assert clean_name("Chloe\u0301", required=True) == "Chlo\u00e9"


def test_name_rules() -> None:
    assert clean_name("", required=False) == ""
    assert clean_name("x" * 64, required=True) == "x" * 64
    with pytest.raises(Invalid, match="required"):
        clean_name("  ", required=True)
    with pytest.raises(Invalid, match="longer than 64"):
        clean_name("x" * 65, required=True)
    for bad in ("a\tb", "a\nb", "a\x00b", "a\u2028b", "a\x7fb"):
        with pytest.raises(Invalid, match="control character"):
            clean_name(bad, required=True)


def test_name_keeps_zero_width_joiner_inside() -> None:
    # ZWJ/ZWNJ shape Indic scripts; only edge junk from spreadsheets is trimmed
    assert clean_name("\u200bக\u200dஷ\ufeff", required=True) == "க\u200dஷ"


@pytest.mark.parametrize(
    ("raw", "expected"), [("abc", "ABC"), (" 7001 ", "7001"), ("a" * 16, "A" * 16)]
)
def test_school_code(raw: str, expected: str) -> None:
    assert clean_school_code(raw) == expected


@pytest.mark.parametrize("raw", ["", "a" * 17, "AB-C", "A B", "Ä1"])
def test_school_code_rejected(raw: str) -> None:
    with pytest.raises(Invalid):
        clean_school_code(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "P4",
        "p4",
        "Primary 4",
        "PRIMARY 4",
        "primary4",
        "PRI 4",
        "Pri 4",
        "pri. 4",
        "4",
        "04",
        " P 4 ",
    ],
)
def test_level_forms(raw: str) -> None:
    assert normalise_level(raw) == "P4"


@pytest.mark.parametrize("n", range(1, 7))
def test_every_primary_level(n: int) -> None:
    assert normalise_level(f"Primary {n}") == f"P{n}"


@pytest.mark.parametrize("raw", ["P0", "P7", "7", "Sec 1", "K2", "P44", "", "P4A", "four"])
def test_level_rejected_naming_value(raw: str) -> None:
    with pytest.raises(Invalid) as info:
        normalise_level(raw)
    assert (repr(raw) in str(info.value)) or (raw == "" and "required" in str(info.value))


def test_class_rules() -> None:
    assert clean_class("  4 Courage ") == "4 Courage"
    assert clean_class("5e") == "5e"
    assert clean_class("x" * 32) == "x" * 32
    with pytest.raises(Invalid, match="required"):
        clean_class("")
    with pytest.raises(Invalid, match="longer than 32"):
        clean_class("x" * 33)
    with pytest.raises(Invalid, match="control"):
        clean_class("4\rA")


def test_form_teacher_email() -> None:
    assert clean_form_teacher_email("") is None
    assert clean_form_teacher_email("  ") is None
    assert clean_form_teacher_email("Lim.Mei@MOE.edu.sg") == "lim.mei@moe.edu.sg"
    with pytest.raises(Invalid):
        clean_form_teacher_email("lim mei")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", "active"),
        ("Active", "active"),
        ("left", "left"),
        ("INACTIVE", "left"),
        ("withdrawn", "left"),
        (" Graduated ", "left"),
    ],
)
def test_status(raw: str, expected: str) -> None:
    assert clean_status(raw) == expected


@pytest.mark.parametrize("raw", ["deleted", "transferred", "yes"])
def test_status_rejected(raw: str) -> None:
    with pytest.raises(Invalid, match=repr(raw)):
        clean_status(raw)


def test_row_error_is_one_line() -> None:
    err = RowError("roster.csv", 12, "email", "'x@' is not a valid email address", "S1", "x@")
    assert str(err) == "roster.csv:12: email: 'x@' is not a valid email address"
    assert "\n" not in str(RowError("r.csv", 3, "csv", "bad\nthing", None, None))


def test_the_control_character_rule_is_exactly_unicode_categories_cc_cs_zl_zp() -> None:
    """The fast regex of _check_text refuses exactly what the category rule names, over every
    code point: a narrower regex would let a line separator into a name, a wider one would
    refuse a real name."""
    from mimsdir.roster import validate
    from mimsdir.roster.table import has_surrogates

    wrong = [cp for cp in range(0x110000)
             if bool(validate._CONTROL.match(chr(cp)))
             != (unicodedata.category(chr(cp)) in ("Cc", "Cs", "Zl", "Zp"))]
    assert wrong == []
    escaped = [cp for cp in range(0xD800, 0xE000)
               if has_surrogates(chr(cp)) != (0xDC80 <= cp <= 0xDCFF)]
    assert escaped == [] and not has_surrogates("Ng Wei Ling 黄") and has_surrogates("a\udcff")
