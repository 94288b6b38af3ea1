"""Unit tests for bot.prompts: presets, drafting, the checklist lint, score, render and remix edits."""

from __future__ import annotations

import itertools
from dataclasses import replace

from bot.domain import Aspect, Beat, Finding, PromptSpec, Severity
from bot.prompts import (
    DEFAULT_CAMERA,
    PRESETS,
    RULES,
    Draft,
    Goal,
    LayerChange,
    apply_change,
    changed_layers,
    draft,
    draft_with_notes,
    layer_diff,
    lint,
    parse_goal,
    render,
    score,
    split_change,
)

STRONG = (
    "A small delivery robot rolls through a rain-soaked neon alley at night, puddles reflecting pink signs; "
    "slow dolly-in at robot height; shallow depth of field, soft film grain; 8-second product teaser."
)
WEAK = "cinematic epic amazing robot, neon, rain, 4k, masterpiece, dramatic lighting, alley"

NASTY = [
    "",
    "   ",
    "🎬🎬🎬",
    "<!channel>",
    "remix #99999999999999999999",
    "a" * 5000,
    "recut #1 -",
    "blend ##",
    "\x00",
    ",,,;;;...",
    "and and and with with while as then",
    "a robot " * 600,
    "&lt;script&gt;&amp;",
    "\u200b\u00a0\t\n",
]


def spec(**layers: str) -> PromptSpec:
    """The strong robot example as a spec, with some layers swapped for a bad version."""
    base = PromptSpec(
        subject="A small delivery robot",
        action="rolls through a rain-soaked neon alley at night",
        camera="slow dolly-in at robot height",
        environment="puddles reflecting pink signs",
        finish="shallow depth of field, soft film grain",
        intent="8-second product teaser",
    )
    return replace(base, **layers)


def rules(findings: tuple[Finding, ...]) -> set[str]:
    return {f.rule for f in findings}


def finding(rule: str, prompt: PromptSpec) -> Finding | None:
    return next((f for f in lint(prompt) if f.rule == rule), None)


# --- goals -------------------------------------------------------------------------------------------


def test_every_goal_has_a_preset_with_the_agreed_shape() -> None:
    assert set(PRESETS) == set(Goal)
    assert (PRESETS[Goal.AD_CONCEPT].aspect, PRESETS[Goal.AD_CONCEPT].seconds) == (Aspect.LANDSCAPE, 8)
    assert PRESETS[Goal.AD_CONCEPT].variations == 3
    assert (PRESETS[Goal.SOCIAL_TEASER].aspect, PRESETS[Goal.SOCIAL_TEASER].seconds) == (Aspect.PORTRAIT, 6)
    assert PRESETS[Goal.PRODUCT_HERO].variations == 2
    assert PRESETS[Goal.AMBIENT_LOOP].seconds == 8
    assert PRESETS[Goal.STORYBOARD].seconds == 12
    assert (PRESETS[Goal.STYLE_STUDY].aspect, PRESETS[Goal.STYLE_STUDY].variations) == (Aspect.SQUARE, 4)


def test_preset_intent_names_duration_goal_and_aspect() -> None:
    assert PRESETS[Goal.AD_CONCEPT].intent == "8-second ad concept, 16:9"


def test_preset_default_cameras_pass_the_camera_conflict_rule() -> None:
    for preset in PRESETS.values():
        assert "camera_conflict" not in rules(lint(spec(camera=preset.camera)))


def test_parse_goal_accepts_names_and_aliases() -> None:
    assert parse_goal("social_teaser") is Goal.SOCIAL_TEASER
    assert parse_goal("Social Teaser") is Goal.SOCIAL_TEASER
    assert parse_goal("social-teaser") is Goal.SOCIAL_TEASER
    assert parse_goal("ad") is Goal.AD_CONCEPT
    assert parse_goal("social") is Goal.SOCIAL_TEASER
    assert parse_goal("product") is Goal.PRODUCT_HERO
    assert parse_goal("hero") is Goal.PRODUCT_HERO
    assert parse_goal("loop") is Goal.AMBIENT_LOOP
    assert parse_goal("ambient") is Goal.AMBIENT_LOOP
    assert parse_goal("story") is Goal.STORYBOARD
    assert parse_goal("STYLE") is Goal.STYLE_STUDY


def test_parse_goal_returns_none_for_unknown_words() -> None:
    assert parse_goal("banana") is None
    assert parse_goal("") is None


# --- draft -------------------------------------------------------------------------------------------


def test_draft_of_the_strong_example_keeps_every_layer_the_user_gave() -> None:
    drafted = draft_with_notes(STRONG)
    # The alley is where it happens, so it is the environment; the action keeps a reference to it.
    assert drafted.spec == spec(
        action="rolls through the alley",
        environment="a rain-soaked neon alley at night, puddles reflecting pink signs",
    )
    assert drafted.filled == ()


def test_draft_of_the_weak_example_puts_tags_into_layers_and_defaults_the_camera() -> None:
    drafted = draft_with_notes(WEAK)
    assert drafted.spec.subject == "cinematic epic amazing robot"
    assert drafted.spec.environment == "neon, rain, alley"
    assert "masterpiece" in drafted.spec.finish
    assert drafted.spec.camera == DEFAULT_CAMERA
    assert "camera" in drafted.filled


def test_draft_splits_subject_from_its_verb_phrase() -> None:
    drafted = draft("a barista pours latte art in a sunlit cafe, close-up, warm tones")
    assert drafted.subject == "a barista"
    assert drafted.action == "pours latte art"
    assert drafted.environment == "in a sunlit cafe"
    assert drafted.camera == "close-up"
    assert drafted.finish == "warm tones"


def test_draft_moves_an_adverb_before_the_verb_into_the_action() -> None:
    drafted = draft("a red sneaker slowly rotates on a pedestal with shallow depth of field and soft light")
    assert drafted.subject == "a red sneaker"
    assert drafted.action == "slowly rotates on a pedestal"
    assert drafted.finish == "shallow depth of field and soft light"


def test_draft_peels_a_camera_phrase_off_the_end_of_the_action() -> None:
    drafted = draft("A woman runs through a forest in a low-angle tracking shot")
    assert (drafted.subject, drafted.action) == ("A woman", "runs through the forest")
    assert drafted.environment == "a forest"
    assert drafted.camera == "low-angle tracking shot"


def test_draft_without_a_verb_splits_subject_from_its_setting() -> None:
    drafted = draft_with_notes("a lonely lighthouse on a cliff at sunset")
    assert drafted.spec.subject == "a lonely lighthouse"
    assert drafted.spec.environment == "on a cliff at sunset"
    assert drafted.spec.action == ""


def test_draft_finds_the_subject_in_a_leading_setting_clause() -> None:
    drafted = draft("At night, a fox trots across a snowy field while snow falls")
    assert drafted.subject == "a fox"
    assert drafted.action == "trots across the field"
    assert drafted.environment == "At night, a snowy field while snow falls"


def test_draft_finds_the_subject_as_the_camera_target_when_nothing_else_names_one() -> None:
    drafted = draft("the camera slowly orbits a vintage car parked in a desert, 35mm, warm grade")
    assert drafted.subject == "a vintage car parked"
    assert drafted.camera == "the camera slowly orbits"
    assert drafted.environment == "in a desert"
    assert drafted.finish == "35mm, warm grade"


def test_draft_turns_a_then_clause_into_beats_and_keeps_the_opening_as_the_action() -> None:
    drafted = draft("a hummingbird hovers beside a flower, then darts away")
    assert drafted.action == "hovers beside a flower"
    assert [b.text for b in drafted.beats] == [
        "a hummingbird hovers beside a flower",
        "the hummingbird darts away",
    ]


def test_draft_keeps_a_with_phrase_that_describes_the_subject() -> None:
    drafted = draft("a kid with a red umbrella jumps into puddles")
    assert drafted.subject == "a kid with a red umbrella"
    assert drafted.action.startswith("jumps into")


def test_draft_fills_missing_layers_from_the_goal_preset_and_names_them() -> None:
    drafted = draft_with_notes("a chef chops onions", goal=Goal.PRODUCT_HERO)
    preset = PRESETS[Goal.PRODUCT_HERO]
    assert drafted == Draft(
        spec=PromptSpec(
            subject="a chef",
            action="chops onions",
            camera=preset.camera,
            environment=preset.environment,
            finish=preset.finish,
            intent="6-second product hero, 16:9",
        ),
        filled=("camera", "environment", "finish", "intent"),
        goal=Goal.PRODUCT_HERO,
    )


def test_draft_moves_the_place_the_action_happens_in_to_the_environment() -> None:
    drafted = draft_with_notes("a fox trots across a snowy field")
    assert "environment" not in drafted.filled
    assert (drafted.spec.action, drafted.spec.environment) == ("trots across the field", "a snowy field")


def test_draft_of_empty_text_returns_defaults_only() -> None:
    drafted = draft_with_notes("")
    assert (drafted.spec.subject, drafted.spec.action) == ("", "")
    assert drafted.filled == ("camera", "environment", "finish", "intent")


def test_draft_normalises_whitespace_and_trims_trailing_punctuation() -> None:
    drafted = draft("  a   chef\n chops   onions!!!  ")
    assert (drafted.subject, drafted.action) == ("a chef", "chops onions")


def test_draft_never_raises_on_nasty_strings() -> None:
    for text in NASTY:
        for goal in (None, *Goal):
            assert isinstance(draft(text, goal=goal), PromptSpec)


# --- lint: each rule fires on a realistic bad prompt and not on the strong example ---------------


def test_strong_example_has_no_warnings_or_errors() -> None:
    drafted = draft_with_notes(STRONG)
    findings = lint(drafted.spec, filled=drafted.filled)
    assert [f for f in findings if f.severity is not Severity.INFO] == []
    assert score(findings) == 100


def test_weak_example_fires_keyword_pile_and_camera_missing() -> None:
    drafted = draft_with_notes(WEAK)
    found = rules(lint(drafted.spec, filled=drafted.filled))
    assert {"keyword_pile", "camera_missing", "no_motion"} <= found
    assert score(lint(drafted.spec, filled=drafted.filled)) < 70


def test_every_finding_names_its_rule_and_a_concrete_fix() -> None:
    findings = lint(draft_with_notes(WEAK).spec, filled=draft_with_notes(WEAK).filled)
    for finding in findings:
        assert finding.rule in RULES
        assert finding.fix and finding.message


def test_subject_missing_fires_on_an_empty_subject() -> None:
    assert "subject_missing" in rules(lint(spec(subject="")))
    assert "subject_missing" not in rules(lint(spec()))


def test_multiple_subjects_fires_on_a_robot_and_a_dog_and_a_cat() -> None:
    drafted = draft("a robot and a dog and a cat dance in a kitchen")
    findings = [f for f in lint(drafted) if f.rule == "multiple_subjects"]
    assert findings and "3 subjects" in findings[0].message
    assert "a robot" in findings[0].fix


def test_multiple_subjects_does_not_fire_on_one_subject_with_an_accessory() -> None:
    assert "multiple_subjects" not in rules(lint(spec(subject="a kid with a red umbrella")))
    assert "multiple_subjects" not in rules(lint(spec(subject="a black and white cat")))
    assert "multiple_subjects" not in rules(lint(spec()))


def test_no_motion_fires_when_nothing_moves() -> None:
    assert "no_motion" in rules(lint(spec(action="stands in the alley")))
    assert "no_motion" in rules(lint(spec(action="")))
    assert "no_motion" not in rules(lint(spec()))
    assert "no_motion" not in rules(lint(spec(action="turns its head toward camera")))


def test_simultaneous_actions_fires_on_three_motions() -> None:
    bad = spec(action="kicks off, spins, lands and waves")
    assert "simultaneous_actions" in rules(lint(bad))


def test_simultaneous_actions_fires_on_a_while_chain() -> None:
    bad = spec(action="rolls forward while a drone flies overhead")
    assert "simultaneous_actions" in rules(lint(bad))


def test_simultaneous_actions_does_not_fire_on_one_motion_or_a_static_while() -> None:
    assert "simultaneous_actions" not in rules(lint(spec()))
    assert "simultaneous_actions" not in rules(lint(spec(action="rolls forward while its lights stay on")))


def test_camera_missing_fires_when_the_camera_was_defaulted() -> None:
    assert "camera_missing" in rules(lint(spec(), filled=("camera",)))
    assert "camera_missing" in rules(lint(spec(camera="")))


def test_camera_missing_recognises_a_default_camera_even_without_notes() -> None:
    assert "camera_missing" in rules(lint(spec(camera=DEFAULT_CAMERA)))


def test_camera_missing_does_not_fire_on_a_chosen_camera() -> None:
    assert "camera_missing" not in rules(lint(spec(), filled=("finish",)))


def test_camera_conflict_is_an_error_for_push_in_and_pull_back() -> None:
    found = finding("camera_conflict", spec(camera="slow dolly-in then pull back to reveal the street"))
    assert found is not None and found.severity is Severity.ERROR


def test_camera_conflict_is_an_error_for_a_static_camera_that_pans() -> None:
    found = finding("camera_conflict", spec(camera="static wide shot, pan left"))
    assert found is not None and found.severity is Severity.ERROR


def test_camera_conflict_warns_about_two_compatible_moves() -> None:
    found = finding("camera_conflict", spec(camera="orbit around the robot and tilt up to the sky"))
    assert found is not None and found.severity is Severity.WARNING


def test_camera_conflict_accepts_a_mount_carrying_one_move() -> None:
    assert "camera_conflict" not in rules(lint(spec(camera="drone shot pulls back over the rooftops")))
    assert "camera_conflict" not in rules(lint(spec(camera="handheld close-up")))
    assert "camera_conflict" not in rules(lint(spec()))


def test_environment_competes_fires_on_other_characters() -> None:
    bad = spec(environment="a crowd of tourists taking photos")
    assert "environment_competes" in rules(lint(bad))


def test_environment_competes_fires_on_a_detail_pile() -> None:
    bad = spec(
        environment="wet cobblestones, flickering signs, steam vents, parked scooters, hanging laundry"
    )
    assert "environment_competes" in rules(lint(bad))


def test_environment_competes_does_not_fire_on_a_supporting_detail() -> None:
    assert "environment_competes" not in rules(lint(spec()))
    assert "environment_competes" not in rules(lint(spec(environment="light fog, wet asphalt")))


def test_environment_competes_ignores_the_subject_itself() -> None:
    assert "environment_competes" not in rules(
        lint(spec(subject="a sheepdog", environment="a muddy dog park"))
    )


def test_style_stack_is_an_error_for_noir_and_pastel() -> None:
    found = finding("style_stack", spec(finish="film noir, pastel palette"))
    assert found is not None and found.severity is Severity.ERROR


def test_style_stack_is_an_error_for_claymation_and_photoreal() -> None:
    found = finding("style_stack", spec(finish="claymation, photorealistic skin"))
    assert found is not None and found.severity is Severity.ERROR


def test_style_stack_warns_about_more_than_two_cues() -> None:
    found = finding("style_stack", spec(finish="vintage, dreamy, vhs, film grain"))
    assert found is not None and found.severity is Severity.WARNING


def test_style_stack_does_not_fire_on_two_compatible_cues() -> None:
    assert "style_stack" not in rules(lint(spec(finish="noir, film grain")))
    assert "style_stack" not in rules(lint(spec()))


def test_keyword_pile_fires_on_three_hype_words() -> None:
    bad = spec(finish="epic, stunning, award-winning, soft film grain")
    assert "keyword_pile" in rules(lint(bad))


def test_keyword_pile_fires_on_a_tag_list_without_hype() -> None:
    bad = spec(environment="neon, rain, alley", finish="bokeh, grain")
    assert "keyword_pile" in rules(lint(bad))


def test_keyword_pile_does_not_fire_on_one_hype_word_or_sentences() -> None:
    assert "keyword_pile" not in rules(lint(spec(finish="cinematic colour grade, soft film grain")))
    assert "keyword_pile" not in rules(lint(spec()))


def test_keyword_pile_ignores_layers_we_defaulted() -> None:
    assert "keyword_pile" not in rules(lint(spec(finish="natural light, clean colour"), filled=("finish",)))


def test_too_long_fires_on_a_dense_storyboard_paragraph() -> None:
    dense = spec(
        action=(
            "rolls through a rain-soaked neon alley at night past a noodle stall where steam rises from "
            "bubbling pots, then stops at a crossing and waits for a tram that rattles by, then turns into "
            "a courtyard full of lanterns and stray cats, then climbs a ramp to a loading dock where a "
            "courier waits with a clipboard and a thermos of tea under a flickering fluorescent tube, "
            "and finally beeps twice and flashes its headlights"
        )
    )
    found = [f for f in lint(dense) if f.rule == "too_long"]
    assert found and "words" in found[0].message


def test_too_long_does_not_fire_on_the_strong_example() -> None:
    assert "too_long" not in rules(lint(spec()))


def test_lint_lists_errors_before_warnings() -> None:
    findings = lint(spec(subject="", action="", camera="static, pan left"))
    severities = [f.severity for f in findings]
    assert severities == sorted(severities, key=[Severity.ERROR, Severity.WARNING, Severity.INFO].index)


def test_lint_never_raises_on_drafts_of_nasty_strings() -> None:
    for text in NASTY:
        drafted = draft_with_notes(text)
        assert isinstance(lint(drafted.spec, filled=drafted.filled), tuple)
        assert isinstance(lint(PromptSpec(text, text, text, text, text, text)), tuple)


# --- score -------------------------------------------------------------------------------------------


def test_score_is_100_when_clean_and_errors_cost_more_than_warnings_than_infos() -> None:
    def one(severity: Severity) -> Finding:
        return Finding(rule="x", severity=severity, message="m", fix="f")

    assert score(()) == 100
    error, warning, info = (
        score([one(Severity.ERROR)]),
        score([one(Severity.WARNING)]),
        score([one(Severity.INFO)]),
    )
    assert error < warning < info < 100


def test_score_never_drops_below_zero() -> None:
    assert score([Finding(rule="x", severity=Severity.ERROR, message="m", fix="f")] * 20) == 0


# --- render ------------------------------------------------------------------------------------------


def test_render_writes_the_layers_as_one_paragraph_in_order() -> None:
    assert render(spec()) == (
        "A small delivery robot rolls through a rain-soaked neon alley at night; "
        "slow dolly-in at robot height; "
        "puddles reflecting pink signs; shallow depth of field, soft film grain; 8-second product teaser."
    )


def test_render_skips_empty_layers() -> None:
    assert render(spec(environment="", finish="")) == (
        "A small delivery robot rolls through a rain-soaked neon alley at night; "
        "slow dolly-in at robot height; "
        "8-second product teaser."
    )


def test_render_appends_timed_beats_ending_at_the_clip_length() -> None:
    beats = (Beat("the robot rolls in", 0.0), Beat("it stops at a puddle", 2.0), Beat("it looks up", 4.5))
    text = render(replace(spec(), beats=beats), seconds=8)
    assert text.endswith(
        "Beats: 0.0–2.0 s: the robot rolls in; 2.0–4.5 s: it stops at a puddle; 4.5–8.0 s: it looks up."
    )


def test_render_takes_the_clip_length_from_the_intent_when_not_given() -> None:
    text = render(replace(spec(), beats=(Beat("rolls in", 0.0), Beat("looks up", 4.0))))
    assert text.endswith("0.0–4.0 s: rolls in; 4.0–8.0 s: looks up.")


def test_render_sorts_beats_by_start() -> None:
    text = render(replace(spec(), beats=(Beat("second", 3.0), Beat("first", 0.0))), seconds=6)
    assert text.endswith("0.0–3.0 s: first; 3.0–6.0 s: second.")


def test_render_lowercases_a_leading_function_word_mid_sentence() -> None:
    assert "; at night; " in render(spec(environment="At night"))


# --- apply_change ------------------------------------------------------------------------------------


def test_apply_change_golden_hour_appends_to_the_environment_only() -> None:
    changed = apply_change(spec(), "make it golden hour")
    assert changed.environment == "puddles reflecting pink signs, golden hour"
    assert changed_layers(spec(), changed) == ("environment",)


def test_apply_change_add_rain_appends_to_the_environment() -> None:
    assert apply_change(spec(), "add rain").environment == "puddles reflecting pink signs, rain"


def test_apply_change_a_lens_joins_the_existing_camera_move() -> None:
    changed = apply_change(spec(), "switch to 85mm")
    assert changed.camera == "slow dolly-in at robot height, 85mm lens"
    assert changed_layers(spec(), changed) == ("camera",)


def test_apply_change_a_new_camera_move_replaces_the_old_one() -> None:
    changed = apply_change(spec(), "camera orbits left")
    assert changed.camera == "camera orbits left"
    assert changed_layers(spec(), changed) == ("camera",)


def test_apply_change_a_style_appends_to_the_finish() -> None:
    changed = apply_change(spec(), "make it noir")
    assert changed.finish == "shallow depth of field, soft film grain, noir"
    assert changed_layers(spec(), changed) == ("finish",)


def test_apply_change_instead_replaces_the_finish() -> None:
    assert apply_change(spec(), "pastel colours instead").finish == "pastel colours"


def test_apply_change_a_motion_replaces_the_action_without_repeating_the_subject() -> None:
    changed = apply_change(spec(), "the robot spins in place")
    assert changed.action == "spins in place"
    assert changed_layers(spec(), changed) == ("action",)


def test_apply_change_then_appends_to_the_action() -> None:
    changed = apply_change(spec(), "then turns to camera")
    assert changed.action == "rolls through a rain-soaked neon alley at night, then turns to camera"


def test_apply_change_red_robot_instead_replaces_the_subject_and_keeps_the_article() -> None:
    changed = apply_change(spec(), "red robot instead")
    assert changed.subject == "A red robot"
    assert changed_layers(spec(), changed) == ("subject",)


def test_apply_change_other_words_modify_the_subject() -> None:
    assert (
        apply_change(spec(), "wearing a yellow scarf").subject
        == "A small delivery robot wearing a yellow scarf"
    )
    assert apply_change(spec(), "make the robot red").subject == "A small red delivery robot"
    assert apply_change(spec(), "with a tiny antenna").subject == "A small delivery robot with a tiny antenna"


def test_apply_change_a_duration_changes_only_the_number_in_the_intent() -> None:
    assert apply_change(spec(), "make it 6 seconds").intent == "6-second product teaser"


def test_apply_change_keeps_beats() -> None:
    beats = (Beat("rolls in", 0.0),)
    assert apply_change(replace(spec(), beats=beats), "add rain").beats == beats


def test_apply_change_of_nothing_changes_nothing() -> None:
    assert apply_change(spec(), "   ") == spec()


def test_apply_change_never_raises_on_nasty_strings() -> None:
    for text in NASTY:
        assert isinstance(apply_change(spec(), text), PromptSpec)


def test_changed_layers_lists_layers_in_order_and_beats_last() -> None:
    after = replace(spec(), camera="static", subject="a cat", beats=(Beat("x", 0.0),))
    assert changed_layers(spec(), after) == ("subject", "camera", "beats")
    assert changed_layers(spec(), spec()) == ()


# --- issue 10: honest scores, remix that knows the layers, storyboards from ideas ---------------------

DEMO = (
    "a small delivery robot rolls through a rain-soaked neon alley at night, slow dolly-in at robot height, "
    "soft film grain"
)


def test_a_draft_with_a_defaulted_layer_never_scores_100() -> None:
    drafted = draft_with_notes(DEMO)
    assert drafted.spec.environment == "a rain-soaked neon alley at night"
    findings = lint(drafted.spec, filled=drafted.filled)
    assert "intent" in drafted.filled and score(findings) < 100
    assert score(lint(drafted.spec, filled=())) == 100
    assert score(lint(spec(environment=""))) < 100


def test_fixes_are_written_for_the_ideas_own_subject() -> None:
    drafted = draft_with_notes("rain on a window")
    fix = next(f.fix for f in lint(drafted.spec, filled=drafted.filled) if f.rule == "no_motion")
    assert "the rain runs down the glass" in fix
    assert "rolls forward" not in fix


def test_a_keyword_pile_gets_a_rewrite_skeleton_in_the_formulas_order() -> None:
    drafted = draft_with_notes(WEAK)
    fix = next(f.fix for f in lint(drafted.spec, filled=drafted.filled) if f.rule == "keyword_pile")
    assert "robot [does one thing]; [one camera move]; neon, rain, alley; dramatic lighting" in fix.lower()
    assert "masterpiece" not in fix and "4k" not in fix


def test_the_storyboard_goal_proposes_beats_spaced_by_the_spacing_rule() -> None:
    drafted = draft(STRONG, goal=Goal.STORYBOARD)
    assert 2 <= len(drafted.beats) <= 4
    starts = [b.start for b in drafted.beats]
    assert starts[0] == 0 and all(b - a >= 1.5 for a, b in itertools.pairwise(starts))


def test_numbered_steps_become_beats() -> None:
    drafted = draft("1. A cat wakes up on a sofa 2. it stretches 3. it jumps off toward the camera")
    assert [b.text for b in drafted.beats] == [
        "A cat wakes up on a sofa",
        "it stretches",
        "it jumps off toward the camera",
    ]


def test_remix_make_the_robot_red_recolours_the_subject() -> None:
    before = replace(spec(), subject="A service robot")
    assert apply_change(before, "make the robot red").subject == "A red service robot"
    assert (
        apply_change(replace(spec(), subject="A blue robot"), "make the robot red").subject == "A red robot"
    )


def test_remix_shoot_it_on_16mm_changes_the_finish_not_the_action() -> None:
    changed = apply_change(spec(), "shoot it on 16mm")
    assert changed_layers(spec(), changed) == ("finish",)
    assert changed.finish == "shallow depth of field, soft film grain, shot on 16mm"


def test_remix_golden_hour_replaces_the_time_of_day_in_the_environment() -> None:
    before = replace(spec(), environment="a neon alley at night")
    changed = apply_change(before, "make it golden hour")
    assert changed.environment == "a neon alley at golden hour"
    assert layer_diff(before, changed) == (
        LayerChange(layer="environment", before="a neon alley at night", after="a neon alley at golden hour"),
    )


def test_remix_touching_two_layers_is_split_into_one_change_each() -> None:
    change = "make the robot red and shoot it on 16mm"
    assert split_change(change) == ("make the robot red", "shoot it on 16mm")
    assert changed_layers(spec(), apply_change(spec(), change)) == ("subject", "finish")
    assert split_change("make it golden hour") == ()
