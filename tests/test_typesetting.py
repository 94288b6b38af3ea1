"""Setting text in any script with the packaged Noto fonts: faces per run, wrapping, drawing."""

from __future__ import annotations

import pytest

from bot import typesetting
from bot.media import RgbaImage
from bot.typesetting import FACES, TextStyle, face_for, read_cmap, runs, text_image, wrap

STYLE = TextStyle(size=24)


def face_file(char: str) -> str:
    return face_for(char).file


def ink(image: RgbaImage) -> bytes:
    """The red channel: white text on a black box, so it is the text alone."""
    return image.pixels[0::4]


def difference(a: RgbaImage, b: RgbaImage) -> float:
    """Mean absolute difference of the ink over the larger image (the smaller one padded with no ink)."""
    width, height = max(a.width, b.width), max(a.height, b.height)

    def grid(image: RgbaImage) -> list[int]:
        red = ink(image)
        return [
            red[y * image.width + x] if x < image.width and y < image.height else 0
            for y in range(height)
            for x in range(width)
        ]

    return sum(abs(p - q) for p, q in zip(grid(a), grid(b), strict=True)) / (width * height)


def test_every_face_is_shipped_by_an_installed_package_and_maps_unicode() -> None:
    for face in FACES:
        assert face.path.is_file(), face
        assert read_cmap(face.path, face.index), face


@pytest.mark.parametrize(
    ("char", "file"),
    [
        ("A", "NotoSans[wght].ttf"),
        ("ж", "NotoSans[wght].ttf"),
        ("λ", "NotoSans[wght].ttf"),
        ("ệ", "NotoSans[wght].ttf"),
        ("あ", "NotoSansCJK-VF.otf.ttc"),
        ("雨", "NotoSansCJK-VF.otf.ttc"),
        ("한", "NotoSansCJK-VF.otf.ttc"),
        ("ب", "NotoSansArabic[wght].ttf"),
        ("ש", "NotoSansHebrew[wght].ttf"),
        ("क", "NotoSansDevanagari[wght].ttf"),
        ("ก", "NotoSansThai[wght].ttf"),
        ("🤖", "NotoEmoji[wght].ttf"),
    ],
)
def test_each_script_is_drawn_by_a_face_that_has_it(char: str, file: str) -> None:
    assert face_file(char) == file


def test_a_line_is_cut_into_runs_and_spaces_stay_with_the_text_around_them() -> None:
    assert [(r.text, r.face.file) for r in runs("robot 🤖 in 雨の東京")] == [
        ("robot ", "NotoSans[wght].ttf"),
        ("🤖", "NotoEmoji[wght].ttf"),
        (" in ", "NotoSans[wght].ttf"),
        ("雨の東京", "NotoSansCJK-VF.otf.ttc"),
    ]
    # An Arabic phrase stays one run, spaces and all, so it is shaped as a whole.
    assert [r.face.file for r in runs("روبوت توصيل صغير")] == ["NotoSansArabic[wght].ttf"]
    # A combining mark goes with its letter.
    assert len(runs("e\u0301te\u0301")) == 1


def test_lines_are_no_wider_than_asked_and_the_last_ends_in_an_ellipsis() -> None:
    measure = typesetting.measure(STYLE)
    text = "A small red robot waters a giant sunflower on a rooftop garden at dusk in the rain"

    lines = wrap(text, width=240, max_lines=2, measure=measure)

    assert len(lines) == 2 and lines[0].startswith("A small red robot")
    assert lines[-1].endswith("…")
    assert all(measure(line) <= 240 for line in lines)
    assert wrap("short", width=240, max_lines=2, measure=measure) == ["short"]
    assert wrap("", width=240, max_lines=2, measure=measure) == [""]


def test_japanese_breaks_between_characters_and_a_long_word_breaks_anywhere() -> None:
    measure = typesetting.measure(STYLE)

    japanese = wrap(
        "雨の路地を走る小さな配達ロボットがゆっくり止まる", width=200, max_lines=3, measure=measure
    )
    word = wrap("Donaudampfschifffahrtsgesellschaftskapitän", width=200, max_lines=3, measure=measure)

    for lines in (japanese, word):
        assert len(lines) >= 2 and all(measure(line) <= 200 for line in lines)
    assert "".join(japanese).startswith("雨の路地")


@pytest.mark.parametrize(
    "text",
    ["雨の東京", "Дождь", "مطر الليل", "बारिश", "비 오는 밤", "🤖☔"],
    ids=["japanese", "cyrillic", "arabic", "devanagari", "korean", "emoji"],
)
def test_text_in_any_script_draws_glyphs_not_question_marks_or_boxes(text: str) -> None:
    drawn = text_image([text], STYLE)
    questions = text_image(["?" * len(text)], STYLE)
    # A private-use character no face maps: the missing-glyph box, repeated.
    boxes = text_image(["\ue000" * len(text)], STYLE)

    assert difference(drawn, questions) > 5
    assert difference(drawn, boxes) > 5


def test_two_scripts_draw_different_pixels_and_the_same_text_the_same_pixels() -> None:
    japanese = text_image(["雨の東京 #2"], STYLE)
    cyrillic = text_image(["Дождь #2"], STYLE)

    assert difference(japanese, cyrillic) > 5
    assert text_image(["雨の東京 #2"], STYLE) == japanese


def test_a_right_to_left_line_is_set_against_the_right_edge() -> None:
    image = text_image(["مطر", "a longer left-to-right line"], STYLE)
    red = ink(image)
    pitch, pad = STYLE.pitch, STYLE.padding
    first_row = range(pad, pad + pitch)
    columns = [x for y in first_row for x in range(image.width) if red[y * image.width + x] > 128]

    assert min(columns) > image.width / 2


def test_the_box_grows_with_the_lines_and_keeps_its_translucent_background() -> None:
    one = text_image(["#1"], STYLE)
    three = text_image(["#1", "two", "three"], STYLE)

    assert three.height == one.height + 2 * STYLE.pitch and three.width > one.width
    assert one.pixels[:4] == bytes(STYLE.background)


def test_a_missing_font_package_is_named_in_the_error() -> None:
    with pytest.raises(FileNotFoundError, match="font package no-such-fonts is not installed"):
        _ = typesetting.Face("no_such_fonts", "Nope.ttf").path
