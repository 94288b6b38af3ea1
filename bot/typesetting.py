"""Owns setting text in any script for the clips we draw: Noto fonts shipped as packages, one font per run.

The fonts come from PyPI packages (`manimgx-fonts`: Noto Sans and its sister faces for Arabic, Hebrew, the Indic
and South-East Asian scripts, symbols and emoji; `manimgx-fonts-cjk`: Noto Sans CJK), never from the system,
so a clip looks the same on every machine with the same packages, and nothing is downloaded at run time.
Pillow draws them (FreeType, and Raqm for shaping and right-to-left text when the machine has FriBiDi).
"""

from __future__ import annotations

import bisect
import struct
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, features

from bot.media import RgbaImage

# Heavier than regular: text sits on a moving picture, behind a translucent box.
_WEIGHT = 600
ELLIPSIS = "…"
_LINE_PITCH = 1.4  # line-to-line distance, in font sizes; room for Devanagari and Thai marks
_ASCENT = 1.05  # baseline below the line's top, in font sizes
_RTL = {"R", "AL"}


@dataclass(frozen=True)
class Face:
    """One font file of a package (and the face in it, for a collection)."""

    package: str
    file: str
    index: int = 0

    @property
    def path(self) -> Path:
        """Raises FileNotFoundError (an OSError, which fails the render with this reason) when it is missing."""
        try:
            folder = resources.files(self.package)
        except ModuleNotFoundError:
            raise FileNotFoundError(
                f"the font package {self.package.replace('_', '-')} is not installed; reinstall sora-bot"
            ) from None
        return Path(str(folder.joinpath(self.file)))


# Tried in order for each character: Noto Sans first (Latin, Greek, Cyrillic), then CJK (the Japanese face:
# kana, the Han characters, Hangul), then each script's own face, emoji, symbols.
_SCRIPTS = (
    "Arabic", "Hebrew", "Devanagari", "Bengali", "Gurmukhi", "Gujarati", "Oriya", "Tamil", "Telugu", "Kannada",
    "Malayalam", "Sinhala", "Thai", "Lao", "Khmer", "Myanmar", "Georgian", "Armenian", "Ethiopic",
)  # fmt: skip
FACES: tuple[Face, ...] = (
    Face("manimgx_fonts", "NotoSans[wght].ttf"),
    Face("manimgx_fonts_cjk", "NotoSansCJK-VF.otf.ttc", 0),
    *(Face("manimgx_fonts", f"NotoSans{script}[wght].ttf") for script in _SCRIPTS),
    Face("manimgx_fonts", "NotoEmoji[wght].ttf"),
    Face("manimgx_fonts", "NotoSansSymbols[wght].ttf"),
)
# Faces of pictures, not text: a space or digit after an emoji goes back to the text face (emoji spaces are wide).
_PICTOGRAPHS = frozenset(FACES[-2:])


@dataclass(frozen=True)
class Run:
    """A stretch of one line drawn with one face."""

    text: str
    face: Face


@dataclass(frozen=True)
class TextStyle:
    size: int
    color: tuple[int, int, int, int] = (255, 255, 255, 255)
    background: tuple[int, int, int, int] = (0, 0, 0, 150)

    @property
    def padding(self) -> int:
        return max(2, round(self.size / 4))

    @property
    def pitch(self) -> int:
        return round(self.size * _LINE_PITCH)


# --- which face draws which character -----------------------------------------------------------------


class _Coverage:
    """The code points a face maps, as sorted ranges, read from its `cmap` table."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        self._starts = [start for start, _ in ranges]
        self._ends = [end for _, end in ranges]

    def __contains__(self, code: int) -> bool:
        i = bisect.bisect_right(self._starts, code) - 1
        return i >= 0 and code <= self._ends[i]


@cache
def _coverage(face: Face) -> _Coverage:
    """Read once per process: a font file never changes under a running bot."""
    return _Coverage(read_cmap(face.path, face.index))


def read_cmap(path: Path, index: int = 0) -> list[tuple[int, int]]:
    """The Unicode ranges a TrueType/OpenType font (or face `index` of a collection) has glyphs for.

    Reads only the headers and the best Unicode `cmap` subtable (format 12, else format 4), seeking through
    the file, so a 30 MB collection costs a few hundred kilobytes.
    """
    with open(path, "rb") as file:

        def read(offset: int, size: int) -> bytes:
            file.seek(offset)
            data = file.read(size)
            if len(data) != size:
                raise ValueError(f"{path.name} is truncated")
            return data

        base = 0
        if read(0, 4) == b"ttcf":
            (count,) = struct.unpack(">I", read(8, 4))
            if not 0 <= index < count:
                raise ValueError(f"{path.name} has no face {index}")
            (base,) = struct.unpack(">I", read(12 + 4 * index, 4))
        (tables,) = struct.unpack(">H", read(base + 4, 2))
        cmap = None
        for i in range(tables):
            tag, _, offset, _ = struct.unpack(">4sIII", read(base + 12 + 16 * i, 16))
            if tag == b"cmap":
                cmap = offset
        if cmap is None:
            raise ValueError(f"{path.name} has no cmap table")
        (subtables,) = struct.unpack(">H", read(cmap + 2, 2))
        found: dict[int, int] = {}
        for i in range(subtables):
            platform, encoding, offset = struct.unpack(">HHI", read(cmap + 4 + 8 * i, 8))
            if (platform, encoding) in ((3, 10), (0, 4), (0, 6), (3, 1), (0, 3)):
                (kind,) = struct.unpack(">H", read(cmap + offset, 2))
                found.setdefault(kind, cmap + offset)
        if 12 in found:
            at = found[12]
            (groups,) = struct.unpack(">I", read(at + 12, 4))
            data = read(at + 16, 12 * groups)
            return [(start, end) for start, end, _ in struct.iter_unpack(">III", data)]
        if 4 in found:
            at = found[4]
            (seg_x2,) = struct.unpack(">H", read(at + 6, 2))
            ends = struct.unpack(f">{seg_x2 // 2}H", read(at + 14, seg_x2))
            starts = struct.unpack(f">{seg_x2 // 2}H", read(at + 16 + seg_x2, seg_x2))
            return sorted((s, e) for s, e in zip(starts, ends, strict=True) if s != 0xFFFF)
        raise ValueError(f"{path.name} has no Unicode cmap subtable this reader knows")


def _attaches(char: str) -> bool:
    """Marks, joiners and variation selectors belong to the character before them, in its face."""
    return unicodedata.category(char) in ("Mn", "Mc", "Me", "Cf") or "\ufe00" <= char <= "\ufe0f"


def _neutral(char: str) -> bool:
    """Spaces, digits and punctuation stay in the face around them when it has them (one shaped run)."""
    return unicodedata.category(char)[0] in "ZPNS" and not _is_emoji(char)


def _is_emoji(char: str) -> bool:
    return ord(char) >= 0x1F000 or "\u2600" <= char <= "\u27bf"


def face_for(char: str, faces: Sequence[Face] = FACES) -> Face:
    """The first face that draws `char`; the first face (which shows a missing glyph box) when none does."""
    code = ord(char)
    for face in faces:
        if code in _coverage(face):
            return face
    return faces[0]


def runs(line: str, faces: Sequence[Face] = FACES) -> list[Run]:
    """`line` cut into runs of one face each, in logical order."""
    result: list[Run] = []
    for char in line:
        current = result[-1] if result else None
        if current is not None and (
            _attaches(char)
            or (_neutral(char) and current.face not in _PICTOGRAPHS and ord(char) in _coverage(current.face))
        ):
            result[-1] = Run(current.text + char, current.face)
            continue
        face = face_for(char, faces)
        if current is not None and current.face == face:
            result[-1] = Run(current.text + char, face)
        else:
            result.append(Run(char, face))
    return result


def _right_to_left(text: str) -> bool:
    """The paragraph direction, from its first strong character (Unicode's rule P2)."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in _RTL:
            return True
        if kind == "L":
            return False
    return False


# --- fonts, measuring and drawing ----------------------------------------------------------------------


class _Fonts:
    """Pillow fonts of one size, opened on first use; one per drawing, as FreeType faces are not thread-safe."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._open: dict[Face, ImageFont.FreeTypeFont] = {}
        # Raqm shapes (Arabic joining, Indic conjuncts) and orders right-to-left text; without it, basic
        # layout draws the glyphs one by one, which still shows the script.
        self.shaping = features.check("raqm")

    def __call__(self, face: Face) -> ImageFont.FreeTypeFont:
        font = self._open.get(face)
        if font is None:
            engine = ImageFont.Layout.RAQM if self.shaping else ImageFont.Layout.BASIC
            font = ImageFont.truetype(face.path, self._size, index=face.index, layout_engine=engine)
            try:
                axes = font.get_variation_axes()
            except OSError:
                axes = []  # a static face
            if axes:
                font.set_variation_by_axes([_axis_value(axis) for axis in axes])
            self._open[face] = font
        return font

    def visual(self, run: Run) -> str:
        """What basic layout must be given to show a right-to-left run in reading order."""
        return run.text[::-1] if not self.shaping and _right_to_left(run.text) else run.text

    def width(self, line: str) -> float:
        return sum(self(run.face).getlength(self.visual(run)) for run in runs(line))


def _axis_value(axis: ImageFont.Axis) -> float:
    """Our weight on a weight axis (within its range); any other axis at its default."""
    low, default, high = axis["minimum"], axis["default"], axis["maximum"]
    value = float(_WEIGHT if axis["name"] == b"Weight" else (default or 0))
    if low is not None:
        value = max(value, low)
    if high is not None:
        value = min(value, high)
    return value


def wrap(text: str, *, width: float, max_lines: int, measure: Callable[[str], float]) -> list[str]:
    """Lines of `text` no wider than `width`: broken at spaces, between CJK characters, or anywhere in a word
    too long for a line; past `max_lines` the last line ends in an ellipsis.

    Each piece is measured once and lines are summed from the pieces (kerning across a break is ignored), so a
    long caption costs a few milliseconds, not a measure of every candidate line.
    """
    lines: list[str] = []
    current, used = "", 0.0  # `used` includes the trailing space of the last word
    for word in _break_units(" ".join(text.split())):
        core = measure(word.rstrip())
        if used + core <= width:
            current, used = current + word, used + measure(word)
            continue
        if current.strip():
            lines.append(current.rstrip())
        current, used = "", 0.0
        for cluster in _clusters(word):
            size = measure(cluster)
            if current and used + size > width:
                lines.append(current.rstrip())
                current, used = "", 0.0
            current, used = current + cluster, used + size
    if current.strip() or not lines:
        lines.append(current.rstrip())
    if len(lines) <= max_lines:
        return lines
    last = _clusters(lines[max_lines - 1])
    while last and measure("".join(last).rstrip() + ELLIPSIS) > width:
        last.pop()
    return [*lines[: max_lines - 1], "".join(last).rstrip() + ELLIPSIS]


def _break_units(text: str) -> list[str]:
    """Pieces a line may end after: a word with its trailing space, or one wide (CJK) character."""
    units: list[str] = []
    for cluster in _clusters(text):
        wide = unicodedata.east_asian_width(cluster[0]) in ("W", "F")
        if not units or wide or units[-1].endswith(" ") or _ends_wide(units[-1]):
            units.append(cluster)
        else:
            units[-1] += cluster
    return units


def _ends_wide(unit: str) -> bool:
    base = next((c for c in reversed(unit) if not _attaches(c)), " ")
    return unicodedata.east_asian_width(base) in ("W", "F")


def _clusters(text: str) -> list[str]:
    """Characters with their marks, joiners and variation selectors (an approximation of graphemes)."""
    clusters: list[str] = []
    for char in text:
        if clusters and (_attaches(char) or clusters[-1].endswith("\u200d")):
            clusters[-1] += char
        else:
            clusters.append(char)
    return clusters


def measure(style: TextStyle) -> Callable[[str], float]:
    """A width function for `wrap` in `style`'s size."""
    return _Fonts(style.size).width


def text_image(lines: Sequence[str], style: TextStyle) -> RgbaImage:
    """`lines` drawn in the packaged fonts on a translucent padded box, each run in the face that has it."""
    fonts = _Fonts(style.size)
    pad, pitch = style.padding, style.pitch
    laid = [_laid_out(line, fonts) for line in lines] or [[]]
    widths = [sum(width for _, width in line) for line in laid]
    width = max(1, round(max(widths))) + 2 * pad
    height = len(laid) * pitch + 2 * pad
    image = Image.new("RGBA", (width, height), style.background)
    draw = ImageDraw.Draw(image)
    ascent = round(style.size * _ASCENT)
    for row, (text, line) in enumerate(zip(lines, laid, strict=False)):
        # A right-to-left line starts at the box's right edge, as its reader expects.
        x = float(width - pad - widths[row] if _right_to_left(text) else pad)
        for run, run_width in line:
            draw.text(
                (x, pad + row * pitch + ascent),
                fonts.visual(run),
                font=fonts(run.face),
                fill=style.color,
                anchor="ls",
            )
            x += run_width
    return RgbaImage(width=width, height=height, pixels=image.tobytes())


def _laid_out(line: str, fonts: _Fonts) -> list[tuple[Run, float]]:
    """The line's runs in visual order with their advance widths."""
    pieces = [(run, fonts(run.face).getlength(fonts.visual(run))) for run in runs(line)]
    return pieces[::-1] if _right_to_left(line) else pieces
