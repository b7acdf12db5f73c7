"""The life-story book as a PDF the child can keep: their first name, their chapters, their photos.

Written for the child, not the file: large friendly type, one chapter to a section of the book, and
nothing from the case record: no surname, no legal status, no category, no reference numbers, and
workers by first name only. `LifeStoryBook` (storage/life_story.py) holds only what may be printed.
"""

from __future__ import annotations

import io
from pathlib import Path

from fpdf import FPDF

from storage.life_story import LifeStoryBook, LifeStoryItem, LifeStorySection

# Unicode fonts where the machine has them (Debian's fonts-dejavu); the PDF's core font otherwise.
FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/local/share/fonts"), Path.home() / ".fonts"]
INK = (40, 40, 70)
SOFT = (120, 120, 140)
# One gentle colour per chapter, so the book feels like a book rather than a form.
CHAPTER_COLOURS = [(255, 214, 165), (202, 255, 191), (155, 246, 255), (189, 178, 255), (255, 198, 255),
                   (253, 255, 182)]
EMPTY_CHAPTER = "This chapter is waiting for your story. You can add your own words and pictures here."


def _font_files() -> tuple[Path, Path] | None:
    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.exists() and bold.exists():
            return regular, bold
    return None


class _Book(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.set_margins(20, 20, 20)
        self.set_auto_page_break(True, margin=20)
        fonts = _font_files()
        if fonts:
            self.add_font("Book", "", str(fonts[0]))
            self.add_font("Book", "B", str(fonts[1]))
            self.book_font = "Book"
            self.has_unicode = True
        else:
            self.book_font = "helvetica"
            self.has_unicode = False

    def text_of(self, text: str) -> str:
        # The core font has no glyphs beyond Latin-1: keep what it can print, rather than fail.
        if self.has_unicode:
            return text
        text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
        return text.encode("latin-1", "replace").decode("latin-1")

    def write_block(self, text: str, size: float, *, bold: bool = False, colour: tuple[int, int, int] = INK,
                    align: str = "L", gap: float = 0.5) -> None:
        self.set_font(self.book_font, "B" if bold else "", size)
        self.set_text_color(*colour)
        self.multi_cell(0, size * gap, self.text_of(text), align=align, new_x="LMARGIN", new_y="NEXT")

    def footer(self) -> None:
        if self.page_no() > 1:
            self.set_y(-15)
            self.set_font(self.book_font, "", 11)
            self.set_text_color(*SOFT)
            self.cell(0, 8, str(self.page_no()), align="C")


def _cover(pdf: _Book, book: LifeStoryBook) -> None:
    pdf.add_page()
    pdf.set_fill_color(255, 236, 200)
    pdf.rect(0, 0, pdf.w, pdf.h, style="F")
    pdf.set_y(80)
    name = book.first_name or "My"
    pdf.write_block(f"{name}'s" if book.first_name else name, 40, bold=True, align="C")
    pdf.write_block("Life Story Book", 36, bold=True, align="C")
    pdf.ln(12)
    pdf.write_block("This book is all about you: where you come from, the people who love you, "
                    "and the things you have done.", 18, align="C")
    if book.made_with:
        pdf.ln(30)
        pdf.write_block("Made with " + _and(book.made_with), 16, colour=SOFT, align="C")


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _photo(pdf: _Book, image: bytes) -> None:
    """Places a photo at up to the page's width and 110 mm high, on a new page if it will not fit."""
    from PIL import Image

    with Image.open(io.BytesIO(image)) as probe:
        width_px, height_px = probe.size
    max_w, max_h = pdf.epw, 110.0
    scale = min(max_w / width_px, max_h / height_px)
    w, h = width_px * scale, height_px * scale
    if pdf.get_y() + h > pdf.h - pdf.b_margin:
        pdf.add_page()
    x = pdf.l_margin + (pdf.epw - w) / 2
    pdf.image(io.BytesIO(image), x=x, y=pdf.get_y(), w=w, h=h)
    pdf.set_y(pdf.get_y() + h + 6)


def _entry(pdf: _Book, entry: LifeStoryItem, photos: dict[str, bytes]) -> None:
    if pdf.get_y() > pdf.h - 70:
        pdf.add_page()
    pdf.write_block(f"{entry.on:%-d %B %Y}", 13, colour=SOFT)
    pdf.write_block(entry.title, 22, bold=True)
    pdf.ln(2)
    if entry.text:
        pdf.write_block(entry.text, 16, gap=0.55)
        pdf.ln(4)
    for photo_id in entry.photo_ids:
        if photo_id in photos:
            _photo(pdf, photos[photo_id])
    pdf.ln(8)


def _chapter(pdf: _Book, number: int, section: LifeStorySection, photos: dict[str, bytes]) -> None:
    pdf.add_page()
    pdf.set_fill_color(*CHAPTER_COLOURS[(number - 1) % len(CHAPTER_COLOURS)])
    pdf.rect(0, 0, pdf.w, 55, style="F")
    pdf.set_y(18)
    pdf.write_block(f"Chapter {number}", 16, colour=SOFT)
    pdf.write_block(section.title, 30, bold=True)
    pdf.set_y(70)
    if not section.entries:
        pdf.write_block(EMPTY_CHAPTER, 16, colour=SOFT, gap=0.55)
        return
    for entry in section.entries:
        _entry(pdf, entry, photos)


def life_story_pdf(book: LifeStoryBook, *, compress: bool = True) -> bytes:
    """The book as PDF bytes. `compress=False` leaves the page text readable in the raw file (for tests)."""
    pdf = _Book()
    pdf.set_compression(compress)
    title = f"{book.first_name}'s Life Story Book" if book.first_name else "My Life Story Book"
    pdf.set_title(pdf.text_of(title))
    # No author: the book belongs to the child, and the PDF's metadata must not name the authority or staff.
    pdf.set_creator("Seen")
    _cover(pdf, book)
    for number, section in enumerate(book.sections, start=1):
        _chapter(pdf, number, section, book.photos)
    return bytes(pdf.output())
