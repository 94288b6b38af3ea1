"""Every idea of the drafting examples (and of our held-out ideas) through `/sora draft`, read off the card."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from conftest import Bot
from test_slack_loop import _all_text, draft

DATA = Path(__file__).parent / "data"
EXAMPLES = DATA / "drafting_examples.json"  # the development set
HELD_OUT = (
    DATA / "held_out_ideas.json"
)  # written apart from it, to measure the rule rather than the sentences
LABELS = {"Subject": "subject", "Action": "action", "Camera": "camera", "Environment": "environment"}
LABELS["Finish"] = "finish"


def _norm(text: str) -> str:
    return re.sub(r"[\s\-]+", " ", text.lower()).strip()


def card_layers(card: Any) -> dict[str, str]:
    """The layers as the draft card shows them (`*Subject*\\nA lone cyclist`)."""
    layers: dict[str, str] = {}
    for block in card.blocks:
        for field in block.get("fields", []):
            label, _, value = field["text"].partition("\n")
            name = LABELS.get(label.strip("*"))
            if name:
                layers[name] = value.replace(" _(default)_", "")
    return layers


def card_score(card: Any) -> int:
    found = re.search(r"Checklist (\d+)/100", _all_text(card))
    assert found, "the card shows its checklist score"
    return int(found.group(1))


def layer_accuracy(sora: Bot, path: Path) -> float:
    examples = json.loads(path.read_text())["examples"]
    hits = total = 0
    for example in examples:
        card = draft(sora, example["idea"])
        layers = card_layers(card)
        for layer, words in example["expect"].items():
            for word in words:
                total += 1
                hits += _norm(word) in _norm(layers.get(layer, ""))
        if example.get("flawed"):
            assert card_score(card) < 100, example["idea"]
            assert ":white_check_mark: *Checklist:* nothing to fix." not in _all_text(card), example["idea"]
    accuracy = hits / total
    print(f"{path.name}: {hits}/{total} listed words in the right layer ({accuracy:.1%})")
    return accuracy


def test_the_examples_drafted_through_slack_put_nine_in_ten_listed_words_in_the_right_layer(
    sora: Bot,
) -> None:
    assert layer_accuracy(sora, EXAMPLES) >= 0.9


def test_held_out_ideas_drafted_through_slack_put_nine_in_ten_listed_words_in_the_right_layer(
    sora: Bot,
) -> None:
    assert layer_accuracy(sora, HELD_OUT) >= 0.9


def test_a_long_brief_is_drafted_from_its_main_shot_and_the_card_lists_what_was_left_out(sora: Bot) -> None:
    brief = (
        "A small delivery robot rolls through a rain-soaked neon alley at night. Slow dolly-in at robot height. "
        + "The client wants the brand to feel friendly and modern, and the spot should appeal to commuters. "
        * 25
        + "Soft film grain."
    )
    assert len(brief.split()) > 400
    card = draft(sora, brief)
    layers = card_layers(card)
    assert layers["subject"] == "A small delivery robot"
    assert "dolly-in" in layers["camera"]
    text = _all_text(card)
    assert "condensed to its main shot" in text and "Left out" in text and "The client wants" in text


def test_an_idea_in_spanish_is_kept_whole_and_the_card_says_the_offline_drafter_reads_english(
    sora: Bot,
) -> None:
    idea = (
        "Un pequeño robot recorre un callejón de neón bajo la lluvia por la noche, con la cámara acercándose"
    )
    card = draft(sora, idea)
    layers = card_layers(card)
    assert layers["subject"] == idea
    assert layers["action"] == layers["camera"] == layers["environment"] == "—"
    text = _all_text(card)
    assert "Spanish" in text and "kept whole" in text
    assert card_score(card) < 100


def test_an_idea_written_as_a_sequence_gets_beat_cards_spaced_for_the_clip(sora: Bot) -> None:
    card = draft(sora, "A robot rolls into the alley, then stops at a puddle, then looks up at the neon sign")
    text = _all_text(card)
    assert "*Storyboard*" in text
    assert "`0 s` A robot rolls into the alley" in text and "the robot stops at a puddle" in text
    assert "too close" not in text
