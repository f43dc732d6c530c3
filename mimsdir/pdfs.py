"""Challenge cards and password slips as PDF (fpdf2), and writing them safely to disk.

Layouts (A4 portrait paper, which every school printer has):

- Cards (`render_cards`): four cards per A4 sheet, 2 x 2, each exactly A6 (105 x 148.5 mm),
  the size of a student handbook page, with dashed cut lines between them. Order is left to
  right, then top to bottom; the last sheet may hold fewer cards.
- Slips (`render_slips`): eight slips per A4 sheet, 2 columns x 4 rows, each 105 x 74.25 mm
  (A7), with dashed cut lines.

Students' names come in several scripts, so text uses Noto Sans (Latin, with accents) and falls
back to Noto Sans Tamil and Droid Sans Fallback (Chinese) glyph by glyph; Tamil is shaped with
HarfBuzz (the `uharfbuzz` package). Login IDs and passwords are set in Noto Sans Mono, where
I, l and 1 and O and 0 look different. Fonts come from Debian packages, found under
/usr/share/fonts at run time:

    apt-get install fonts-noto-core fonts-noto-mono fonts-droid-fallback

Cards and slips carry secrets (design-notes §8): they are returned as bytes and written only by
`write_secret_file` (mode 0600 from creation). No student data goes into the PDF's metadata.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import Align, MethodReturnValue, WrapMode, XPos, YPos
from fpdf.fonts import TTFFont

from mimsdir.secret_docs import CardData, FontMissing, SlipData, write_secret_file

__all__ = [
    "FONT_DIRS",
    "CardData",
    "FontMissing",
    "FontSet",
    "SlipData",
    "find_fonts",
    "render_cards",
    "render_slips",
    "write_secret_file",
]


# ---------------------------------------------------------------------------------------------
# Fonts

FONT_DIRS: tuple[Path, ...] = (Path("/usr/share/fonts"),)

# (fpdf family, style, file name, Debian package)
_FONT_FILES: tuple[tuple[str, str, str, str], ...] = (
    ("notosans", "", "NotoSans-Regular.ttf", "fonts-noto-core"),
    ("notosans", "B", "NotoSans-Bold.ttf", "fonts-noto-core"),
    ("notosanstamil", "", "NotoSansTamil-Regular.ttf", "fonts-noto-core"),
    ("notosanstamil", "B", "NotoSansTamil-Bold.ttf", "fonts-noto-core"),
    ("droidsansfallback", "", "DroidSansFallbackFull.ttf", "fonts-droid-fallback"),
    ("notosansmono", "", "NotoSansMono-Regular.ttf", "fonts-noto-mono"),
    ("notosansmono", "B", "NotoSansMono-Bold.ttf", "fonts-noto-mono"),
)
_SANS = "notosans"
_MONO = "notosansmono"
_FALLBACKS = ("notosans", "notosanstamil", "droidsansfallback")

_font_cache: dict[tuple[Path, ...], dict[str, Path]] = {}


def find_fonts(dirs: Sequence[Path | str] = FONT_DIRS) -> dict[str, Path]:
    """Map each needed font file name to its path under `dirs` (searched recursively).

    Raises FontMissing, with a one-line message naming the Debian package, for the first font
    that is not found.
    """
    key = tuple(Path(d) for d in dirs)
    cached = _font_cache.get(key)
    if cached is not None and all(p.is_file() for p in cached.values()):
        return cached
    wanted = {name for _, _, name, _ in _FONT_FILES}
    found: dict[str, Path] = {}
    for base in key:
        if not base.is_dir():
            continue
        for root, _dirs, files in os.walk(base):
            for name in sorted(wanted.intersection(files) - found.keys()):
                found[name] = Path(root) / name
    for _, _, name, package in _FONT_FILES:
        if name not in found:
            where = ", ".join(str(d) for d in key)
            raise FontMissing(
                f"font {name} not found under {where}: "
                f"install the Debian package {package} (apt-get install {package})"
            )
    _font_cache[key] = found
    return found


def _scripts(texts: Iterable[object]) -> set[str]:
    """Which fallback fonts the text needs: loading and subsetting a CJK font costs most of a
    PDF's time, so a class of Latin names should not pay for it."""
    needed: set[str] = set()
    for text in texts:
        for ch in str(text or ""):
            cp = ord(ch)
            if cp < 0x0B80:
                continue
            if cp <= 0x0BFF:
                needed.add("notosanstamil")
            elif cp >= 0x2E80:
                needed.add("droidsansfallback")
    return needed


# Characters every cut-down font keeps whatever the texts: the fixed wording of cards and slips
# is plain ASCII, and so are the login IDs and passwords; U+0000 keeps the null glyph that
# fpdf2 embeds in every font with the width the whole font gives it.
_ASCII = frozenset([0, *range(0x20, 0x7F)])


def _codepoints(texts: Iterable[object]) -> frozenset[int]:
    return frozenset(ord(ch) for text in texts for ch in str(text or ""))


class FontSet:
    """The fonts of many PDFs (a sync run's slips), cut down once to the characters they print.

    Why: fpdf2 parses every TrueType font again for each PDF, and DroidSansFallbackFull (4 MB,
    for Chinese names) takes about 0.2 s to parse and again to subset: a run writes a PDF a
    class, and with whole fonts the fonts cost more than the slips. Cut down here, once, to
    the characters of all the run's texts (and printable ASCII), each font is a few KiB that
    fpdf2 parses and subsets in a millisecond or two. The cut keeps every glyph those
    characters need with its metrics, and the OpenType layout tables (GSUB/GPOS, all
    features), so HarfBuzz shapes Tamil, and fpdf2 picks fallback fonts, exactly as with the
    whole fonts: the PDFs say and show the same (tests/test_pdfs.py compares them).

    The files are in a private temporary directory (mode 0700, named after the process) and
    are removed by `close()` (or leaving the `with` block); those of a process that was killed
    are removed by the next FontSet, as they hold glyphs of its students' names. A PDF with a
    character the set was not made for falls back to the whole fonts (`paths_for`), so a
    FontSet can make a PDF slower, never wrong.
    """

    def __init__(self, texts: Iterable[object], font_dirs: Sequence[Path | str] = FONT_DIRS
                 ) -> None:
        self.font_dirs = tuple(Path(d) for d in font_dirs)
        whole = find_fonts(self.font_dirs)
        self.codepoints = _codepoints(texts) | _ASCII
        needed = _scripts(chr(c) for c in self.codepoints)
        _remove_orphaned_fonts()
        self.directory: Path | None = Path(
            tempfile.mkdtemp(prefix=f"{_FONTS_PREFIX}{os.getpid()}-"))
        self.paths: dict[str, Path] = {}
        try:
            for family, _style, name, _ in _FONT_FILES:
                if family in _FALLBACKS[1:] and family not in needed:
                    continue
                target = self.directory / name
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(_cut(whole[name], _stamp(whole[name]), self.codepoints))
                self.paths[name] = target
        except BaseException:
            self.close()
            raise

    def paths_for(self, texts: Iterable[object]) -> dict[str, Path] | None:
        """The cut-down fonts if they hold every character of `texts`, else None."""
        if self.directory is None or not _codepoints(texts) <= self.codepoints:
            return None
        return self.paths

    def close(self) -> None:
        """Remove the cut-down fonts (they hold the glyphs of the run's names)."""
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self) -> FontSet:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _stamp(path: Path) -> tuple[int, int, int]:
    """A font file's identity for `_cut`'s memo: a package upgrade changes it."""
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=16)
def _cut(path: Path, stamp: tuple[int, int, int], codepoints: frozenset[int]) -> bytes:
    """One font cut down to `codepoints` (with their layout), as the bytes of a TrueType file.
    ``stamp`` (`_stamp`) is only part of the memo's key: another file is another cut.

    Remembered for the life of the process: a sync makes one FontSet, but a process that makes
    many (the test suite runs hundreds of syncs in one interpreter) would otherwise parse the
    whole Noto fonts again each time, which was a quarter of the suite's Python time. The memo
    lives in memory only, like the run's texts it was made from; the files on disk are still
    removed with their FontSet.
    """
    from fontTools import subset as ftsubset
    from fontTools.ttLib import TTFont

    options = ftsubset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.recommended_glyphs = True
    options.glyph_names = True
    out = io.BytesIO()
    with TTFont(path, recalcBBoxes=False, recalcTimestamp=False) as font:
        subsetter = ftsubset.Subsetter(options)
        subsetter.populate(unicodes=codepoints)
        subsetter.subset(font)
        font.save(out)
    return out.getvalue()


_FONTS_PREFIX = "mimsdir-fonts-"


def _remove_orphaned_fonts() -> None:
    """Remove the cut-down fonts of FontSets whose process is gone (a sync killed mid-run)."""
    with contextlib.suppress(OSError):
        for entry in Path(tempfile.gettempdir()).glob(f"{_FONTS_PREFIX}*-*"):
            pid = entry.name[len(_FONTS_PREFIX):].split("-", 1)[0]
            if not pid.isdigit() or entry.is_symlink() or not entry.is_dir():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(entry, ignore_errors=True)
            except OSError:  # alive, another user's: not ours to remove
                continue


class _PDF(FPDF):
    """An FPDF that remembers string widths: the slips of a class measure the same texts (title,
    school, the rule lines, labels) again for every slip and every trial scale, and measuring
    (fallback fonts and bidi, char by char) is most of fpdf2's time when text is only placed."""

    def __init__(self) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self._widths: dict[tuple[str, str, float, str], float] = {}
        self._lines: dict[tuple[str, str, float, float, WrapMode, str], list[str]] = {}

    def width(self, text: str) -> float:
        """`get_string_width(text)` in the current font, remembered for this document."""
        key = (self.font_family, self.font_style, self.font_size_pt, text)
        width = self._widths.get(key)
        if width is None:
            plain = self._plain_width(text)
            width = self._widths[key] = self.get_string_width(text) if plain is None else plain
        return width

    def _plain_width(self, text: str) -> float | None:
        """get_string_width's own sum, without its bidi and fallback-font parsing, for text it
        would keep in one piece: no shaping, every character in the current font, no "{nb}"
        alias; else None. The same arithmetic in the same order: the same float."""
        font = self.current_font
        if (self.text_shaping or not isinstance(font, TTFFont) or font.is_symbol
                or self.char_spacing or self.font_stretching != 100 or "{" in text
                or not all(ord(ch) in font.cmap for ch in text)):
            return None
        return sum(font.cw[ord(ch)] for ch in text) * self.font_size_pt * 0.001 / self.k

    def lines(self, text: str, width: float, wrapmode: WrapMode) -> list[str]:
        """The lines multi_cell breaks `text` into at `width`, remembered for this document:
        the slips' rule line wraps on every slip, the same way each time."""
        key = (self.font_family, self.font_style, self.font_size_pt, width, wrapmode, text)
        lines = self._lines.get(key)
        if lines is None:
            broken = self.multi_cell(width, text=text, wrapmode=wrapmode, dry_run=True,
                                     output=MethodReturnValue.LINES)
            assert isinstance(broken, list)  # LINES alone: the list of lines
            lines = self._lines[key] = [str(one) for one in broken]
        return lines


def _new_pdf(title: str, font_dirs: Sequence[Path | str], texts: Iterable[object] = (),
             font_set: FontSet | None = None, printed: Iterable[object] = ()) -> _PDF:
    """A document with the fonts `texts` need (`printed`: more text, in the fonts' own script,
    for which a FontSet must have glyphs too)."""
    texts = list(texts)
    fonts = find_fonts(font_dirs)
    cut = font_set.paths_for([*texts, *printed]) if font_set is not None else None
    needed = _scripts(texts)
    try:
        import uharfbuzz  # noqa: F401  (fpdf2's text shaping needs it for Tamil)
    except ImportError:
        raise FontMissing(
            "the Python package uharfbuzz is needed to shape Tamil text: "
            "pip install uharfbuzz==0.57.0"
        ) from None
    pdf = _PDF()
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.c_margin = 0
    try:
        for family, style, name, _ in _FONT_FILES:
            if family in _FALLBACKS[1:] and family not in needed:
                continue
            pdf.add_font(family, style, str((cut or fonts)[name]))
            if cut:
                # A cut-down font keeps the whole font's glyphs byte for byte, bounding boxes
                # and all: fpdf2's subset need not decode and re-encode every glyph to compute
                # them again (a third of the time of writing the fonts into each PDF).
                added = pdf.fonts[f"{family}{style}"]
                assert isinstance(added, TTFFont)
                added.ttfont.recalcBBoxes = False
    except BaseException:
        _close_fonts(pdf)
        raise
    pdf.set_fallback_fonts([f for f in _FALLBACKS if f in pdf.fonts or f == _SANS],
                           exact_match=False)
    # Shaping (harfbuzz) places Tamil vowel signs; Latin and CJK text does not need it.
    pdf.set_text_shaping("notosanstamil" in needed)
    pdf.set_title(title)
    pdf.set_creator("mimsdir")
    pdf.set_lang("en")
    return pdf


def _close_fonts(pdf: _PDF) -> None:
    """fpdf2 opens font files lazily (fontTools) and never closes them; close them here."""
    for font in pdf.fonts.values():
        ttfont = getattr(font, "ttfont", None)
        if ttfont is not None:
            ttfont.close()


def _output(pdf: _PDF, draw: Callable[[_PDF], None]) -> bytes:
    try:
        draw(pdf)
        return bytes(pdf.output())
    finally:
        _close_fonts(pdf)


# ---------------------------------------------------------------------------------------------
# Drawing helpers

_PT = 25.4 / 72  # mm per point
_LINE = 1.3  # line height as a multiple of the font size
_BLACK = (0, 0, 0)
_GREY = (95, 95, 95)
_LIGHT = (170, 170, 170)
_TINT = (238, 242, 250)
_A4_W, _A4_H = 210.0, 297.0
# A text this much (mm) narrower than its column is drawn as one line without multi_cell's line
# breaking; nearer the edge multi_cell decides, so a rounding difference cannot change a break.
_FITS_MARGIN = 1e-6


def _clean(text: object) -> str:
    """One line of printable text: control characters and line breaks become spaces."""
    s = "" if text is None else str(text)
    return " ".join("".join(ch if ch.isprintable() else " " for ch in s).split())


class _Flow:
    """Places text top-down in a column; with draw=False it only measures."""

    def __init__(self, pdf: _PDF, x: float, y: float, w: float, draw: bool) -> None:
        self.pdf, self.x, self.y, self.w, self.draw = pdf, x, y, w, draw

    def text(
        self,
        text: str,
        *,
        size: float,
        family: str = _SANS,
        style: str = "",
        color: tuple[int, int, int] = _BLACK,
        fit: float | None = None,
        align: Align = Align.L,
        after: float = 0.0,
        w: float | None = None,
        x: float | None = None,
    ) -> float:
        """Write `text`; shrink it down to `fit` pt to keep it on one line, else wrap.

        Returns the height used (mm), and moves down by it plus `after`.
        """
        pdf = self.pdf
        width = self.w if w is None else w
        pdf.set_font(family, style, size)
        if fit is not None:
            while size > fit and pdf.width(text) > width:
                size = max(fit, size - 0.5)
                pdf.set_font(family, style, size)
        pdf.set_text_color(*color)
        pdf.set_xy(self.x if x is None else x, self.y)
        line = size * _PT * _LINE
        wrapmode = WrapMode.WORD if " " in text else WrapMode.CHAR
        lines = [text] if pdf.width(text) <= width - _FITS_MARGIN else (
            pdf.lines(text, width, wrapmode) if align != Align.J else [])
        if lines and all(pdf.width(one) <= width - _FITS_MARGIN for one in lines):
            # What multi_cell would draw, a cell a line, without its line breaking (which
            # measures the text again char by char, every time); measuring draws nothing.
            if self.draw:
                for one in lines:
                    pdf.cell(width, line, one, align=align, new_x=XPos.LEFT, new_y=YPos.NEXT)
            self.y += line * len(lines) + after
            return line * len(lines)
        height = pdf.multi_cell(
            width,
            line,
            text,
            align=align,
            wrapmode=wrapmode,
            dry_run=not self.draw,
            output=MethodReturnValue.HEIGHT,
            new_x=XPos.LEFT,
            new_y=YPos.NEXT,
        )
        self.y += float(height) + after  # type: ignore[arg-type]  # HEIGHT: a float
        return float(height)  # type: ignore[arg-type]

    def login(
        self,
        text: str,
        *,
        size: float,
        min_size: float = 8.0,
        after: float = 0.0,
        w: float | None = None,
        x: float | None = None,
    ) -> float:
        """A login ID in the monospaced font: one line if it fits at `min_size` or more, else
        split before the "@" so a child never sees a break in the middle of a word."""
        pdf = self.pdf
        width = self.w if w is None else w
        pdf.set_font(_MONO, "B", min_size)
        local, at, domain = text.partition("@")
        if pdf.width(text) <= width or not at:
            return self.text(
                text, size=size, family=_MONO, style="B", fit=min_size, w=w, x=x, after=after
            )
        top = self.y
        self.text(local, size=size, family=_MONO, style="B", fit=min_size, w=w, x=x)
        self.text(at + domain, size=size, family=_MONO, style="B", fit=min_size, w=w, x=x)
        self.y += after
        return self.y - top - after

    def skip(self, mm: float) -> None:
        self.y += mm


def _cut_lines(pdf: _PDF, cols: int, rows: int) -> None:
    pdf.set_draw_color(*_LIGHT)
    pdf.set_line_width(0.2)
    pdf.set_dash_pattern(dash=2, gap=2)
    for c in range(1, cols):
        x = _A4_W * c / cols
        pdf.line(x, 0, x, _A4_H)
    for r in range(1, rows):
        y = _A4_H * r / rows
        pdf.line(0, y, _A4_W, y)
    pdf.set_dash_pattern()


def _tiles(
    pdf: _PDF,
    items: Sequence[object],
    cols: int,
    rows: int,
    draw_one: Callable[[_PDF, object, float, float, float, float], None],
) -> None:
    per_page = cols * rows
    w, h = _A4_W / cols, _A4_H / rows
    for i, item in enumerate(items):
        slot = i % per_page
        if slot == 0:
            pdf.add_page()
            _cut_lines(pdf, cols, rows)
        col, row = slot % cols, slot // cols
        draw_one(pdf, item, col * w, row * h, w, h)


def _fit_scale(measure: Callable[[float], bool], what: str) -> float:
    scale = 1.0
    while scale >= 0.6:
        if measure(scale):
            return scale
        scale = round(scale - 0.05, 2)
    raise ValueError(f"{what} does not fit even in small type: too many questions or too much text")


# ---------------------------------------------------------------------------------------------
# Cards


CARD_LINES = (
    "Keep this card secret. Do not show it to your friends.",
    "Forgot your password? Answer these questions at the MIMS portal to make a new one.",
    "Lost this card? Tell your form teacher.",
)

_CARD_PAD = 8.0


def _card_body(
    pdf: _PDF,
    card: CardData,
    title: str,
    x: float,
    y: float,
    w: float,
    bottom: float,
    scale: float,
    draw: bool,
) -> bool:
    """Lay out one card from `y`; True if it ends above `bottom`."""
    s = scale
    flow = _Flow(pdf, x, y, w, draw)
    flow.text(_clean(title), size=15 * s, style="B", fit=9, after=0.5)
    school = _clean(card.school)
    if school:
        flow.text(school, size=8.5 * s, color=_GREY, fit=6, after=2.5 * s)
    else:
        flow.skip(2.5 * s)

    name = _clean(card.name)
    display = _clean(card.display_name)
    flow.text(name or display, size=15 * s, style="B", fit=9, after=0.5)
    if display and display != name and name:
        flow.text(display, size=13 * s, style="B", fit=8, after=0.5)
    flow.text(f"Class {_clean(card.class_name)}", size=10.5 * s, after=2 * s)

    flow.text("Login ID", size=8 * s, color=_GREY)
    flow.login(_clean(card.login_id), size=11 * s, min_size=9.5 * s, after=3 * s)

    if draw:
        pdf.set_draw_color(*_LIGHT)
        pdf.set_line_width(0.3)
        pdf.line(x, flow.y - 1.5 * s, x + w, flow.y - 1.5 * s)
    flow.skip(1.5 * s)

    for n, (question, answer) in enumerate(card.questions, start=1):
        flow.text(f"{n}. {_clean(question)}", size=9.5 * s, after=0.8)
        box_top = flow.y
        # measure the answer first to size its tinted box
        inner = _Flow(pdf, x + 3, box_top + 1.2, w - 6, draw=False)
        h = inner.text(_clean(answer), size=17 * s, style="B", fit=10)
        if draw:
            pdf.set_fill_color(*_TINT)
            pdf.rect(x, box_top, w, h + 2.4, style="F", round_corners=True, corner_radius=1.5)
            _Flow(pdf, x + 3, box_top + 1.2, w - 6, draw=True).text(
                _clean(answer), size=17 * s, style="B", fit=10
            )
        flow.skip(h + 2.4 + 3 * s)
    return flow.y <= bottom


def _card_footer(pdf: _PDF, x: float, w: float, bottom: float, draw: bool) -> float:
    """Draw (or measure) the three plain-language lines so they end at `bottom`; return top."""
    measure = _Flow(pdf, x, 0, w, draw=False)
    height = sum(measure.text(line, size=8.5, after=1.0) for line in CARD_LINES) - 1.0
    top = bottom - height
    if draw:
        flow = _Flow(pdf, x, top, w, draw=True)
        for i, line in enumerate(CARD_LINES):
            flow.text(line, size=8.5, style="B" if i == 0 else "", after=1.0)
    return top


def render_cards(
    cards: Sequence[CardData],
    title: str = "My MIMS card",
    *,
    font_dirs: Sequence[Path | str] = FONT_DIRS,
) -> bytes:
    """Render challenge cards, four A6 cards per A4 sheet with cut lines; return the PDF.

    Each card shows the school, the student's name (and display name, in any script, when it
    differs), class, login ID, each question with its answer in large type, and three lines
    for the child on what the card is for. Text that is too long shrinks, then wraps; a card
    whose questions still do not fit raises ValueError. Up to four questions print at full size;
    five or six are set smaller (to about 75% and 65%); seven or more usually do not fit.
    """
    if not cards:
        raise ValueError("no cards to render")
    pdf = _new_pdf(title, font_dirs, [title] + [
        v for c in cards for v in (c.name, c.display_name, c.school, c.class_name,
                                   *(t for q in c.questions for t in q))])

    def draw_card(pdf: _PDF, item: object, x: float, y: float, w: float, h: float) -> None:
        assert isinstance(item, CardData)
        pad = _CARD_PAD
        pdf.set_draw_color(*_LIGHT)
        pdf.set_line_width(0.3)
        pdf.rect(x + 4, y + 4, w - 8, h - 8, round_corners=True, corner_radius=3)
        cx, cw, bottom = x + pad, w - 2 * pad, y + h - pad
        footer_top = _card_footer(pdf, cx, cw, bottom, draw=False)
        scale = _fit_scale(
            lambda s: _card_body(pdf, item, title, cx, y + pad, cw, footer_top - 3, s, False),
            "a card (for one student)",
        )
        _card_body(pdf, item, title, cx, y + pad, cw, footer_top - 3, scale, True)
        pdf.set_draw_color(*_LIGHT)
        pdf.set_line_width(0.3)
        pdf.line(cx, footer_top - 2, cx + cw, footer_top - 2)
        _card_footer(pdf, cx, cw, bottom, draw=True)

    return _output(pdf, lambda pdf: _tiles(pdf, list(cards), 2, 2, draw_card))


# ---------------------------------------------------------------------------------------------
# Slips


SLIP_RULE = "You MUST change this password the first time you sign in to the MIMS portal."
SLIP_LINES: tuple[tuple[str, float, str, tuple[int, int, int]], ...] = (
    ("Sign in at the MIMS portal with your login ID and this password.", 8.5, "", _BLACK),
    (SLIP_RULE, 9.0, "B", _BLACK),
    ("Keep it secret: do not share it with anyone, not even your friends.", 7.5, "", _GREY),
)

_SLIP_PAD = 7.0


def _password_text(password: str) -> str:
    """The password exactly as set: refuse what cannot be printed rather than alter it."""
    if not isinstance(password, str) or not password or not password.isprintable():
        raise ValueError("a slip's password must be non-empty printable text")
    return password


def _slip_body(
    pdf: _PDF,
    slip: SlipData,
    title: str,
    x: float,
    y: float,
    w: float,
    bottom: float,
    scale: float,
    draw: bool,
) -> bool:
    s = scale
    flow = _Flow(pdf, x, y, w, draw)
    school = _clean(slip.school)
    # title on the left, school on the right, on one line when both fit
    pdf.set_font(_SANS, "B", 13 * s)
    title_w = pdf.width(_clean(title)) + 3
    top = flow.y
    pdf.set_font(_SANS, "", 7.5 * s)
    same_line = bool(school) and pdf.width(school) <= w - title_w
    if same_line:
        _Flow(pdf, x + title_w, top + 1.6 * s, w - title_w, draw).text(
            school, size=7.5 * s, color=_GREY, fit=5.5, align=Align.R
        )
    flow.text(_clean(title), size=13 * s, style="B", fit=8, after=1.5 * s)
    if school and not same_line:
        flow.text(school, size=7.5 * s, color=_GREY, fit=6, after=1.5 * s)

    name = _clean(slip.name)
    display = _clean(slip.display_name)
    label_w = 17.0
    flow.text(name or display, size=13 * s, style="B", fit=8, after=0.3)
    if display and display != name and name:
        flow.text(display, size=12 * s, style="B", fit=7, after=0.3)
    flow.text(f"Class {_clean(slip.class_name)}", size=10 * s, after=2 * s)

    row = flow.y
    _Flow(pdf, x, row + 0.8 * s, label_w, draw).text("Login ID", size=8 * s, color=_GREY)
    flow.login(
        _clean(slip.login_id),
        size=11 * s,
        min_size=8 * s,
        w=w - label_w,
        x=x + label_w,
        after=2.5 * s,
    )

    row = flow.y
    pw = _password_text(slip.password)
    pw_args: dict[str, Any] = {"size": 22 * s, "family": _MONO, "style": "B", "fit": 11}
    h = _Flow(pdf, x + label_w + 3, row, w - label_w - 6, draw=False).text(pw, **pw_args)
    box_h = h + 3 * s
    if draw:
        pdf.set_fill_color(*_TINT)
        pdf.set_draw_color(*_LIGHT)
        pdf.set_line_width(0.3)
        pdf.rect(
            x + label_w, row, w - label_w, box_h, style="DF", round_corners=True, corner_radius=1.5
        )
        _Flow(pdf, x + label_w + 3, row + 1.5 * s, w - label_w - 6, draw=True).text(pw, **pw_args)
    _Flow(pdf, x, row + box_h / 2 - 2.0 * s, label_w, draw).text(
        "Password", size=8 * s, color=_GREY
    )
    flow.skip(box_h + 2.5 * s)

    for line, size, style, color in SLIP_LINES:
        flow.text(line, size=size * s, style=style, color=color, after=0.8 * s)
    return flow.y <= bottom


def render_slips(
    slips: Sequence[SlipData],
    title: str = "Your MIMS password",
    *,
    font_dirs: Sequence[Path | str] = FONT_DIRS,
    fonts: FontSet | None = None,
) -> bytes:
    """Render password slips, eight per A4 sheet (2 x 4, each A7) with cut lines; return the PDF.

    Each slip shows the school, name (and display name when it differs), class, login ID, the
    default password large in a monospaced font, and the rule that it must be changed at the
    first sign-in. `fonts`: fonts cut down once for many calls (a sync run's classes), which
    saves parsing the whole fonts again for each PDF; the PDF is the same with or without.
    """
    if not slips:
        raise ValueError("no slips to render")
    texts = [title] + [v for s in slips for v in (s.name, s.display_name, s.school, s.class_name)]
    pdf = _new_pdf(title, font_dirs, texts, fonts,
                   printed=[v for s in slips for v in (s.login_id, s.password)])

    def draw_slip(pdf: _PDF, item: object, x: float, y: float, w: float, h: float) -> None:
        assert isinstance(item, SlipData)
        pad = _SLIP_PAD
        cx, cw, bottom = x + pad, w - 2 * pad, y + h - pad + 2
        top = y + pad - 1.5
        scale = _fit_scale(
            lambda s: _slip_body(pdf, item, title, cx, top, cw, bottom, s, False),
            "a slip (for one student)",
        )
        _slip_body(pdf, item, title, cx, top, cw, bottom, scale, True)

    return _output(pdf, lambda pdf: _tiles(pdf, list(slips), 2, 4, draw_slip))
