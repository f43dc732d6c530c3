"""Cards and slips: read the PDFs back with pypdf and check each student's tile."""

from __future__ import annotations

import io
import os
import re
import stat
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from fontTools.ttLib import TTFont
from fpdf import FPDF
from pypdf import PageObject, PdfReader
from pypdf.generic import ContentStream

from mimsdir import pdfs
from mimsdir.challenge import DEFAULT_QUESTIONS
from mimsdir.errors import MimsError
from mimsdir.pdfs import (
    CARD_LINES,
    SLIP_RULE,
    CardData,
    FontMissing,
    FontSet,
    SlipData,
    find_fonts,
    render_cards,
    render_slips,
    write_secret_file,
)

Q = [q.text for q in DEFAULT_QUESTIONS]
A4_W, A4_H = 595.28, 841.89  # points

CARDS = [
    CardData(
        "Tan Xiao Ming",
        "陈小明",
        "Rivervale Primary School",
        "P2 Kindness",
        "tan.xm@students.edu.sg",
        [(Q[0], "purple tiger"), (Q[3], "sunny mango"), (Q[6], "jolly lantern")],
    ),
    CardData(
        "Kavitha Ramasamy",
        "கவிதா ராமசாமி",
        "Rivervale Primary School",
        "P3 Courage",
        "kavitha.r@students.edu.sg",
        [(Q[1], "twinkly coastal"), (Q[2], "rapid dolphin"), (Q[9], "crumbly biscuit")],
    ),
    CardData(
        "Zoë Nur Aisyah binte Muhammad Hafiz Abdullah",
        "",
        "Rivervale Primary School",
        "P2 Kindness",
        "zoe_nur_aisyah_binte_muhammad_hafiz_2017@students.edu.sg",
        [(Q[4], "glitzy sampan"), (Q[5], "helpful penguin"), (Q[10], "bubbly whistle")],
    ),
    CardData(
        "Lee Jun Jie",
        "李俊杰",
        "",
        "P3 Respect",
        "lee.jj@students.edu.sg",
        [
            (Q[7], "sleepy koala"),
            (Q[8], "golden kettle"),
            (Q[11], "merry walrus"),
            (Q[0], "fluffy otter"),
        ],
    ),
    CardData(
        "Ali bin Hassan",
        "Ali bin Hassan",
        "Rivervale Primary School",
        "P3 Respect",
        "ali.h@students.edu.sg",
        [(Q[2], "frosty pancake")],
    ),
]

SLIPS = [
    SlipData(c.name, c.display_name, c.class_name, c.login_id, pw, c.school)
    for c, pw in zip(
        CARDS * 2,
        [
            "Mango4821",
            "Tiger7395",
            "Cat58274",
            "Kettle6666",
            "Otter2345",
            "Lantern9876",
            "Pebble3322",
            "Koala2828",
            "Yam4455888",
            "Dove7777",
        ],
        strict=True,
    )
]


def tiles(page: PageObject, cols: int, rows: int) -> dict[int, list[str]]:
    """Text fragments of a page, grouped by the tile (slot) they are drawn in."""
    found: dict[int, list[str]] = defaultdict(list)

    def visit(text: str, cm: list[float], tm: list[float], *_: object) -> None:
        if not text.strip():
            return
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        col = min(int(x // (A4_W / cols)), cols - 1)
        row = min(int((A4_H - y) // (A4_H / rows)), rows - 1)
        found[row * cols + col].append(text)

    page.extract_text(visitor_text=visit)
    return found


def tile_texts(pdf: bytes, cols: int, rows: int) -> list[str]:
    """One string per tile in reading order over all pages (fragments joined with no space)."""
    reader = PdfReader(io.BytesIO(pdf))
    out: list[str] = []
    for page in reader.pages:
        groups = tiles(page, cols, rows)
        out += ["".join(groups[slot]) for slot in sorted(groups)]
    return out


@pytest.fixture(scope="module")
def cards_pdf() -> bytes:
    return render_cards(CARDS)


@pytest.fixture(scope="module")
def slips_pdf() -> bytes:
    return render_slips(SLIPS)


# -- cards ------------------------------------------------------------------------------------


def test_cards_are_four_per_a4_page(cards_pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(cards_pdf))
    assert len(reader.pages) == 2
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)


def test_each_card_holds_its_own_student_and_answers(cards_pdf: bytes) -> None:
    texts = tile_texts(cards_pdf, 2, 2)
    assert len(texts) == len(CARDS)
    for card, text in zip(CARDS, texts, strict=True):
        assert card.login_id in text
        assert card.name in text
        assert f"Class {card.class_name}" in text
        for question, answer in card.questions:
            assert answer in text
            assert question.replace(" ", "") in text.replace(" ", "")
        for other in CARDS:
            if other is not card:
                for _, answer in other.questions:
                    assert answer not in text, f"{answer!r} leaked onto {card.login_id}'s card"
                assert other.login_id not in text


def test_cards_explain_themselves_to_a_child(cards_pdf: bytes) -> None:
    for text in tile_texts(cards_pdf, 2, 2):
        flat = text.replace(" ", "")
        for line in CARD_LINES:
            assert line.replace(" ", "") in flat
        assert "Mycard" not in flat  # the title is there as given
        assert "MyMIMScard" in flat


def test_cards_render_chinese_and_tamil_names_with_the_right_fonts(cards_pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(cards_pdf))
    text = reader.pages[0].extract_text()
    assert "陈小明" in text
    assert "கவிதா" in text
    fonts = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            fonts.add(str(font.get_object()["/BaseFont"]))
    assert any("NotoSansTamil" in f for f in fonts)
    assert any("DroidSansFallback" in f for f in fonts)
    assert any("NotoSansMono" in f for f in fonts)


def test_card_metadata_has_no_student_data(cards_pdf: bytes) -> None:
    meta = PdfReader(io.BytesIO(cards_pdf)).metadata
    assert meta is not None
    values = " ".join(str(v) for v in meta.values())
    assert "My MIMS card" in values
    for card in CARDS:
        assert card.login_id not in values
        assert card.name not in values


def test_custom_title() -> None:
    pdf = render_cards(CARDS[:1], title="Kartu MIMS")
    assert "Kartu MIMS" in tile_texts(pdf, 2, 2)[0]


def test_a_card_with_too_many_questions_is_refused() -> None:
    crowded = CardData("A", "", "S", "P2 A", "a@x.sg", [(q, "purple tiger") for q in Q[:9]])
    with pytest.raises(ValueError, match="does not fit"):
        render_cards([crowded])


def test_a_card_with_five_questions_fits() -> None:
    five = CardData(
        "Five", "", "S", "P2 A", "five@x.sg", [(Q[i], f"answer{i} words") for i in range(5)]
    )
    text = tile_texts(render_cards([five]), 2, 2)[0]
    assert all(f"answer{i} words" in text for i in range(5))


def test_no_cards_is_an_error() -> None:
    with pytest.raises(ValueError):
        render_cards([])


def test_card_repr_hides_answers() -> None:
    assert "purple tiger" not in repr(CARDS[0])
    assert "tan.xm@students.edu.sg" in repr(CARDS[0])


# -- slips ------------------------------------------------------------------------------------


def test_slips_are_eight_per_a4_page(slips_pdf: bytes) -> None:
    assert len(PdfReader(io.BytesIO(slips_pdf)).pages) == 2


def test_each_slip_holds_its_own_login_and_password(slips_pdf: bytes) -> None:
    texts = tile_texts(slips_pdf, 2, 4)
    assert len(texts) == len(SLIPS)
    for slip, text in zip(SLIPS, texts, strict=True):
        assert slip.login_id in text
        assert slip.password in text
        assert slip.name in text
        assert f"Class {slip.class_name}" in text
        assert SLIP_RULE.replace(" ", "") in text.replace(" ", "")
        for other in SLIPS:
            if other.password != slip.password:
                assert other.password not in text


def test_slip_password_is_monospaced(slips_pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(slips_pdf))
    seen: list[tuple[str, str]] = []

    def visit(text: str, _cm: object, _tm: object, font: object, _size: object) -> None:
        if text.strip() and isinstance(font, dict):
            seen.append((text.strip(), str(font.get("/BaseFont"))))

    reader.pages[0].extract_text(visitor_text=visit)
    fonts = {font for text, font in seen if text == SLIPS[0].password}
    assert fonts and all("NotoSansMono" in f for f in fonts)


def test_slip_refuses_an_unprintable_password() -> None:
    bad = SlipData("A", "", "P2 A", "a@x.sg", "abc\ndef", "S")
    with pytest.raises(ValueError) as info:
        render_slips([bad])
    assert "abc" not in str(info.value)


def test_no_slips_is_an_error() -> None:
    with pytest.raises(ValueError):
        render_slips([])


def test_slip_repr_hides_the_password() -> None:
    assert SLIPS[0].password not in repr(SLIPS[0])


# -- fonts ------------------------------------------------------------------------------------


def test_find_fonts_finds_every_font() -> None:
    fonts = find_fonts()
    assert {
        "NotoSans-Regular.ttf",
        "DroidSansFallbackFull.ttf",
        "NotoSansTamil-Regular.ttf",
    } <= fonts.keys()
    assert all(p.is_file() for p in fonts.values())


def test_a_missing_font_names_the_debian_package(tmp_path: Path) -> None:
    with pytest.raises(FontMissing) as info:
        render_cards(CARDS[:1], font_dirs=[tmp_path])
    message = str(info.value)
    assert "\n" not in message
    assert "NotoSans-Regular.ttf" in message
    assert "apt-get install fonts-noto-core" in message
    assert isinstance(info.value, MimsError)


def test_a_missing_fallback_font_names_its_package(tmp_path: Path) -> None:
    for name, path in find_fonts().items():
        if name != "DroidSansFallbackFull.ttf":
            (tmp_path / name).symlink_to(path)
    with pytest.raises(FontMissing, match="fonts-droid-fallback"):
        find_fonts([tmp_path])


# -- write_secret_file ------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secret_file_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    target = tmp_path / "slips.pdf"
    old = os.umask(0)
    try:
        write_secret_file(target, b"%PDF-1.7 test")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"%PDF-1.7 test"
    assert mode(target) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slips.pdf"]


def test_secret_file_replaces_an_existing_world_readable_file(tmp_path: Path) -> None:
    target = tmp_path / "cards.pdf"
    target.write_bytes(b"old")
    target.chmod(0o644)
    write_secret_file(str(target), b"new")
    assert target.read_bytes() == b"new"
    assert mode(target) == 0o600


def test_secret_file_failure_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "cards.pdf"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_secret_file(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cards.pdf"]


def test_secret_file_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_secret_file(tmp_path / "nope" / "x.pdf", b"x")


def test_rendered_pdf_written_as_secret_reads_back(tmp_path: Path, slips_pdf: bytes) -> None:
    target = tmp_path / "slips.pdf"
    write_secret_file(target, slips_pdf)
    assert mode(target) == 0o600
    assert SLIPS[0].password in PdfReader(target).pages[0].extract_text()


# -- slips made faster, the same to see -------------------------------------------------------

HARD_SLIPS = [
    *SLIPS,
    SlipData("லக்ஷ்மி Ravi", "", "P1 A", "lakshmi.r@students.edu.sg", "Abc12345", "S"),
    SlipData("Zoë Nur Aisyah binte Muhammad Hafiz Abdullah Rahman Ismail Yusof Ibrahim", "",
             "P2 Kindness", "zoe.nur@students.edu.sg", "Mango4821",
             "Rivervale Primary School with a Name Too Long for One Line"),
    SlipData("A" * 80, "", "P3 " + "B" * 60,
             "averyveryveryveryveryverylonglocalpartwithoutabreak@students.edu.sg",
             "Q" * 40, "S"),
]


def visible(pdf: bytes) -> list[object]:
    """What a PDF shows: every drawing operator with its operands (the glyph codes of text
    masked: fpdf2 numbers glyphs in order of first use), every text fragment with its place,
    font and size, and each font's width of every character it embeds."""
    reader = PdfReader(io.BytesIO(pdf))
    out: list[object] = []
    for page in reader.pages:
        fonts = page["/Resources"]["/Font"]
        names = {k: str(v.get_object()["/BaseFont"]).split("+")[-1] for k, v in fonts.items()}
        for operands, op in ContentStream(page.get_contents(), reader).operations:
            if op in (b"Tj", b"TJ"):
                out.append((op, "text"))
            elif op == b"Tf":
                out.append((op, names[operands[0]], float(operands[1])))
            else:
                out.append((op, [str(o) for o in operands]))

        def visit(text: str, cm: list[float], tm: list[float], font: object, size: float
                  ) -> None:
            if text:
                name = str(font.get("/BaseFont")).split("+")[-1] if isinstance(font, dict) else ""
                out.append((text, [round(v, 3) for v in (*cm, *tm)], name, size))

        page.extract_text(visitor_text=visit)
        for font in fonts.values():
            font = font.get_object()
            cid = font["/DescendantFonts"][0].get_object()
            unicode_of = {int(code, 16): bytes.fromhex(text).decode("utf-16-be")
                          for code, text in re.findall(
                              r"<([0-9A-F]+)> <([0-9A-F]+)>",
                              font["/ToUnicode"].get_object().get_data().decode("latin-1"))}
            widths, w, i = {}, cid.get("/W", []), 0
            while i < len(w):  # [first [w1 w2 ...]] or [first last w]
                if isinstance(w[i + 1], list):
                    run, i = list(enumerate(w[i + 1], start=int(w[i]))), i + 2
                else:
                    run = [(c, w[i + 2]) for c in range(int(w[i]), int(w[i + 1]) + 1)]
                    i += 3
                for code, width in run:
                    widths[unicode_of.get(code, str(code))] = float(width)
            out.append((str(font["/BaseFont"]).split("+")[-1], sorted(widths.items())))
            out.append(sorted(outlines(cid, unicode_of).items()))
    return out


def outlines(cid: Any, unicode_of: dict[int, str]) -> dict[str, object]:
    """The outline of the glyph each code of an embedded font draws, by the text it stands for
    (fpdf2 maps codes to glyphs with /CIDToGIDMap)."""
    program = TTFont(io.BytesIO(cid["/FontDescriptor"].get_object()["/FontFile2"].get_data()))
    glyf, order = program["glyf"], program.getGlyphOrder()
    gids = cid["/CIDToGIDMap"].get_object().get_data()
    shapes: dict[str, object] = {}
    for code, text in unicode_of.items():
        glyph = glyf[order[int.from_bytes(gids[2 * code:2 * code + 2], "big")]]
        coords, ends, flags = glyph.getCoordinates(glyf)
        shapes[text] = (list(coords), list(ends), bytes(flags))
    return shapes


@pytest.fixture(scope="module")
def hard_slips_pdf() -> bytes:
    return render_slips(HARD_SLIPS)


def test_slips_drawn_a_cell_a_line_look_as_multi_cell_drew_them(
    hard_slips_pdf: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With no text "fitting", every text goes through multi_cell as before the fast path.
    monkeypatch.setattr(pdfs, "_FITS_MARGIN", float("inf"))
    assert visible(render_slips(HARD_SLIPS)) == visible(hard_slips_pdf)


def test_slips_do_not_use_multi_cell_to_draw_a_line_that_fits(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[str] = []
    depth = [0]  # a dry run calls multi_cell again inside, with writing switched off
    multi_cell = FPDF.multi_cell

    def spy(self: FPDF, *args: Any, **kwargs: Any) -> Any:
        if not depth[0] and not kwargs.get("dry_run"):
            drawn.append(str(kwargs.get("text", args[2] if len(args) > 2 else "")))
        depth[0] += 1
        try:
            return multi_cell(self, *args, **kwargs)
        finally:
            depth[0] -= 1

    monkeypatch.setattr(FPDF, "multi_cell", spy)
    render_slips(SLIPS)
    assert drawn == []


def test_a_long_name_wraps_inside_its_slip(hard_slips_pdf: bytes) -> None:
    texts = tile_texts(hard_slips_pdf, 2, 4)
    long_name = HARD_SLIPS[-2].name
    assert long_name.replace(" ", "") in texts[-2].replace(" ", "")
    assert HARD_SLIPS[-1].password in texts[-1]
    assert "A" * 80 in texts[-1]


def test_tamil_is_still_shaped(hard_slips_pdf: bytes) -> None:
    # HarfBuzz forms the conjunct க்ஷ as one glyph: unshaped text has no such glyph.
    ligatures = [
        text
        for page in PdfReader(io.BytesIO(hard_slips_pdf)).pages
        for font in page["/Resources"]["/Font"].values()
        if "Tamil" in str(font.get_object()["/BaseFont"])
        for text in re.findall(r"<[0-9A-F]+> <([0-9A-F]{12,})>", font.get_object()[
            "/ToUnicode"].get_object().get_data().decode("latin-1"))
    ]
    assert "க்ஷ்" in [bytes.fromhex(t).decode("utf-16-be") for t in ligatures]


def slip_texts(slips: list[SlipData]) -> list[str]:
    return [v for s in slips for v in (s.name, s.display_name, s.school, s.class_name,
                                       s.login_id, s.password)]


def test_slips_with_a_font_set_show_the_same(hard_slips_pdf: bytes) -> None:
    with FontSet(slip_texts(HARD_SLIPS)) as fonts:
        assert fonts.paths_for(slip_texts(HARD_SLIPS)) is not None
        pdf = render_slips(HARD_SLIPS, fonts=fonts)
        smaller = {n: p.stat().st_size for n, p in fonts.paths.items()}
    whole = find_fonts()
    assert all(size < whole[n].stat().st_size for n, size in smaller.items())
    assert visible(pdf) == visible(hard_slips_pdf)


def test_a_font_set_without_a_character_falls_back_to_the_whole_fonts() -> None:
    latin = [s for s in SLIPS if s.display_name.isascii()]
    with FontSet(slip_texts(latin)) as fonts:
        assert fonts.paths_for(["陈小明"]) is None
        pdf = render_slips(SLIPS, fonts=fonts)
    assert visible(pdf) == visible(render_slips(SLIPS))
    assert "陈小明" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


def test_a_font_set_removes_its_files() -> None:
    fonts = FontSet(["陈小明", "கவிதா"])
    directory = fonts.directory
    assert directory is not None and mode(directory) == 0o700
    assert {"DroidSansFallbackFull.ttf", "NotoSansTamil-Regular.ttf"} <= set(fonts.paths)
    fonts.close()
    assert not directory.exists()
    assert fonts.paths_for(["a"]) is None


def test_font_sets_of_one_process_each_hold_their_own_characters() -> None:
    """Cuts are remembered for the process (`pdfs._cut`): a second run's FontSet with other
    characters must get fonts cut for those, never the first run's."""
    from fontTools.ttLib import TTFont

    with FontSet(["Tan Xiao Ming"]) as first, \
            TTFont(first.paths["NotoSans-Regular.ttf"]) as font:
        assert ord("Ł") not in font.getBestCmap()
    with FontSet(["Zoë Łukasz"]) as second:
        for name in ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf"):
            with TTFont(second.paths[name]) as font:
                assert {ord("ë"), ord("Ł")} <= set(font.getBestCmap()), name
    with FontSet(["Tan Xiao Ming"]) as third:  # the first's cut again: the same bytes
        assert (third.paths["NotoSans-Regular.ttf"].read_bytes()
                == _cut_bytes(["Tan Xiao Ming"], "NotoSans-Regular.ttf"))


def _cut_bytes(texts: list[str], name: str) -> bytes:
    with FontSet(texts) as fonts:
        return fonts.paths[name].read_bytes()


@pytest.mark.parametrize("tamil", [False, True])
def test_remembered_widths_are_fpdf2s_own(tamil: bool) -> None:
    # A plain text's width is summed without fpdf2's parsing: it must be the very same float,
    # or a text at the edge of its column would break (or shrink) differently.
    texts = ["Tan Xiao Ming", "Zoë Nur Aisyah", "陈小明 Li", "a{nb}b", "", "x" * 300,
             SLIP_RULE, "zoe_nur_aisyah_binte_muhammad_hafiz_2017@students.edu.sg"]
    pdf = pdfs._new_pdf("t", pdfs.FONT_DIRS, ["கவிதா" if tamil else "陈"])
    try:
        pdf.add_page()
        for family, style in (("notosans", ""), ("notosans", "B"), ("notosansmono", "B")):
            for size in (7.5, 11.0, 13.37):
                pdf.set_font(family, style, size)
                for text in texts:
                    assert pdf.width(text) == pdf.get_string_width(text), (family, size, text)
        plain = pdf._plain_width("Tan Xiao Ming")
        assert (plain is None) == tamil  # shaping documents always ask fpdf2
    finally:
        pdfs._close_fonts(pdf)


def test_a_font_set_removes_the_fonts_of_a_killed_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid no process has now
    orphan = tmp_path / f"mimsdir-fonts-{gone.pid}-abc"
    alive = tmp_path / f"mimsdir-fonts-{os.getpid()}-def"
    other = tmp_path / "mimsdir-fonts-notapid-x"
    for d in (orphan, alive, other):
        d.mkdir()
        (d / "NotoSans-Regular.ttf").write_bytes(b"glyphs")
    with FontSet(["Tan"]) as fonts:
        assert fonts.directory is not None
        assert fonts.directory.name.startswith(f"mimsdir-fonts-{os.getpid()}-")
    assert not orphan.exists()
    assert alive.exists() and other.exists()


def test_the_cli_loads_no_pdf_code_until_a_pdf_is_drawn() -> None:
    """fpdf2, fontTools and Pillow cost a nightly sync 30 MB and a third of a second: only a
    command that draws a card or a slip imports them (mimsdir/secret_docs.py)."""
    import subprocess
    import sys

    code = ("import sys; import mimsdir.cli, mimsdir.sync.run, mimsdir.staff.cards, "
            "mimsdir.staff.credentials; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'fpdf', 'fontTools', 'PIL'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
