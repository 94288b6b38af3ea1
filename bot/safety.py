"""The safety preflight: local rules for what video providers refuse, and OpenAI's moderation as a second opinion."""

from __future__ import annotations

import functools
import html
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import openai

from bot import media
from bot.domain import PromptSpec, Severity
from bot.prompts import render

log = logging.getLogger(__name__)

RULES: tuple[str, ...] = (
    "real_person",
    "copyrighted_character",
    "copyrighted_music",
    "sexual_content",
    "suggestive_content",
    "minor_at_risk",
    "reference_image_faces",
    "reference_image_format",
    "moderation",
)


@dataclass(frozen=True)
class SafetyFinding:
    """One preflight result: which rule, what is wrong in plain words, and a safer way to say the prompt.

    ERROR findings block the generation; WARNING findings go on the draft card and are left to the person.
    `safer` is the whole prompt rephrased with every flagged term swapped for a stand-in a provider accepts
    (for a moderation flag or an image, concrete advice instead). `term` is the words that triggered it.
    """

    rule: str
    message: str
    safer: str
    severity: Severity = Severity.ERROR
    term: str = ""


@dataclass(frozen=True)
class SafetyVerdict:
    """Whether a prompt may go to a provider. `note` says when a check could not run (e.g. moderation down)."""

    allowed: bool
    findings: tuple[SafetyFinding, ...] = ()
    note: str | None = None

    @property
    def blocking(self) -> tuple[SafetyFinding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def safer(self) -> str | None:
        """The safer phrasing to offer first: the first blocking finding's, else the first warning's."""
        first = next(iter(self.blocking or self.findings), None)
        return first.safer if first else None


def combine(*verdicts: SafetyVerdict) -> SafetyVerdict:
    """One verdict from several checks (local rules, moderation): blocked if any blocks; notes joined."""
    notes = [v.note for v in verdicts if v.note]
    return SafetyVerdict(
        allowed=all(v.allowed for v in verdicts),
        findings=tuple(f for v in verdicts for f in v.findings),
        note=" ".join(notes) if notes else None,
    )


# --- vocabularies -----------------------------------------------------------------------------------
# Each group: the stand-in a provider accepts → the words it replaces. Only full names and unambiguous
# single names are listed: "Drake" is also a duck, "Trump" a card game, "Goofy" an adjective.
# fmt: off

_PEOPLE: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "a politician in a dark suit": (
        "Donald Trump", "President Trump", "Joe Biden", "Biden", "Barack Obama", "Obama", "Michelle Obama",
        "Kamala Harris", "Hillary Clinton", "Bill Clinton", "Vladimir Putin", "Putin", "Xi Jinping",
        "Emmanuel Macron", "Angela Merkel", "Rishi Sunak", "Keir Starmer", "Boris Johnson", "Narendra Modi",
        "Volodymyr Zelensky", "Zelenskyy", "Justin Trudeau", "Kim Jong Un", "Abraham Lincoln",
        "Winston Churchill", "Pope Francis", "Pope Leo",
    ),
    "a tall astronaut in a white suit": (
        "Elon Musk", "Mark Zuckerberg", "Zuckerberg", "Jeff Bezos", "Bill Gates", "Steve Jobs", "Tim Cook",
        "Sam Altman", "Jensen Huang", "Sundar Pichai", "Satya Nadella", "Neil Armstrong", "Buzz Aldrin",
    ),
    "a singer in a sequined jacket": (
        "Taylor Swift", "Beyoncé", "Beyonce", "Rihanna", "Lady Gaga", "Ariana Grande", "Billie Eilish",
        "Dua Lipa", "Ed Sheeran", "Harry Styles", "Justin Bieber", "Adele", "Bruno Mars", "Shakira",
        "Michael Jackson", "Elvis Presley", "Elvis", "Freddie Mercury", "Frank Sinatra", "Olivia Rodrigo",
        "Sabrina Carpenter", "The Weeknd", "Bad Bunny", "Selena Gomez", "Miley Cyrus", "Katy Perry",
        "Elton John", "Mick Jagger", "John Lennon", "Paul McCartney", "Bob Dylan", "Bob Marley",
    ),
    "a rapper in a bright tracksuit": (
        "Kanye West", "Eminem", "Jay-Z", "Kendrick Lamar", "Snoop Dogg", "Nicki Minaj", "Travis Scott",
    ),
    "a four-piece band in matching suits": (
        "The Beatles", "Beatles", "Rolling Stones", "Led Zeppelin", "Pink Floyd", "ABBA", "Coldplay", "BTS",
        "Blackpink", "Metallica", "Radiohead", "Daft Punk", "Imagine Dragons", "Fleetwood Mac",
    ),
    "an actor in a tailored coat": (
        "Tom Cruise", "Brad Pitt", "Leonardo DiCaprio", "Scarlett Johansson", "Zendaya", "Keanu Reeves",
        "Dwayne Johnson", "Morgan Freeman", "Tom Hanks", "Will Smith", "Meryl Streep", "Margot Robbie",
        "Ryan Gosling", "Ryan Reynolds", "Timothée Chalamet", "Timothee Chalamet", "Jennifer Lawrence",
        "Jennifer Aniston", "Angelina Jolie", "Johnny Depp", "Robert Downey Jr", "Chris Hemsworth",
        "Pedro Pascal", "Marilyn Monroe", "Audrey Hepburn", "Charlie Chaplin", "Bruce Lee", "Jackie Chan",
        "Arnold Schwarzenegger", "Sydney Sweeney",
    ),
    "an athlete in a plain jersey": (
        "Cristiano Ronaldo", "Lionel Messi", "Messi", "LeBron James", "Michael Jordan", "Serena Williams",
        "Usain Bolt", "Tiger Woods", "Roger Federer", "Kylian Mbappé", "Kylian Mbappe", "Mbappé", "Mbappe",
        "Simone Biles", "Muhammad Ali", "Stephen Curry", "Neymar",
    ),
    "a monarch in ceremonial robes": (
        "King Charles", "Queen Elizabeth", "Prince William", "Prince Harry", "Princess Diana", "Kate Middleton",
    ),
    "a TV host in a bright blazer": (
        "Oprah Winfrey", "Oprah", "Kim Kardashian", "Jimmy Fallon", "MrBeast", "Mr Beast", "Gordon Ramsay",
    ),
    "a scientist in a lab coat": ("Albert Einstein", "Einstein", "Stephen Hawking", "Marie Curie", "Nikola Tesla"),
    # Words that point at a real, recognisable person without naming one.
    "a speaker in a dark suit at a podium": (
        "president", "presidents", "prime minister", "the pope", "senator", "chancellor of Germany",
        "the Queen of England", "the King of England", "the British royal family",
    ),
    "a stylish performer in a long coat": (
        "celebrity", "celebrities", "famous actor", "famous actress", "famous singer", "famous rapper",
        "famous musician", "famous athlete", "famous footballer", "famous person", "famous people",
        "famous influencer", "famous youtuber", "movie star", "film star", "pop star", "Hollywood star",
        "A-list star", "A-list actor", "public figure", "public figures",
    ),
    # Said next to a name ("a Taylor Swift lookalike"), the name's stand-in already covers it.
    "": ("lookalike", "look-alike", "deepfake", "deep fake"),
})

_CHARACTERS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "an original cartoon mouse": ("Mickey Mouse", "Mickey and Minnie", "Minnie Mouse", "Jerry the mouse"),
    "an original cartoon duck": ("Donald Duck", "Daffy Duck", "Scrooge McDuck"),
    "an original cartoon rabbit": ("Bugs Bunny", "Roger Rabbit"),
    "an original masked acrobat hero": ("Spider-Man", "Spiderman", "Spider-Gwen", "Miles Morales", "Peter Parker"),
    "an original caped hero in a dark suit": ("Batman", "Bruce Wayne", "the Dark Knight"),
    "an original caped flying hero": ("Superman", "Clark Kent", "Supergirl", "Wonder Woman"),
    "an original armoured hero": (
        "Iron Man", "Tony Stark", "Captain America", "the Incredible Hulk", "Black Panther", "Deadpool",
        "Wolverine from X-Men", "the Avengers", "Avengers", "X-Men", "Thanos", "Optimus Prime",
    ),
    "an original masked villain in black armour": ("Darth Vader", "Kylo Ren"),
    "an original armoured soldier": ("stormtrooper", "stormtroopers", "Master Chief"),
    "an original space saga": ("Star Wars", "Star Trek"),
    "a glowing energy sword": ("lightsaber", "lightsabers", "light saber"),
    "an original wise little alien": ("Yoda", "Baby Yoda", "Grogu"),
    "an original space pilot": ("Luke Skywalker", "Han Solo", "Princess Leia", "Buzz Lightyear"),
    "an original small electric creature": ("Pikachu", "Pokémon", "Pokemon", "Charizard", "Jigglypuff"),
    "an original cheerful plumber": ("Super Mario", "Mario", "Luigi", "Princess Peach", "Bowser"),
    "an original go-kart": ("Mario Kart",),
    "an original speedy blue hedgehog": ("Sonic the Hedgehog",),
    "an original ice queen in a flowing gown": ("Elsa", "Princess Anna of Arendelle", "Olaf the snowman"),
    "an original young wizard": ("Harry Potter", "Hermione Granger", "Hogwarts", "Dumbledore", "Voldemort"),
    "an original grey-bearded wizard": ("Gandalf",),
    "an original halfling adventurer": ("Frodo", "Bilbo Baggins", "Lord of the Rings", "hobbit", "hobbits", "Gollum"),
    "an original friendly ogre": ("Shrek",),
    "an original cartoon family": ("The Simpsons", "Simpsons", "Homer Simpson", "Bart Simpson", "Family Guy"),
    "an original cheerful sea sponge": ("SpongeBob", "SpongeBob SquarePants", "Patrick Star"),
    "an original honey-loving bear": ("Winnie the Pooh", "Winnie-the-Pooh"),
    "an original cartoon cat": ("Hello Kitty", "Garfield", "Tom and Jerry", "Sylvester the cat", "Puss in Boots"),
    "an original cartoon dog": ("Snoopy", "Scooby-Doo", "Scooby Doo", "Pluto the dog"),
    "an original giant monster": ("Godzilla", "King Kong"),
    "an original suave spy": ("James Bond", "007"),
    "an original adventurer": ("Indiana Jones", "Lara Croft", "Jack Sparrow"),
    "an original fashion doll": ("Barbie",),
    "an original blocky game world": ("Minecraft", "Fortnite", "Roblox"),
    "an original princess": ("Disney princess", "Disney princesses", "Moana", "Ariel the mermaid"),
    "an original toy cowboy": ("Toy Story", "Woody from Toy Story"),
    "an original dinosaur park": ("Jurassic Park", "Jurassic World"),
    "an original fantasy kingdom": ("Game of Thrones", "Zelda", "Hyrule"),
    "an original round yellow creature": ("Pac-Man", "Pacman", "Despicable Me"),
})

_MUSIC_STAND_IN = "an original instrumental track"
# Bands that are also ordinary words count only in a music phrase ("a Queen song"), never on their own.
_MUSIC_ONLY_BANDS = ("Queen", "Nirvana", "Oasis", "U2", "AC/DC", "The Eagles", "Eagles")
# Titles that only ever mean the song.
_SONGS = (
    "Bohemian Rhapsody", "Billie Jean", "Smells Like Teen Spirit", "Stairway to Heaven", "Hotel California",
    "Despacito", "Gangnam Style", "Blinding Lights", "Uptown Funk", "Baby Shark", "Dancing Queen",
    "Wonderwall", "Purple Rain", "Sweet Child O' Mine", "Never Gonna Give You Up", "Hey Jude",
    "Shape of You", "Rolling in the Deep", "Like a Prayer", "Seven Nation Army", "Mr. Brightside",
    "Eye of the Tiger", "We Will Rock You", "Don't Stop Believin'", "All I Want for Christmas Is You",
)
# Titles that are also ordinary words: a song only right after a music cue ("playing Let It Go") or quoted.
_CUED_SONGS = ("Let It Go", "Shake It Off", "Bad Guy", "Let It Be", "Anti-Hero", "Levitating", "Jingle Bell Rock")
_MUSIC_NOUNS = r"(?:songs?|tracks?|music|hits?|albums?|tunes?|singles?|anthems?|ballads?|soundtrack|cover)"
_MUSIC_CUES = (
    r"(?:playing|plays|played|sings|singing|sung|sang|blasting|blasts|humming|hums|whistling|"
    r"danc(?:e|es|ing)(?:\s+along)?\s+to|set\s+to|soundtracked\s+by|to\s+the\s+(?:tune|song|sound|beat)\s+of|"
    r"(?:songs?|tracks?|music|tune)\s*(?::|called|titled|named))"
)
_GENERIC_MUSIC = (
    "famous song", "famous songs", "popular song", "popular songs", "hit song", "hit songs", "pop hit",
    "chart-topping song", "chart topper", "top 40 hit", "copyrighted music", "copyrighted song",
    "radio hit", "well-known song",
)

# Word → stand-in ("" leaves it out).
_EXPLICIT: Mapping[str, str] = MappingProxyType({
    "nude": "fully clothed", "naked": "fully clothed", "nudity": "", "topless": "fully clothed",
    "undressed": "fully clothed", "undressing": "adjusting a jacket", "sex": "romantic", "sexual": "romantic",
    "sexually": "", "erotic": "romantic", "porn": "", "porno": "", "pornographic": "", "xxx": "",
    "nsfw": "", "stripper": "dancer", "striptease": "dance", "strip tease": "dance", "orgasm": "",
    "fetish": "", "genitals": "", "onlyfans": "",
})
_SUGGESTIVE: Mapping[str, str] = MappingProxyType({
    "sexy": "confident", "seductive": "warm", "seductively": "warmly", "sensual": "graceful",
    "sultry": "confident", "lingerie": "a casual outfit", "provocative": "bold", "provocatively": "boldly",
    "bikini": "a summer outfit", "skimpy": "casual", "lap dance": "dance", "twerking": "dancing",
    "twerks": "dances", "steamy": "warm", "busty": "",
})
# Harm that is never shown happening to a child. Playful fights and swords stay fine ("a boy fighting a
# dragon"); words with innocent everyday senses ("beating heart", "bath bomb", "smoking volcano") are left out.
_VIOLENT: Mapping[str, str] = MappingProxyType({
    "gun": "flashlight", "guns": "flashlights", "rifle": "flashlight", "pistol": "flashlight",
    "handgun": "flashlight", "shotgun": "flashlight", "firearm": "flashlight", "knife": "paintbrush",
    "knives": "paintbrushes", "machete": "paintbrush", "weapon": "tool", "weapons": "tools",
    "blood": "paint", "bloody": "paint-splashed", "bleeding": "laughing", "gore": "mess", "gory": "messy",
    "kill": "chase", "kills": "chases", "killing": "chasing", "killed": "chased", "murder": "chase",
    "murdered": "chased", "stab": "tap", "stabs": "taps", "stabbing": "tapping", "stabbed": "tapped",
    "abuse": "care", "abused": "cared for", "abusing": "caring for", "torture": "tickle", "tortured": "tickled",
    "beat up": "cheer on", "beaten up": "cheered on", "wounded": "muddy", "corpse": "scarecrow",
    "dead body": "scarecrow", "shooting at": "waving at", "shoots at": "waves at", "gunfire": "fireworks",
    "war zone": "busy street", "hostage": "guest", "kidnapped": "found", "kidnapping": "finding",
    "drowning": "swimming", "cigarette": "lollipop", "drunk": "sleepy", "beer": "lemonade",
    "alcohol": "juice", "drugs": "sweets",
})
_MINORS = (
    "child", "children", "kid", "kids", "kiddo", "toddler", "toddlers", "baby", "babies", "infant", "infants",
    "teen", "teens", "teenager", "teenagers", "teenage", "preteen", "tween", "minor", "minors", "underage",
    "schoolgirl", "schoolgirls", "schoolboy", "schoolboys", "little girl", "little boy", "young girl",
    "young boy", "girl", "girls", "boy", "boys", "school uniform",
)
# Innocent neighbours: "the naked eye", "nude lipstick", "baby blue", "a minor key", "a water gun", "blood orange".
_NOT_EXPLICIT_BEFORE = frozenset({"eye", "flame", "flames", "lipstick", "heels", "shoes", "tone", "tones", "colour",
                                  "color"})
_NOT_MINOR_BEFORE = frozenset({"blue", "pink", "shark", "steps", "grand", "carrots", "corn", "key", "chord",
                               "chords", "detail", "details", "league", "scale", "gloves"})
_NOT_VIOLENT_AFTER = frozenset({"water", "nerf", "toy", "glue", "squirt", "bubble", "spray", "paint", "foam",
                                "butter", "cap"})
_NOT_VIOLENT_BEFORE = frozenset({"orange", "oranges", "moon", "red"})
# fmt: on
_AGE = re.compile(r"(?<![^\W_])(?:[1-9]|1[0-7])[\s-]*(?:years?|yrs?)[\s-]*old(?![^\W_])", re.IGNORECASE)


# --- matching ---------------------------------------------------------------------------------------

_ARTICLE = r"(?:(?:the|an?)\s+)?"
# Letters and digits only: "_" is Slack's italics, so "_Mickey Mouse_" must still match.
_BEFORE = r"(?<![^\W_])"
_AFTER = r"(?![^\W_])"
_NEIGHBOUR = re.compile(r"[^\W_]+")


def _key(text: str) -> str:
    """Compare without case, articles, spacing, hyphens, dots and quotes: "the Spider Man" = "spider-man"."""
    text = re.sub(r"^(?:the|an?)\s+", "", text.strip().strip("\"“”'"), flags=re.IGNORECASE)
    return re.sub(r"[\s\-.'\"“”/]+", "", text.lower())


def _alternatives(terms: Iterable[str]) -> str:
    # Longest first, so "Mickey Mouse" wins over "Mickey" at the same position.
    ordered = sorted(set(terms), key=len, reverse=True)
    return "|".join(r"[\s\-]*".join(re.escape(w) for w in re.split(r"[\s\-]+", t)) for t in ordered)


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    term: str
    stand_in: str
    rule: str
    severity: Severity
    why: str

    def replacement(self, text: str) -> str:
        stand_in = self.stand_in
        if stand_in and text[self.end : self.end + 2] in ("'s", "s'"):
            # "Taylor Swift's guitar" → "a singer's guitar", not "a singer in a sequined jacket's guitar".
            stand_in = re.split(r"\s(?:in|with|at|from)\s", stand_in)[0]
        before = text[: self.start].rstrip(" \"“'*_")
        previous = before.split()[-1].lower() if before.split() else ""
        if previous in ("a", "an", "the", "his", "her", "their", "its", "my", "our", "your", "some"):
            # "in a bikini" → "in a summer outfit", never "in a a summer outfit".
            stand_in = re.sub(r"^(?:an?|the|some)\s+", "", stand_in, flags=re.IGNORECASE)
        if not before or before.endswith((".", "!", "?")):
            stand_in = stand_in[:1].upper() + stand_in[1:]
        return stand_in


@dataclass(frozen=True)
class _Table:
    """One rule's vocabulary: a pattern whose `term…` group, looked up by `_key`, gives the stand-in."""

    rule: str
    severity: Severity
    pattern: re.Pattern[str]
    stand_ins: Mapping[str, str]
    why: str
    default: str = ""
    not_after: frozenset[str] = frozenset()
    not_before: frozenset[str] = frozenset()

    def hits(self, text: str) -> list[_Hit]:
        found = []
        for match in self.pattern.finditer(text):
            name = next(n for n, v in match.groupdict().items() if n.startswith("term") and v is not None)
            start, end = match.span(name)
            previous = _NEIGHBOUR.findall(text[max(0, start - 30) : start])
            following = _NEIGHBOUR.match(text[end:].lstrip())
            if previous and previous[-1].lower() in self.not_after:
                continue
            if following and following.group(0).lower() in self.not_before:
                continue
            term = match.group(name)
            stand_in = self.stand_ins.get(_key(term), self.default)
            # The article is replaced along with the name ("a Beatles song" → "an original…") but not quoted.
            shown = re.sub(r"^(?:the|an?)\s+", "", term.strip(), flags=re.IGNORECASE)
            found.append(_Hit(start, end, shown, stand_in, self.rule, self.severity, self.why))
        return found


def _table(
    rule: str,
    severity: Severity,
    groups: Mapping[str, Iterable[str]],
    why: str,
    *,
    article: bool = True,
    not_after: Iterable[str] = (),
    not_before: Iterable[str] = (),
) -> _Table:
    stand_ins = {_key(term): stand_in for stand_in, terms in groups.items() for term in terms}
    alternatives = _alternatives(term for terms in groups.values() for term in terms)
    lead = _ARTICLE if article else ""
    pattern = re.compile(rf"{_BEFORE}(?P<term>{lead}(?:{alternatives})){_AFTER}", re.IGNORECASE)
    return _Table(
        rule,
        severity,
        pattern,
        stand_ins,
        why,
        not_after=frozenset(not_after),
        not_before=frozenset(not_before),
    )


def _grouped(words: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Word → stand-in, turned round into stand-in → words."""
    groups: dict[str, tuple[str, ...]] = {}
    for word, stand_in in words.items():
        groups[stand_in] = (*groups.get(stand_in, ()), word)
    return groups


@functools.cache
def _tables() -> tuple[_Table, ...]:
    """The vocabularies compiled once, on first use (nothing is built at import)."""
    artists = _alternatives(
        [*(n for names in _PEOPLE.values() for n in names if n[:1].isupper()), *_MUSIC_ONLY_BANDS]
    )
    music = re.compile(
        rf"{_BEFORE}(?P<term>{_ARTICLE}(?:{artists})(?:'s)?\s+{_MUSIC_NOUNS}){_AFTER}"
        rf"|{_BEFORE}(?P<term2>{_ARTICLE}{_MUSIC_NOUNS}\s+(?:by|from)\s+(?:the\s+)?(?:{artists})){_AFTER}"
        rf"|{_BEFORE}(?P<term3>[\"“]?(?:{_alternatives(_SONGS)})[\"”]?)(?![^\W_])"
        rf"|{_BEFORE}{_MUSIC_CUES}\s+(?P<term4>[\"“]?(?:{_alternatives(_CUED_SONGS)})[\"”]?){_AFTER}"
        rf"|(?P<term5>[\"“](?:{_alternatives(_CUED_SONGS)})[\"”])",
        re.IGNORECASE,
    )
    return (
        _table(
            "real_person",
            Severity.ERROR,
            _PEOPLE,
            "is a real person; video providers refuse real people, public figures included.",
        ),
        _table(
            "copyrighted_character",
            Severity.ERROR,
            _CHARACTERS,
            "is a copyrighted character or franchise; video providers refuse them.",
        ),
        _Table(
            "copyrighted_music",
            Severity.ERROR,
            music,
            {},
            "is copyrighted music; video providers refuse songs and artists by name.",
            default=_MUSIC_STAND_IN,
        ),
        _table(
            "copyrighted_music",
            Severity.WARNING,
            {_MUSIC_STAND_IN: _GENERIC_MUSIC},
            "asks for well-known music, which providers refuse when they recognise it; describe the mood.",
        ),
        _table(
            "sexual_content",
            Severity.ERROR,
            _grouped(_EXPLICIT),
            "is sexual content; video providers only make clips suitable for all audiences.",
            article=False,
            not_before=_NOT_EXPLICIT_BEFORE,
        ),
        _table(
            "suggestive_content",
            Severity.WARNING,
            _grouped(_SUGGESTIVE),
            "reads as suggestive, which providers often refuse.",
            article=False,
        ),
    )


@functools.cache
def _minor_tables() -> tuple[_Table, _Table]:
    minors = _table(
        "minor_at_risk",
        Severity.ERROR,
        {"": _MINORS},
        "",
        article=False,
        not_before=_NOT_MINOR_BEFORE,
    )
    violent = _table(
        "minor_at_risk",
        Severity.ERROR,
        _grouped(_VIOLENT),
        "",
        article=False,
        not_after=_NOT_VIOLENT_AFTER,
        not_before=_NOT_VIOLENT_BEFORE,
    )
    return minors, violent


def _minor_hits(text: str, sexual: list[_Hit]) -> list[_Hit]:
    """A child is fine on their own ("a kid flying a kite"); next to sexual or violent words, never."""
    minors, violent = _minor_tables()
    who = [h.term for h in minors.hits(text)] + [m.group(0) for m in _AGE.finditer(text)]
    risks = [*sexual, *violent.hits(text)]
    if not who or not risks:
        return []
    why = f"puts a young person (“{who[0]}”) in a sexual or violent scene; providers refuse any of it."
    return [
        _Hit(h.start, h.end, h.term, h.stand_in, "minor_at_risk", Severity.ERROR, why)
        for h in sorted(risks, key=lambda h: h.start)
    ]


def normalise(text: str) -> str:
    """The text as the person meant it: Slack's &amp;/&lt;/&gt; undone, NFKC, curly apostrophes straightened."""
    text = html.unescape(text) if re.search(r"&(?:amp|lt|gt|quot|#\d+);", text) else text
    return unicodedata.normalize("NFKC", text).replace("’", "'").replace("‘", "'")


def _rephrase(text: str, hits: list[_Hit]) -> str:
    """Every hit replaced by its stand-in (the longest wins where they overlap), spacing tidied."""
    chosen: list[_Hit] = []
    for hit in sorted(hits, key=lambda h: (h.start, -(h.end - h.start))):
        if not chosen or hit.start >= chosen[-1].end:
            chosen.append(hit)
    out = text
    for hit in reversed(chosen):
        end = hit.end
        if hit.stand_in == _MUSIC_STAND_IN:
            # An original track has no artist: "Bohemian Rhapsody by Queen" loses the "by Queen" too.
            credit = re.match(r"\s+by\s+(?:[A-Z0-9][\w'’&.-]*(?:\s+|$)){1,4}", text[end:])
            end += len(credit.group(0).rstrip()) if credit else 0
        out = out[: hit.start] + hit.replacement(text) + out[end:]
    out = re.sub(r"[ \t]{2,}", " ", out)
    out = re.sub(r"\s+([,;.!?])", r"\1", out)
    out = re.sub(r"([,;])(?:\s*[,;])+", r"\1", out)
    return re.sub(r"^[\s,;]+", "", out).strip()


def check_text(text: str) -> SafetyVerdict:
    """The local rules over any prompt text (a rendered prompt, a remix change, an extension's next beat)."""
    text = normalise(text)
    hits = [hit for table in _tables() for hit in table.hits(text)]
    sexual = [h for h in hits if h.rule in ("sexual_content", "suggestive_content")]
    minor = _minor_hits(text, sexual)
    if minor:
        # With a young person present, the sexual words belong to that (stronger) finding.
        hits = [h for h in hits if h not in sexual] + minor
    blocking = [h for h in hits if h.severity is Severity.ERROR]
    safer = _rephrase(text, blocking or hits)
    findings: list[SafetyFinding] = []
    seen: set[tuple[str, str]] = set()
    for hit in sorted(hits, key=lambda h: (h.severity is not Severity.ERROR, h.start)):
        if (hit.rule, _key(hit.term)) in seen:
            continue
        seen.add((hit.rule, _key(hit.term)))
        instead = f" Try “{hit.stand_in}” instead." if hit.stand_in else " Leave it out."
        findings.append(
            SafetyFinding(
                rule=hit.rule,
                message=f"“{hit.term}” {hit.why}{instead}",
                safer=safer,
                severity=hit.severity,
                term=hit.term,
            )
        )
    return SafetyVerdict(allowed=not blocking, findings=tuple(findings))


# --- reference images -------------------------------------------------------------------------------


def _image_label(head: bytes) -> str | None:
    kind = media.image_kind(head)
    return {"png": "PNG", "jpeg": "JPEG", "webp": "WebP"}.get(kind or "")


def check_reference(reference: Path) -> tuple[SafetyFinding, ...]:
    """What can honestly be said about a reference image without a face detector."""
    try:
        with reference.open("rb") as handle:
            head = handle.read(16)
    except OSError:
        head = b""
    if _image_label(head) is None:
        return (
            SafetyFinding(
                rule="reference_image_format",
                message="The reference image is not a PNG, JPEG or WebP file, which is what providers accept.",
                safer="Attach the first frame as a PNG, JPEG or WebP image.",
                severity=Severity.ERROR,
            ),
        )
    return (
        SafetyFinding(
            rule="reference_image_faces",
            message=(
                "Providers reject reference images that show a real person's face. The bot cannot detect "
                "faces, so please check this image by eye before generating."
            ),
            safer="Use an image without a real person's face: the scene alone, an illustration, or a figure "
            "seen from behind.",
            severity=Severity.WARNING,
        ),
    )


def check(spec: PromptSpec, *, reference: Path | None = None) -> SafetyVerdict:
    """The preflight for one draft: its rendered prompt (beats included) and its reference image, if any."""
    verdict = check_text(render(spec))
    if reference is None:
        return verdict
    findings = verdict.findings + check_reference(reference)
    return SafetyVerdict(allowed=not any(f.severity is Severity.ERROR for f in findings), findings=findings)


# --- moderation -------------------------------------------------------------------------------------

_CATEGORY_WORDS: Mapping[str, str] = MappingProxyType(
    {
        "harassment": "harassment",
        "harassment/threatening": "threats against someone",
        "hate": "hateful content",
        "hate/threatening": "hateful threats",
        "illicit": "help with illegal activity",
        "illicit/violent": "help with violent crime or weapons",
        "self-harm": "self-harm",
        "self-harm/instructions": "instructions for self-harm",
        "self-harm/intent": "intent to self-harm",
        "sexual": "sexual content",
        "sexual/minors": "sexual content involving minors",
        "violence": "violence",
        "violence/graphic": "graphic violence",
    }
)


def _failure(err: Exception) -> str:
    if isinstance(err, openai.APITimeoutError):
        return "timed out"
    if isinstance(err, openai.APIConnectionError):
        return "could not reach OpenAI"
    if isinstance(err, openai.RateLimitError):
        return "was rate limited"
    if isinstance(err, openai.APIStatusError):
        return f"failed (HTTP {err.status_code})"
    return "gave an answer the bot could not read"


class ModerationCheck:
    """OpenAI's moderation model as a second opinion on the prompt; its own failures never block a draft."""

    def __init__(
        self, *, client: openai.OpenAI, model: str = "omni-moderation-latest", timeout: float = 10.0
    ) -> None:
        # One quick retry at most: someone is waiting on the draft card.
        self._client = client.with_options(timeout=timeout, max_retries=1)
        self._model = model

    def check_text(self, text: str) -> SafetyVerdict:
        """Flagged categories block, named in plain words. Any failure allows, with a note saying so."""
        try:
            response = self._client.moderations.create(model=self._model, input=normalise(text))
            result = response.results[0]
            categories = result.categories.model_dump(by_alias=True)
        except (openai.OpenAIError, IndexError) as err:
            reason = _failure(err)
            log.warning("moderation check %s: %s", reason, err)
            return SafetyVerdict(
                allowed=True, note=f"The moderation check {reason}, so only the bot's own rules were applied."
            )
        if not result.flagged:
            return SafetyVerdict(allowed=True)
        flagged = [name for name, value in categories.items() if value is True] or ["unsafe content"]
        findings = tuple(
            SafetyFinding(
                rule="moderation",
                message=f"OpenAI's moderation flagged this prompt for {_CATEGORY_WORDS.get(name, name)}.",
                safer=f"Describe the scene without {_CATEGORY_WORDS.get(name, name)}: keep the subject, place "
                "and camera, and show a calmer moment instead.",
                severity=Severity.ERROR,
                term=name,
            )
            for name in flagged
        )
        return SafetyVerdict(allowed=False, findings=findings)


def build_moderation(
    *, api_key: str | None, base_url: str | None, model: str = "omni-moderation-latest"
) -> ModerationCheck | None:
    """The moderation second opinion when an OpenAI key is configured; the local rules always apply."""
    if not api_key:
        return None
    return ModerationCheck(client=openai.OpenAI(api_key=api_key, base_url=base_url or None), model=model)
