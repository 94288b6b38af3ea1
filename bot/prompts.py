"""Prompts in the Sora grammar: goal presets, offline drafting, the checklist lint, rendering, remix edits."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType

from bot.domain import Aspect, Finding, PromptSpec, Severity

# --- goals and presets -----------------------------------------------------------------------------


class Goal(StrEnum):
    AD_CONCEPT = "ad_concept"
    SOCIAL_TEASER = "social_teaser"
    PRODUCT_HERO = "product_hero"
    AMBIENT_LOOP = "ambient_loop"
    STORYBOARD = "storyboard"
    STYLE_STUDY = "style_study"


@dataclass(frozen=True)
class GoalPreset:
    """What a goal implies: output shape, how many variations to vote on, and defaults for missing layers."""

    goal: Goal
    label: str
    aspect: Aspect
    seconds: int
    variations: int
    guidance: str
    camera: str
    environment: str
    finish: str

    @property
    def intent(self) -> str:
        return f"{self.seconds}-second {self.label.lower()}, {self.aspect.value}"


PRESETS: Mapping[Goal, GoalPreset] = MappingProxyType(
    {
        Goal.AD_CONCEPT: GoalPreset(
            goal=Goal.AD_CONCEPT,
            label="Ad concept",
            aspect=Aspect.LANDSCAPE,
            seconds=8,
            variations=3,
            guidance="One product or character, one clear action; end on a hero beat a logo can sit on.",
            camera="slow push-in at subject height",
            environment="a clean, uncluttered setting",
            finish="clean commercial light, crisp colour",
        ),
        Goal.SOCIAL_TEASER: GoalPreset(
            goal=Goal.SOCIAL_TEASER,
            label="Social teaser",
            aspect=Aspect.PORTRAIT,
            seconds=6,
            variations=3,
            guidance="Hook in the first second; keep the subject centred so the vertical crop holds.",
            camera="handheld at eye level, subject centred",
            environment="a simple setting that reads on a phone screen",
            finish="bright natural light, punchy colour",
        ),
        Goal.PRODUCT_HERO: GoalPreset(
            goal=Goal.PRODUCT_HERO,
            label="Product hero",
            aspect=Aspect.LANDSCAPE,
            seconds=6,
            variations=2,
            guidance="The product is the only subject; light it like a catalogue and let it turn or open.",
            camera="slow orbit around the product",
            environment="a seamless studio backdrop",
            finish="soft studio light, clean reflections",
        ),
        Goal.AMBIENT_LOOP: GoalPreset(
            goal=Goal.AMBIENT_LOOP,
            label="Ambient loop",
            aspect=Aspect.LANDSCAPE,
            seconds=8,
            variations=2,
            guidance="Gentle, continuous motion that can repeat; no cuts, no big reveals.",
            camera="locked-off static frame",
            environment="a calm, spacious setting",
            finish="soft natural light, gentle colour grade",
        ),
        Goal.STORYBOARD: GoalPreset(
            goal=Goal.STORYBOARD,
            label="Storyboard",
            aspect=Aspect.LANDSCAPE,
            seconds=12,
            variations=2,
            guidance="2–4 beats at least 2 seconds apart; one camera behaviour across the whole clip.",
            camera="slow push-in at subject height",
            environment="a simple, readable setting",
            finish="natural light, clean colour",
        ),
        Goal.STYLE_STUDY: GoalPreset(
            goal=Goal.STYLE_STUDY,
            label="Style study",
            aspect=Aspect.SQUARE,
            seconds=4,
            variations=4,
            guidance="Keep subject and camera fixed and vary only the finish, so the vote is about style.",
            camera="locked-off medium shot",
            environment="a plain backdrop",
            finish="natural light, clean colour",
        ),
    }
)

DEFAULT_CAMERA = "slow push-in at subject height"
DEFAULT_ENVIRONMENT = "a simple, uncluttered setting"
DEFAULT_FINISH = "natural light, clean colour"
DEFAULT_INTENT = "short clip, 16:9"

# Defaults are recognisable on purpose: a spec saved without its `filled` notes still lints as "no camera".
DEFAULT_CAMERAS = frozenset({DEFAULT_CAMERA} | {p.camera for p in PRESETS.values()})

_GOAL_ALIASES: Mapping[str, Goal] = MappingProxyType(
    {
        **{g.value: g for g in Goal},
        **{g.value.replace("_", ""): g for g in Goal},
        "ad": Goal.AD_CONCEPT,
        "ads": Goal.AD_CONCEPT,
        "advert": Goal.AD_CONCEPT,
        "commercial": Goal.AD_CONCEPT,
        "concept": Goal.AD_CONCEPT,
        "social": Goal.SOCIAL_TEASER,
        "teaser": Goal.SOCIAL_TEASER,
        "reel": Goal.SOCIAL_TEASER,
        "vertical": Goal.SOCIAL_TEASER,
        "tiktok": Goal.SOCIAL_TEASER,
        "product": Goal.PRODUCT_HERO,
        "hero": Goal.PRODUCT_HERO,
        "packshot": Goal.PRODUCT_HERO,
        "loop": Goal.AMBIENT_LOOP,
        "ambient": Goal.AMBIENT_LOOP,
        "background": Goal.AMBIENT_LOOP,
        "story": Goal.STORYBOARD,
        "board": Goal.STORYBOARD,
        "beats": Goal.STORYBOARD,
        "style": Goal.STYLE_STUDY,
        "study": Goal.STYLE_STUDY,
        "look": Goal.STYLE_STUDY,
    }
)


def parse_goal(text: str) -> Goal | None:
    """A goal from its name or a common alias ("social", "hero", "loop"…); None when nothing matches."""
    key = re.sub(r"[\s\-_]+", "_", text.strip().lower()).strip("_")
    return _GOAL_ALIASES.get(key) or _GOAL_ALIASES.get(key.replace("_", ""))


# --- vocabularies ----------------------------------------------------------------------------------
# fmt: off


def _key(term: str) -> str:
    """Spacing and hyphens vary in the wild ("dolly-in", "dolly in", "closeup"); compare without them."""
    return re.sub(r"[\s\-]+", "", term.lower())


def _pattern(terms: Iterable[str]) -> re.Pattern[str]:
    # Longest first, so "tracking shot" wins over "tracking" at the same position.
    ordered = sorted({t.lower() for t in terms}, key=len, reverse=True)
    alternatives = "|".join(r"[\s\-]*".join(re.escape(w) for w in re.split(r"[\s\-]+", t)) for t in ordered)
    return re.compile(rf"(?<![\w'])(?:{alternatives})(?![\w'])", re.IGNORECASE)


_CAMERA_MOVES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "push-in": (
            "dolly in", "dollies in", "dollying in", "dolly forward", "push in", "pushes in", "pushing in",
            "zoom in", "zooms in", "zooming in", "slow zoom", "crash zoom", "creeps in", "creep in",
            "moves in", "move in", "moving in",
        ),
        "pull-back": (
            "pull back", "pulls back", "pulling back", "pull out", "pulls out", "pulling out", "pull away",
            "pulls away", "dolly out", "dollies out", "dolly back", "zoom out", "zooms out", "zooming out",
            "backs away", "retreats",
        ),
        "dolly": ("dolly", "dolly shot", "dollies", "dollying"),
        "pan": ("pan", "pans", "panning", "whip pan", "swish pan", "pan left", "pan right"),
        "tilt": ("tilt", "tilts", "tilting", "tilt up", "tilt down", "tilts up", "tilts down"),
        "orbit": ("orbit", "orbits", "orbiting", "arc shot", "arcs around", "circles around", "360 spin"),
        "tracking": (
            "tracking", "tracking shot", "tracks alongside", "tracks with", "follow shot", "following shot",
            "follow cam", "camera follows", "trucking", "truck left", "truck right", "steadicam", "gimbal",
        ),
        "crane": (
            "crane", "crane shot", "crane up", "crane down", "cranes up", "cranes down", "jib", "boom up",
        ),
        "handheld": ("handheld", "hand held", "shaky cam", "shoulder mounted", "run and gun"),
        "static": (
            "static", "static shot", "static frame", "locked off", "tripod", "fixed camera", "still camera",
            "stationary camera", "no camera movement",
        ),
        "aerial": (
            "aerial", "aerial shot", "drone shot", "drone view", "drone footage", "flyover", "fly over",
        ),
        "zoom": ("zoom", "zooms", "zooming"),
    }
)
_MOVE_OF: Mapping[str, str] = MappingProxyType(
    {_key(term): move for move, terms in _CAMERA_MOVES.items() for term in terms}
)
_CAMERA_FRAMING = (
    "close up", "extreme close up", "medium close up", "macro", "wide shot", "wide angle", "medium shot",
    "long shot", "full shot", "establishing shot", "two shot", "over the shoulder", "pov", "point of view",
    "first person", "low angle", "high angle", "dutch angle", "eye level", "bird's eye", "top down",
    "overhead shot", "worm's eye", "rack focus", "focus pull", "telephoto", "fisheye", "lens", "framing",
    "camera angle", "profile shot", "insert shot",
)
_CAMERA = _pattern([*(t for terms in _CAMERA_MOVES.values() for t in terms), *_CAMERA_FRAMING])
# 35mm and friends are film formats (a finish); other focal lengths are lens choices (a camera decision).
_FILM_FORMAT = re.compile(r"\b(?:8|16|35|65|70)\s?mm\b(?!\s+lens)|\bsuper\s?8\b", re.IGNORECASE)
_LENS = re.compile(r"\b\d{1,3}\s?mm\s+lens\b|\b(?!(?:8|16|35|65|70)\s?mm)\d{2,3}\s?mm\b", re.IGNORECASE)
_AT_HEIGHT = re.compile(r"\bat [\w-]+ (?:height|level)\b", re.IGNORECASE)

_ENVIRONMENT = _pattern(
    (
        # places
        "alley", "alleyway", "street", "streets", "road", "highway", "city", "cityscape", "downtown",
        "rooftop", "skyline", "subway", "station", "platform", "market", "bazaar", "neighbourhood",
        "neighborhood", "village", "town", "forest", "woods", "jungle", "meadow", "field", "fields", "farm",
        "garden", "park", "mountain", "mountains", "hill", "hills", "valley", "canyon", "cliff", "desert",
        "dunes", "beach", "shore", "coast", "ocean", "sea", "lake", "river", "waterfall", "underwater",
        "reef", "island", "arctic", "glacier", "cave", "space", "outer space", "planet", "moon", "mars",
        "galaxy", "stars", "nebula", "kitchen", "studio", "room", "bedroom", "living room", "office",
        "classroom", "library", "warehouse", "factory", "lab", "laboratory", "garage", "bar", "cafe", "café",
        "diner", "restaurant", "stage", "arena", "stadium", "gym", "hallway", "corridor", "lobby", "church",
        "temple", "castle", "ruins", "spaceship", "cockpit", "window", "tabletop", "table", "countertop",
        "counter", "backdrop", "background", "interior", "indoors", "outdoors", "harbour", "harbor", "pier",
        "bridge", "tunnel", "courtyard", "sunbeam", "sunbeams", "plaza", "square", "rooftops", "skyscrapers",
        "suburb", "playground", "greenhouse",
        # time and weather
        "night", "nighttime", "midnight", "dusk", "dawn", "twilight", "sunrise", "sunset", "golden hour",
        "blue hour", "morning", "afternoon", "evening", "noon", "midday", "daylight", "daytime", "rain",
        "rainy", "raining", "drizzle", "storm", "stormy", "thunderstorm", "lightning", "fog", "foggy", "mist",
        "misty", "haze", "hazy", "smoke", "steam", "snow", "snowy", "snowfall", "blizzard", "wind", "windy",
        "clouds", "cloudy", "overcast", "sunlight", "sunny", "moonlight", "puddle", "puddles", "leaves",
        "petals", "dust", "embers", "sparks", "waves", "neon", "neon signs", "signs", "lanterns",
        "streetlights", "street lamps", "traffic", "weather", "winter", "summer", "autumn", "spring",
    )
)

_FINISH = _pattern(
    (
        "film grain", "grain", "grainy", "anamorphic", "lens flare", "shallow depth of field",
        "shallow focus", "deep focus", "depth of field", "bokeh", "soft focus", "noir", "film noir", "pastel",
        "pastels", "claymation", "stop motion", "watercolor", "watercolour", "oil painting", "painterly",
        "anime", "cel shaded", "cartoon", "pixar style", "3d render", "cgi", "low poly", "pixel art",
        "photoreal", "photorealistic", "realistic", "hyper realistic", "hyperrealistic", "live action",
        "documentary", "documentary style", "cinematic", "film look", "soft light", "hard light",
        "natural light", "soft lighting", "dramatic lighting", "lighting", "light", "glow", "neon glow",
        "rim light", "backlight", "backlit", "volumetric light", "god rays", "high contrast", "low contrast",
        "low key", "high key", "colour grade", "color grade", "graded", "teal and orange", "desaturated",
        "saturated", "vibrant", "muted", "monochrome", "black and white", "sepia", "vintage", "retro", "vhs",
        "kodak", "fujifilm", "portra", "technicolor", "vaporwave", "cyberpunk", "dreamy", "moody", "gritty",
        "whimsical", "surreal", "ethereal", "minimalist", "matte", "glossy", "clean colour", "clean color",
        "warm tones", "cool tones", "palette", "colour palette", "color palette", "film stock", "slow motion",
        "motion blur", "timelapse", "time lapse", "tones", "contrast", "colour", "color", "grade",
    )
)

# The look/medium words that compete with each other; optics (bokeh, depth of field) are not style cues.
_STYLE_TERMS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "noir": ("noir", "film noir"),
        "pastel": ("pastel", "pastels"),
        "claymation": ("claymation", "stop motion"),
        "watercolor": ("watercolor", "watercolour"),
        "oil painting": ("oil painting", "painterly"),
        "anime": ("anime", "cel shaded", "cartoon"),
        "3d render": ("3d render", "cgi", "pixar style"),
        "low poly": ("low poly",),
        "pixel art": ("pixel art",),
        "photoreal": (
            "photoreal", "photorealistic", "realistic", "hyper realistic", "hyperrealistic", "live action",
        ),
        "documentary": ("documentary", "documentary style"),
        "vintage": ("vintage", "retro"),
        "vhs": ("vhs",),
        "technicolor": ("technicolor",),
        "vaporwave": ("vaporwave",),
        "cyberpunk": ("cyberpunk",),
        "dreamy": ("dreamy", "ethereal"),
        "moody": ("moody",),
        "gritty": ("gritty",),
        "whimsical": ("whimsical",),
        "surreal": ("surreal",),
        "minimalist": ("minimalist",),
        "black and white": ("black and white", "monochrome"),
        "sepia": ("sepia",),
        "teal and orange": ("teal and orange",),
        "desaturated": ("desaturated", "muted"),
        "vibrant": ("vibrant", "saturated"),
        "film grain": ("film grain", "grainy"),
        "low key": ("low key",),
        "high key": ("high key",),
    }
)
_STYLE_CUE_OF: Mapping[str, str] = MappingProxyType(
    {_key(term): cue for cue, terms in _STYLE_TERMS.items() for term in terms}
)
_STYLE = _pattern(t for terms in _STYLE_TERMS.values() for t in terms)
# Two different media in one clip, or looks that pull opposite ways, make the model average them into mush.
_MEDIA = frozenset(
    {"claymation", "watercolor", "oil painting", "anime", "3d render", "low poly", "pixel art", "photoreal"}
)
_CLASHES: tuple[tuple[frozenset[str], frozenset[str]], ...] = (
    (frozenset({"noir", "gritty", "moody", "low key"}), frozenset({"pastel", "whimsical", "high key"})),
    (
        frozenset({"black and white", "sepia", "desaturated"}),
        frozenset({"pastel", "vibrant", "technicolor", "teal and orange", "vaporwave"}),
    ),
    (frozenset({"documentary"}), frozenset({"claymation", "anime", "3d render", "pixel art", "low poly"})),
)

_HYPE = _pattern(
    (
        "cinematic", "epic", "amazing", "masterpiece", "4k", "8k", "16k", "uhd", "ultra hd", "ultra",
        "ultra detailed", "ultra realistic", "hyper realistic", "hyperrealistic", "hyper detailed",
        "highly detailed", "award winning", "stunning", "trending", "trending on artstation", "artstation",
        "best quality", "high quality", "beautiful", "breathtaking", "gorgeous", "insane", "incredible",
        "octane render", "unreal engine", "awesome", "mind blowing", "jaw dropping", "hdr", "photorealism",
    )
)

_INTENT = re.compile(
    r"\b\d+(?:\.\d+)?[\s-]*(?:s|secs?|seconds?)\b|\b(?:16:9|9:16|1:1|4:3|21:9)(?!\d)"
    r"|\b(?:teaser|trailer|ad|advert|commercial|promo|spot|reel|short|loop|intro|outro|bumper|"
    r"music video|gif|explainer|announcement|packshot|product shot|vertical video|portrait video)s?\b",
    re.IGNORECASE,
)
_INTENT_SECONDS = re.compile(r"\b(\d+(?:\.\d+)?)[\s-]*(?:s|secs?|seconds?)\b", re.IGNORECASE)


# These bare forms are mostly nouns in prompts ("soft light", "neon glow", "a hard cut"); their -s/-ing/-ed
# forms still count as motion.
_NOUN_LIKE = frozenset(
    {"light", "glow", "fire", "hand", "point", "cut", "land", "row", "type", "drum", "cycle", "surf", "ski",
     "mix", "stack", "spray", "swing", "wave", "flash", "pulse", "crash", "burst", "press", "drizzle",
     "flood", "peel", "trip", "slip", "drop", "race", "dash", "rush", "pass", "cross", "sweep", "break",
     "crack", "play", "paint", "draw", "step", "pace", "speed", "brake", "fold", "sink", "blow", "kiss",
     "hug", "kick", "punch", "smile", "laugh", "cry", "shout", "reveal", "close", "open", "tilt", "ripple",
     "sparkle", "shimmer", "bubble", "spill", "splash", "drip", "gesture", "shrug", "catch", "lift", "pick",
     "serve", "bite", "sip", "stir", "chop", "slice", "whisk", "sprinkle", "scatter", "swarm", "spread",
     "fade", "exit", "approach", "plant", "steam"}
)


def _verb_forms(base: str) -> set[str]:
    """Present, -s, -ing and -ed forms; irregular pasts are listed with the verbs."""
    doubled = {"run", "spin", "swim", "drop", "step", "skip", "hop", "stop", "slip", "grip", "nod", "jog",
               "flip", "dip", "trip", "wrap", "sip", "bob", "tap", "pat", "chop", "stir", "drum", "plan",
               "strum", "grab", "hug", "wag", "swap", "clap", "flap", "scrub", "rub", "sob", "zip", "pop",
               "cut", "hit", "sit", "get", "begin", "flop"}
    forms = set() if base in _NOUN_LIKE else {base}
    if base.endswith("e") and not base.endswith("ee"):
        forms |= {base + "s", base[:-1] + "ing", base + "d"}
    elif base.endswith("y") and base[-2:-1] not in "aeiou":
        forms |= {base[:-1] + "ies", base + "ing", base[:-1] + "ied"}
    elif base.endswith(("s", "sh", "ch", "x", "z")):
        forms |= {base + "es", base + "ing", base + "ed"}
    elif base in doubled:
        forms |= {base + "s", base + base[-1] + "ing", base + base[-1] + "ed"}
    else:
        forms |= {base + "s", base + "ing", base + "ed"}
    return forms


_MOTION_BASES = (
    "roll", "walk", "run", "turn", "spin", "fly", "pour", "rise", "fall", "drift", "dance", "jump", "open",
    "reveal", "close", "slide", "glide", "float", "hover", "soar", "swoop", "dive", "swim", "climb", "crawl",
    "march", "stride", "stroll", "wander", "sprint", "race", "dash", "rush", "hurry", "chase", "leap", "hop",
    "skip", "bounce", "tumble", "flip", "twirl", "swirl", "sway", "swing", "wave", "shake", "nod", "blink",
    "wink", "smile", "laugh", "cry", "sing", "shout", "glance", "reach", "grab", "lift", "raise", "lower",
    "drop", "throw", "toss", "catch", "kick", "punch", "push", "pull", "drag", "carry", "stack", "stir",
    "chop", "slice", "cut", "mix", "whisk", "knead", "cook", "fry", "sizzle", "bubble", "boil", "melt",
    "freeze", "crack", "shatter", "break", "burst", "explode", "erupt", "splash", "drip", "spill", "splatter",
    "ripple", "flow", "flutter", "flap", "flicker", "flash", "pulse", "sparkle", "shimmer", "twinkle",
    "bloom", "blossom", "grow", "sprout", "unfold", "fold", "unfurl", "unwrap", "unroll", "emerge", "appear",
    "disappear", "vanish", "fade", "morph", "transform", "assemble", "build", "type", "write", "draw",
    "paint", "play", "strum", "drum", "drive", "ride", "cycle", "skate", "surf", "ski", "sail", "paddle",
    "row", "land", "launch", "lean", "bend", "stretch", "kneel", "step", "enter", "exit", "leave", "arrive",
    "approach", "cross", "pass", "pace", "jog", "skid", "speed", "accelerate", "brake", "crash", "collide",
    "hit", "strike", "slam", "tap", "knock", "press", "pick", "hug", "kiss", "serve", "eat", "bite", "chew",
    "drink", "sip", "sniff", "lick", "wag", "bark", "roar", "howl", "chirp", "peck", "breathe", "exhale",
    "inhale", "yawn", "scatter", "swarm", "gather", "spread", "dissolve", "crumble", "collapse", "sink",
    "descend", "ascend", "rotate", "revolve", "wobble", "shiver", "tremble", "vibrate", "quiver", "stumble",
    "trip", "slip", "shoot", "glow", "ignite", "burn", "dart", "zip", "swivel", "clap", "scrub", "juggle",
    "spray", "squeeze", "blow", "shove", "sweep", "wipe", "point", "gesture", "shrug", "wiggle", "pounce",
    "prowl", "gallop", "trot", "waddle", "slither", "plant", "steam", "peel", "sprinkle", "drizzle", "flood",
    "tilt", "wade", "hike", "wriggle", "flop", "somersault",
)
_MOTION_IRREGULAR = (
    "ran", "spun", "flew", "rose", "risen", "fell", "fallen", "swam", "leapt", "threw", "thrown", "caught",
    "broke", "broken", "burst", "froze", "frozen", "grew", "grown", "drew", "drawn", "wrote", "written",
    "drove", "driven", "rode", "ridden", "struck", "swung", "shook", "shaken", "sang", "sank", "blew",
    "swept", "dove", "lit", "lights up", "hit", "takes off", "take off", "taking off", "lifts off",
    "lift off", "stands up", "stand up", "standing up", "sits down", "sit down", "turns around",
)
_MOTION_WORDS = frozenset(_MOTION_IRREGULAR).union(*(_verb_forms(base) for base in _MOTION_BASES))
_MOTION = _pattern(_MOTION_WORDS)
_STATIC_BASES = ("stand", "sit", "wait", "rest", "sleep", "hold", "look", "stare", "gaze", "watch", "pose",
                 "remain", "stay", "lie", "wear", "face", "overlook", "guard", "keep", "start", "begin",
                 "continue", "try", "get", "seem", "appear")
_STATIC_WORDS = frozenset(f for base in _STATIC_BASES for f in _verb_forms(base)) | frozenset(
    {"lies", "lying", "lay", "sat", "stood", "held", "began", "got", "is", "are", "was", "were", "be",
     "being", "has", "have", "does", "do", "will", "can"}
)
_ANY_VERB = _pattern(_MOTION_WORDS | _STATIC_WORDS)

_DETERMINERS = frozenset(
    {
        "a", "an", "the", "this", "that", "these", "those", "his", "her", "its", "their", "my", "our", "your",
        "one", "two", "three", "four", "five", "some", "several", "many", "every", "each", "another", "no",
    }
)
_PREPOSITIONS = frozenset(
    {
        "in", "on", "at", "inside", "under", "beneath", "below", "through", "across", "over", "near",
        "beside", "by", "atop", "among", "amid", "amongst", "against", "along", "around", "within", "outside",
        "into", "onto", "from", "of", "with", "behind", "above", "between", "toward", "towards", "past",
    }
)
_PRONOUNS = frozenset({"it", "he", "she", "they", "we", "i", "you"})
_STOPWORDS = (
    _DETERMINERS
    | _PREPOSITIONS
    | _PRONOUNS
    | frozenset(
        {
            "and", "or", "but", "then", "while", "as", "to", "very", "so", "just", "also", "more", "less",
            "s", "some", "other", "shot", "video", "clip", "scene", "footage", "style", "look", "vibe",
            "vibes", "feel", "slow", "slowly", "fast", "quick", "quickly", "soft", "gentle", "smooth",
            "subtle", "rich", "deep", "warm", "cool", "dark", "bright", "dramatic", "shallow", "pink", "blue",
            "red", "green", "gold", "golden", "purple", "orange", "yellow", "white", "black", "silver",
            "film", "new", "old", "small", "big", "little", "large", "tiny", "young", "camera",
        }
    )
)
_CHARACTERS = _pattern(
    (
        "man", "men", "woman", "women", "person", "people", "crowd", "crowds", "child", "children", "kid",
        "kids", "boy", "boys", "girl", "girls", "dog", "dogs", "cat", "cats", "bird", "birds", "horse",
        "horses", "dancer", "dancers", "pedestrian", "pedestrians", "passers by", "passersby", "tourist",
        "tourists", "shopper", "shoppers", "commuter", "commuters", "soldier", "soldiers", "audience",
        "spectators", "onlookers", "bystanders", "friends", "family", "couple", "stranger", "strangers",
        "animals", "creature", "creatures", "characters", "band", "musicians", "workers", "customers", "fans",
        "players", "robots", "others", "another", "someone", "everyone", "villagers", "kids playing",
    )
)
# fmt: on
_CONCURRENT = re.compile(
    r"\b(?:while|whilst|as|meanwhile|simultaneously|at the same time|all at once)\b", re.IGNORECASE
)
_WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")

LAYERS: tuple[str, ...] = PromptSpec.LAYERS


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _clean(text: str) -> str:
    """One line of text: control characters gone, whitespace collapsed, stray edge punctuation trimmed."""
    text = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text)
    text = re.sub(r"\s+", " ", text).strip()
    text = text.strip("\"'“”‘’`")
    text = re.sub(r"^[\s,;:.\-–—]+", "", text)
    return re.sub(r"[\s,;:.!?…\-–—]+$", "", text)


def _verbs_in(text: str, vocabulary: re.Pattern[str]) -> list[re.Match[str]]:
    """Matches that really are verbs: "a dance" and "the robot's turn" are nouns, "rolling hills" is not."""
    found = []
    for match in vocabulary.finditer(text):
        before = _words(text[: match.start()])
        previous = before[-1].lower() if before else ""
        if previous in _DETERMINERS or previous.endswith(("'s", "’s")):
            continue
        if match.group(0).lower().endswith("ing") and previous in _PREPOSITIONS:
            continue
        found.append(match)
    return found


def motion_verbs(text: str) -> tuple[str, ...]:
    """The observable-motion verbs in `text`, in order ("rolls", "turning"…)."""
    return tuple(m.group(0).lower() for m in _verbs_in(text, _MOTION))


def camera_moves(text: str) -> tuple[str, ...]:
    """The distinct camera moves named in `text` ("push-in", "pan", "static"…), in order of appearance."""
    moves: list[str] = []
    for match in _CAMERA.finditer(text):
        move = _MOVE_OF.get(_key(match.group(0)))
        if move and move not in moves:
            moves.append(move)
    # "dolly" alone next to a named direction adds nothing; "zoom" alone next to zoom in/out neither.
    if "dolly" in moves and ({"push-in", "pull-back"} & set(moves)):
        moves.remove("dolly")
    if "zoom" in moves and ({"push-in", "pull-back"} & set(moves)):
        moves.remove("zoom")
    return tuple(moves)


def style_cues(text: str) -> tuple[str, ...]:
    cues: list[str] = []
    for match in _STYLE.finditer(text):
        cue = _STYLE_CUE_OF.get(_key(match.group(0)))
        if cue and cue not in cues:
            cues.append(cue)
    return tuple(cues)


def hype_words(text: str) -> tuple[str, ...]:
    return tuple(m.group(0).lower() for m in _HYPE.finditer(text))


def _has_camera(text: str) -> bool:
    return bool(_CAMERA.search(text) or _LENS.search(text) or _AT_HEIGHT.search(text))


def _content_words(text: str) -> list[str]:
    """Words left once every vocabulary term and filler is removed: what names a thing only the user knows."""
    for vocabulary in (_CAMERA, _ENVIRONMENT, _FINISH, _HYPE, _INTENT, _FILM_FORMAT, _LENS):
        text = vocabulary.sub(" ", text)
    return [
        w
        for w in _words(text)
        if w.lower() not in _STOPWORDS and not w.lower().endswith("ly") and w.isalpha()
    ]


# --- drafting --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """A drafted spec plus the layers that were defaulted (so lint can say "you gave no camera")."""

    spec: PromptSpec
    filled: tuple[str, ...]
    goal: Goal | None = None


@dataclass(frozen=True)
class _Clause:
    text: str
    joiner: str  # the word that introduced it ("while", "and"…), or "" after punctuation


_WORD_JOINERS = ("and then", "then", "while", "whilst", "as", "meanwhile", "and", "with", "plus")
_COARSE = re.compile(
    r"(\s*;\s*|\s*(?<!\d),\s*|\s*,(?!\d)\s*|\s*:(?!\d)\s*|(?<=\S)[.!?…]+(?:\s+|$)|\s+[–—]\s+"
    r"|\s+(?:and then|then|while|whilst|meanwhile)\s+"
    r"|(?<!\bsuch)(?<!\bas well)\s+as\s+(?!if\b|though\b|well\b))",
    re.IGNORECASE,
)
_FINE = re.compile(r"(\s+(?:and|with|plus)\s+)", re.IGNORECASE)


def _split_clauses(text: str) -> list[_Clause]:
    parts = _COARSE.split(text)
    coarse: list[_Clause] = []
    joiner = ""
    for index, part in enumerate(parts):
        if index % 2:
            joiner = part.strip().lower() if part.strip().lower() in _WORD_JOINERS else ""
            continue
        if part.strip():
            coarse.append(_Clause(part.strip(), joiner))
    clauses: list[_Clause] = []
    for clause in coarse:
        pieces = _FINE.split(clause.text)
        current = _Clause(pieces[0], clause.joiner)
        for conjunction, piece in zip(pieces[1::2], pieces[2::2], strict=True):
            # Split off "with shallow depth of field" or "and rain", but keep "a robot and a dog" or
            # "rolls forward and turns" whole: without layer words of its own, a piece belongs to the last.
            if _kind_of(piece) in ("camera", "environment", "finish") and not _verbs_in(piece, _ANY_VERB):
                if current.text.strip():
                    clauses.append(current)
                current = _Clause(piece, conjunction.strip().lower())
            else:
                current = _Clause(f"{current.text}{conjunction}{piece}", current.joiner)
        if current.text.strip():
            clauses.append(current)
    return clauses


def _subject_verb(text: str) -> tuple[str, str] | None:
    """Split "a small robot slowly rolls through…" into ("a small robot", "slowly rolls through…")."""
    # Words inside a layer term are not verbs ("film look", "slow motion"); neither is an -ing word with no
    # noun before it ("our new running shoe").
    vocabularies = (_CAMERA, _ENVIRONMENT, _FINISH)
    taken = [m.span() for v in vocabularies for m in v.finditer(text) if " " in m.group(0)]
    verbs = [
        m
        for m in _verbs_in(text, _ANY_VERB)
        if not any(start <= m.start() < end for start, end in taken)
        and not (
            m.group(0).lower().endswith("ing")
            and text[: m.start()].strip()
            and not _content_words(text[: m.start()])
        )
    ]
    if not verbs:
        return None
    cut = verbs[0].start()
    subject = text[:cut].rstrip()
    # Adverbs and relative pronouns right before the verb belong to the action: "a robot that slowly rolls".
    while True:
        trailing = re.search(r"(?:^|\s)([\w'-]+)$", subject)
        if not trailing:
            break
        word = trailing.group(1).lower()
        if word in {"that", "which", "who", "then", "also", "just", "now"} or (
            word.endswith("ly") and word not in {"fly", "early", "only", "holy", "jelly", "belly", "lily"}
        ):
            cut = trailing.start(1)
            subject = text[:cut].rstrip()
            continue
        break
    return subject.strip(" ,"), text[cut:].strip()


def _without_phrases(text: str, vocabulary: re.Pattern[str]) -> str:
    return vocabulary.sub(lambda m: " " if len(_words(m.group(0))) > 1 else m.group(0), text)


def _kind_of(text: str) -> str:
    if _has_camera(text):
        return "camera"
    split = _subject_verb(text)
    if split and split[0] and (_content_words(split[0]) or split[0].lower() in _PRONOUNS):
        return "event"
    if split and not split[0] and motion_verbs(text):
        return "action"
    if _INTENT.search(text) and not motion_verbs(text):
        return "intent"
    # A multi-word term owns its words: "depth of field" is a finish, not a field; "golden hour" not a light.
    places = list(_ENVIRONMENT.finditer(_without_phrases(text, _FINISH)))
    looks = [*_FINISH.finditer(_without_phrases(text, _ENVIRONMENT)), *_FILM_FORMAT.finditer(text)]
    if len(looks) != len(places):
        return "finish" if len(looks) > len(places) else "environment"
    if places:
        # The head noun comes last, before any prepositional phrase: "studio lighting" is a look, "dust
        # floating in the light" a place.
        phrase = re.search(r"\s(?:in|on|at|of|through|under|over|with|by|from|into)\s", text)
        head_end = phrase.start() if phrase else len(text)
        looks_before = [m.end() for m in looks if m.end() <= head_end]
        places_before = [m.end() for m in places if m.end() <= head_end]
        if not looks_before and not places_before:
            looks_before, places_before = [m.end() for m in looks], [m.end() for m in places]
        return "finish" if max(looks_before, default=-1) > max(places_before, default=-1) else "environment"
    if _HYPE.search(text):
        return "finish"
    if split and motion_verbs(text):
        return "action"
    return "other"


def _peel_camera(clause: _Clause) -> list[_Clause]:
    """ "a robot rolls toward us in a low-angle tracking shot" → the event, then the camera phrase."""
    if not _has_camera(clause.text):
        return [clause]
    split = _subject_verb(clause.text)
    if not split or not split[0] or not _content_words(split[0]):
        return [clause]
    found = _CAMERA.search(clause.text) or _LENS.search(clause.text) or _AT_HEIGHT.search(clause.text)
    assert found is not None
    head = clause.text[: found.start()]
    verb_at = len(clause.text) - len(split[1])
    preposition = None
    for match in re.finditer(r"\s(in|with|on|from|via|using|through|as)\s", head):
        if match.start() > verb_at:
            preposition = match
    cut = preposition.start() if preposition else found.start()
    event, camera = clause.text[:cut].strip(), clause.text[cut:].strip()
    camera = re.sub(r"^(?:in|with|on|from|via|using|through|as)\s+(?:an?\s+|the\s+)?", "", camera, flags=re.I)
    if not event or not camera or cut <= verb_at:
        return [clause]
    return [_Clause(event, clause.joiner), _Clause(camera, "")]


_OBJECT_LEAD = re.compile(
    r"^(?:\s*(?:around|round|past|toward|towards|over|across|on|onto|to|into|in|along|alongside|behind|"
    r"through|up|down|left|right|away|from|out|of|above|under|at|slowly|gently)\b)*\s*",
    re.IGNORECASE,
)


def _camera_object(clause: _Clause) -> tuple[_Clause, _Clause] | None:
    """ "the camera slowly orbits a vintage car" → ("the camera slowly orbits", "a vintage car")."""
    ends = [m.end() for v in (_CAMERA, _LENS, _AT_HEIGHT) for m in v.finditer(clause.text)]
    if not ends:
        return None
    rest = clause.text[max(ends) :]
    lead = _OBJECT_LEAD.match(rest)
    target = rest[lead.end() if lead else 0 :].strip()
    words = _words(target)
    named = bool(lead) and re.search(r"\bof\b", lead.group(0) if lead else "") is not None
    if not words or not (named or words[0].lower() in _DETERMINERS) or not _content_words(target):
        return None
    camera = clause.text[: len(clause.text) - len(rest)].strip()
    return _Clause(camera, clause.joiner), _Clause(target, "")


def _join(parts: list[_Clause]) -> str:
    text = ""
    for part in parts:
        if not text:
            text = part.text
        elif part.joiner in ("", "with", "plus"):
            text = f"{text}, {part.text}" if part.joiner == "" else f"{text} {part.joiner} {part.text}"
        else:
            text = f"{text} {part.joiner} {part.text}"
    return _clean(text)


def _same_subject(candidate: str, subject: str) -> bool:
    words = [w.lower() for w in _words(candidate)]
    if not words:
        return False
    if len(words) == 1 and words[0] in _PRONOUNS:
        return True
    head = words[-1].rstrip("s")
    return bool(head) and head in {w.lower().rstrip("s") for w in _words(subject)}


def _split_subject_setting(text: str) -> tuple[str, str]:
    """ "a lonely lighthouse on a cliff at sunset" → ("a lonely lighthouse", "on a cliff at sunset")."""
    for match in re.finditer(r"\s(" + "|".join(sorted(_PREPOSITIONS - {"of", "with"})) + r")\s", text):
        rest = text[match.start() :].strip()
        if _ENVIRONMENT.search(rest) and _content_words(text[: match.start()]):
            return text[: match.start()].strip(), rest
    return text, ""


def draft_with_notes(idea: str, *, goal: Goal | None = None) -> Draft:
    """Restructure a free-text idea into the six layers; defaulted layers are named in `filled`."""
    text = _clean(idea)
    clauses = [piece for clause in _split_clauses(text) for piece in _peel_camera(clause)]
    kinds = [_kind_of(c.text) for c in clauses]
    if "event" not in kinds:
        # With no "X does Y" clause, the subject may be the camera's target: "slow push-in on a sleeping cat".
        for index, kind in enumerate(kinds):
            found = _camera_object(clauses[index]) if kind == "camera" else None
            if found:
                clauses[index : index + 1] = list(found)
                kinds[index : index + 1] = ["camera", "object"]
                break
    layers: dict[str, list[_Clause]] = {name: [] for name in LAYERS}

    subject_at = next((i for i, kind in enumerate(kinds) if kind == "event"), None)
    if subject_at is None:
        subject_at = next((i for i, kind in enumerate(kinds) if kind == "object"), None)
    if subject_at is None:
        subject_at = next((i for i, kind in enumerate(kinds) if kind == "other"), None)
    if subject_at is None:
        described = (
            i
            for i, k in enumerate(kinds)
            if k in ("environment", "finish") and _content_words(clauses[i].text)
        )
        subject_at = next(described, None)

    subject = ""
    for index, (clause, kind) in enumerate(zip(clauses, kinds, strict=True)):
        if index == subject_at:
            split = _subject_verb(clause.text) if kind in ("event", "object") else None
            if split and split[0]:
                subject = split[0]
                layers["action"].append(_Clause(split[1], ""))
            elif kind == "other":
                subject = clause.text
            else:
                # A target or a place-or-look clause may carry its setting: "a car parked in a desert".
                subject, setting = _split_subject_setting(clause.text)
                if setting:
                    layers["environment"].append(_Clause(setting, ""))
            layers["subject"].append(_Clause(subject, ""))
            continue
        if kind == "event":
            split = _subject_verb(clause.text)
            assert split is not None
            if subject and _same_subject(split[0], subject) and split[0].lower() not in _PRONOUNS:
                layers["action"].append(_Clause(split[1], clause.joiner))
            elif split[0].lower() in _PRONOUNS or clause.joiner in ("while", "whilst", "as", "meanwhile"):
                layers["action"].append(clause)
            else:
                # Someone else doing something is background, where the lint can weigh it against the subject.
                layers["environment"].append(clause)
        elif kind == "action" or (kind == "other" and clause.joiner in ("then", "and then")):
            layers["action"].append(clause)
        elif kind == "other":
            if (
                subject_at is not None
                and index == subject_at + 1
                and clause.joiner in ("with", "and", "plus")
            ):
                layers["subject"].append(clause)
            else:
                layers["environment"].append(clause)
        else:
            layers[kind if kind in layers else "environment"].append(clause)

    values = {name: _join(parts) for name, parts in layers.items()}
    preset = PRESETS[goal] if goal else None
    defaults = {
        "camera": preset.camera if preset else DEFAULT_CAMERA,
        "environment": preset.environment if preset else DEFAULT_ENVIRONMENT,
        "finish": preset.finish if preset else DEFAULT_FINISH,
        "intent": preset.intent if preset else DEFAULT_INTENT,
    }
    if _ENVIRONMENT.search(f"{values['subject']} {values['action']}"):
        # "pours latte art in a sunlit cafe" already sets the scene; a default setting would contradict it.
        del defaults["environment"]
    filled = tuple(name for name in LAYERS if name in defaults and not values[name])
    for name in filled:
        values[name] = defaults[name]
    return Draft(spec=PromptSpec.from_dict(dict(values)), filled=filled, goal=goal)


def draft(idea: str, *, goal: Goal | None = None) -> PromptSpec:
    """The deterministic offline drafter: any string in, a complete spec out (missing layers defaulted)."""
    return draft_with_notes(idea, goal=goal).spec


# --- lint ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Subject:
    spec: PromptSpec
    filled: frozenset[str]

    def given(self, layer: str) -> str:
        """The layer's text when the user wrote it; defaults are ours, so they are never held against them."""
        return "" if layer in self.filled else str(getattr(self.spec, layer))


_Rule = Callable[[_Subject], Finding | None]


def _short(text: str, limit: int = 60) -> str:
    """User text quoted in a finding: enough to recognise, never a wall on the draft card."""
    text = _clean(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _lint_subject_missing(s: _Subject) -> Finding | None:
    if s.spec.subject.strip():
        return None
    return Finding(
        rule="subject_missing",
        severity=Severity.ERROR,
        message="There is no subject: the model will invent one.",
        fix="Start with one concrete subject, e.g. 'A small delivery robot…'.",
    )


def _lint_multiple_subjects(s: _Subject) -> Finding | None:
    parts = re.split(r"\s*(?:,|;|&|\band\b|\bplus\b|\balong with\b|\btogether with\b)\s*", s.spec.subject)
    primaries = [
        p for p in parts if (words := _words(p)) and (words[0].lower() in _DETERMINERS or words[0].isdigit())
    ]
    if len(primaries) < 2:
        return None
    return Finding(
        rule="multiple_subjects",
        severity=Severity.WARNING,
        message=f"{len(primaries)} subjects compete for the frame: "
        + "; ".join(_short(p, 30) for p in primaries[:4])
        + ".",
        fix=f"Keep one subject ('{_short(primaries[0], 30)}'); move the rest to the environment or drop it.",
    )


def _lint_no_motion(s: _Subject) -> Finding | None:
    if motion_verbs(s.spec.action) or (not s.spec.action.strip() and motion_verbs(s.spec.subject)):
        return None
    who = _short(s.spec.subject) or "the subject"
    return Finding(
        rule="no_motion",
        severity=Severity.WARNING,
        message=f"{who[:1].upper()}{who[1:]} has no observable motion, so the model will guess one.",
        fix=f"Give {who} one observable motion, e.g. 'rolls forward' or 'turns its head toward camera'.",
    )


def _lint_simultaneous_actions(s: _Subject) -> Finding | None:
    verbs = motion_verbs(s.spec.action)
    concurrent = _CONCURRENT.search(s.spec.action)
    if len(verbs) < 3 and not (concurrent and len(verbs) >= 2):
        return None
    return Finding(
        rule="simultaneous_actions",
        severity=Severity.WARNING,
        message=f"{len(verbs)} actions at once ({', '.join(verbs[:6])}); a short clip blurs or cuts them.",
        fix=f"Keep one action ('{verbs[0]}'), or give each its own storyboard beat.",
    )


def _lint_camera_missing(s: _Subject) -> Finding | None:
    camera = s.spec.camera.strip()
    if camera and "camera" not in s.filled and camera not in DEFAULT_CAMERAS:
        return None
    using = f" (using the default: '{_short(camera)}')" if camera else ""
    return Finding(
        rule="camera_missing",
        severity=Severity.WARNING,
        message=f"No camera behaviour was given{using}.",
        fix="Name one camera behaviour, e.g. 'slow dolly-in at eye level' or 'locked-off wide shot'.",
    )


# A mount (handheld, drone) carries a move rather than competing with it: "drone pulls back" is one move.
_MOUNTS = frozenset({"handheld", "aerial"})


def _lint_camera_conflict(s: _Subject) -> Finding | None:
    moves = camera_moves(s.given("camera"))
    if "static" in moves and len(moves) > 1:
        moving = [m for m in moves if m != "static"]
        return Finding(
            rule="camera_conflict",
            severity=Severity.ERROR,
            message=f"The camera is both static and moving ({', '.join(moving)}).",
            fix=f"Either lock the camera off or keep the {moving[0]}, not both.",
        )
    if {"push-in", "pull-back"} <= set(moves):
        return Finding(
            rule="camera_conflict",
            severity=Severity.ERROR,
            message="The camera pushes in and pulls back at once; the moves cancel out.",
            fix="Choose one direction: a slow push-in or a slow pull-back.",
        )
    carried = [m for m in moves if m not in _MOUNTS] or list(moves)
    if len(carried) < 2 and len(moves) - len(carried) <= 1:
        return None
    return Finding(
        rule="camera_conflict",
        severity=Severity.WARNING,
        message=f"{len(moves)} camera moves ({', '.join(moves)}); more than one move reads as a cut.",
        fix=f"Keep one camera behaviour, e.g. only the {carried[0]}, or give each move its own beat.",
    )


def _lint_environment_competes(s: _Subject) -> Finding | None:
    environment = s.given("environment")
    if not environment:
        return None
    subject = s.spec.subject.lower()
    # "a sheepdog" in "a muddy dog park" is the subject at home, not a second character.
    others = [
        m.group(0) for m in _CHARACTERS.finditer(environment) if m.group(0).lower().rstrip("s") not in subject
    ]
    items = [p for p in re.split(r"\s*(?:,|;|\band\b|\bwith\b)\s*", environment) if p.strip()]
    words = len(_words(environment))
    crowded = len(items) >= 4 or words > max(15, 2 * len(_words(s.spec.subject)))
    if not others and not crowded:
        return None
    reason = (
        f"it brings in other characters ({', '.join(dict.fromkeys(others[:6]))})"
        if others
        else f"it has {len(items)} details in {words} words, more than the subject"
    )
    return Finding(
        rule="environment_competes",
        severity=Severity.WARNING,
        message=f"The environment competes with the subject: {reason}.",
        fix="Keep one or two supporting details (place, time, weather) and no other characters.",
    )


def _lint_style_stack(s: _Subject) -> Finding | None:
    cues = style_cues(" ; ".join(s.given(layer) for layer in ("subject", "environment", "finish")))
    media = [c for c in cues if c in _MEDIA]
    clashes = [(a, b) for a in cues for b in cues if a < b and a in media and b in media]
    for left, right in _CLASHES:
        clashes += [(a, b) for a in cues if a in left for b in cues if b in right and a != b]
    if clashes:
        a, b = clashes[0]
        return Finding(
            rule="style_stack",
            severity=Severity.ERROR,
            message=f"The finish mixes styles that pull apart: {a} and {b}.",
            fix=f"Pick one look: '{a}' or '{b}', not both.",
        )
    if len(cues) <= 2:
        return None
    return Finding(
        rule="style_stack",
        severity=Severity.WARNING,
        message=f"{len(cues)} style cues stacked ({', '.join(cues)}); the model averages them.",
        fix=f"Keep at most two, e.g. '{cues[0]}, {cues[1]}'.",
    )


def _lint_keyword_pile(s: _Subject) -> Finding | None:
    given = [s.given(layer) for layer in LAYERS]
    hype = [w for text in given for w in hype_words(text)]
    fragments = [
        f
        for layer in ("subject", "environment", "finish")
        for f in re.split(r"\s*[,;]\s*", s.given(layer))
        if f.strip() and len(_words(f)) <= 2 and not motion_verbs(f)
    ]
    if len(hype) < 3 and len(fragments) < 4:
        return None
    if len(hype) >= 3:
        message = f"Hype words carry no picture: {', '.join(dict.fromkeys(hype))}."
    else:
        message = f"A pile of tags ({', '.join(fragments[:6])}) instead of a description."
    return Finding(
        rule="keyword_pile",
        severity=Severity.WARNING,
        message=message,
        fix=(
            "Write one sentence of who does what, where, then one camera move and one finish, e.g. 'A small "
            "delivery robot rolls through a rain-soaked neon alley at night; slow dolly-in; soft film grain.'"
        ),
    )


MAX_PROMPT_WORDS = 90
MAX_PROMPT_CHARS = 600


def _lint_too_long(s: _Subject) -> Finding | None:
    # Beats are measured by the storyboard lint; here only the paragraph that describes the shot.
    text = render(replace(s.spec, beats=()))
    words = len(_words(text))
    if words <= MAX_PROMPT_WORDS and len(text) <= MAX_PROMPT_CHARS:
        return None
    return Finding(
        rule="too_long",
        severity=Severity.WARNING,
        message=f"The prompt is {words} words ({len(text)} characters); dense prompts cause hard cuts.",
        fix=f"Cut it below {MAX_PROMPT_WORDS} words: one subject, one action, one camera move, one finish.",
    )


_RULES: tuple[_Rule, ...] = (
    _lint_subject_missing,
    _lint_multiple_subjects,
    _lint_no_motion,
    _lint_simultaneous_actions,
    _lint_camera_missing,
    _lint_camera_conflict,
    _lint_environment_competes,
    _lint_style_stack,
    _lint_keyword_pile,
    _lint_too_long,
)
RULES: tuple[str, ...] = (
    "subject_missing",
    "multiple_subjects",
    "no_motion",
    "simultaneous_actions",
    "camera_missing",
    "camera_conflict",
    "environment_competes",
    "style_stack",
    "keyword_pile",
    "too_long",
)
_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
_COST = {Severity.ERROR: 30, Severity.WARNING: 12, Severity.INFO: 3}


def lint(spec: PromptSpec, *, filled: Iterable[str] = ()) -> tuple[Finding, ...]:
    """Check a spec against the checklist; most serious first. `filled` names layers the drafter defaulted."""
    subject = _Subject(spec=spec, filled=frozenset(filled))
    findings = [f for rule in _RULES if (f := rule(subject)) is not None]
    return tuple(sorted(findings, key=lambda f: _RANK[f.severity]))


def score(findings: Iterable[Finding]) -> int:
    """100 for a clean spec; each error costs more than a warning, which costs more than an info."""
    return max(0, 100 - sum(_COST[f.severity] for f in findings))


# --- render ----------------------------------------------------------------------------------------


def _sentence_part(text: str) -> str:
    text = _clean(text)
    words = _words(text)
    # Mid-sentence "At night" reads as a typo; proper nouns and acronyms ("NYC", "Tokyo") keep their case.
    if words and words[0][:1].isupper() and words[0][1:].islower() and words[0].lower() in _STOPWORDS:
        text = text[0].lower() + text[1:]
    return text


def _seconds_of(spec: PromptSpec) -> float | None:
    match = _INTENT_SECONDS.search(spec.intent)
    return float(match.group(1)) if match else None


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def render(spec: PromptSpec, *, seconds: int | None = None) -> str:
    """The provider prompt: subject+action; camera; environment; finish; intent — then timed beats if any."""
    lead = " ".join(p for p in (_sentence_part(spec.subject), _sentence_part(spec.action)) if p)
    parts = [p for p in (lead, *(_sentence_part(getattr(spec, n)) for n in LAYERS[2:])) if p]
    text = "; ".join(parts)
    if text:
        text = text[0].upper() + text[1:] + "."
    beats = sorted(spec.beats, key=lambda b: b.start)
    if not beats:
        return text
    end_of_clip = float(seconds) if seconds is not None else _seconds_of(spec)
    timed = []
    for index, beat in enumerate(beats):
        end = beats[index + 1].start if index + 1 < len(beats) else end_of_clip
        words = _sentence_part(beat.text)
        if end is None or end <= beat.start:
            timed.append(f"from {_fmt(beat.start)} s: {words}")
        else:
            timed.append(f"{_fmt(beat.start)}–{_fmt(end)} s: {words}")
    return f"{text} Beats: {'; '.join(timed)}.".strip()


# --- remix -----------------------------------------------------------------------------------------

_LEAD_INS = re.compile(
    r"^(?:(?:please|pls|can you|could you|let's|lets|now|ok|okay)\s+)*"
    r"(?:make it|make this|make|switch to|switch it to|change it to|change to|go with|go|set it to|use|try|"
    r"turn it into|add some|add a|add an|add|give it|with|put it in|set it in|move it to)\s+",
    re.IGNORECASE,
)
_INSTEAD = re.compile(r"\s*\binstead(?:\s+of\b.*)?$|^\s*instead of\b[^,]*,?\s*", re.IGNORECASE)
_APPENDS_TIGHTLY = ("with", "wearing", "holding", "carrying", "in", "who", "that", "made", "covered")


def _classify_change(change: str) -> str:
    if _has_camera(change):
        return "camera"
    kind = _kind_of(change)
    if kind in ("event", "action"):
        return "action"
    if kind == "intent" or _INTENT_SECONDS.search(change):
        return "intent"
    if kind in ("environment", "finish"):
        return kind
    if _STYLE.search(change):
        return "finish"
    return "subject"


def _lens(text: str) -> str:
    return re.sub(r"\b(\d{2,3})\s?mm\b(?!\s+lens)", r"\1mm lens", text) if _LENS.search(text) else text


def _about_subject(change: str, subject: str) -> str | None:
    """ "the robot red" (from "make the robot red") → "red"; None if the change does not name the subject."""
    words = _words(subject)
    if not words:
        return None
    head = re.escape(words[-1])
    match = re.match(rf"^(?:(?:the|a|an|our|my|this)\s+)?(?:[\w-]+\s+)?{head}s?\b\s*(.*)$", change, re.I)
    return _clean(match.group(1)) if match else None


def _with_article(new: str, old: str) -> str:
    words = _words(new)
    if words and words[0].lower() in _DETERMINERS:
        return new
    old_words = _words(old)
    if not old_words or old_words[0].lower() not in ("a", "an", "the"):
        return new
    article = old_words[0].lower()
    if article in ("a", "an"):
        article = "an" if new[:1].lower() in "aeiou" else "a"
    return f"{article.capitalize() if old[:1].isupper() else article} {new}"


def apply_change(spec: PromptSpec, change: str) -> PromptSpec:
    """One remix change applied to the one layer it is about; every other layer stays exactly as it was."""
    text = _clean(change)
    instead = bool(_INSTEAD.search(text))
    text = _clean(_INSTEAD.sub("", text))
    described = re.match(r"^with\s", text, re.IGNORECASE) is not None
    text = _clean(_LEAD_INS.sub("", text)) or text
    if not text:
        return spec
    layer = _classify_change(text)
    old = str(getattr(spec, layer))
    if layer == "camera":
        new_text = _lens(text)
        # A lens or framing adds to the existing move; a new move replaces it, since two moves would conflict.
        new = new_text if (camera_moves(new_text) or instead or not old) else f"{old}, {new_text}"
    elif layer == "action":
        split = _subject_verb(text)
        if split and split[0] and _same_subject(split[0], spec.subject):
            text = split[1]
        joined = re.match(r"^(and then|then|and|also)\s+(.*)$", text, re.IGNORECASE)
        if joined and old and not instead:
            new = f"{old}, {text}" if joined.group(1).lower() != "and" else f"{old} {text}"
        else:
            new = text
    elif layer == "intent":
        # "make it 6 seconds" changes the duration, not what the clip is for.
        seconds = _INTENT_SECONDS.search(text)
        if seconds and _INTENT_SECONDS.search(old) and len(_words(text)) <= 3:
            new = _INTENT_SECONDS.sub(f"{seconds.group(1)}-second", old, count=1)
        else:
            new = text
    elif layer in ("environment", "finish"):
        new = text if instead or not old else f"{old}, {text}"
    elif instead or not old:
        new = _with_article(text, old)
    elif (rest := _about_subject(text, old)) is not None:
        new = f"{old}, {rest}" if rest else old
    else:
        # "with a yellow scarf" describes the subject; the "with" that was stripped to classify it goes back.
        text = f"with {text}" if described else text
        first = _words(text)[0].lower() if _words(text) else ""
        new = f"{old} {text}" if first in _APPENDS_TIGHTLY else f"{old}, {text}"
    return _with_layer(spec, layer, _clean(new))


def _with_layer(spec: PromptSpec, layer: str, value: str) -> PromptSpec:
    values = {name: str(getattr(spec, name)) for name in LAYERS}
    values[layer] = value
    return PromptSpec(
        subject=values["subject"],
        action=values["action"],
        camera=values["camera"],
        environment=values["environment"],
        finish=values["finish"],
        intent=values["intent"],
        beats=spec.beats,
    )


def changed_layers(before: PromptSpec, after: PromptSpec) -> tuple[str, ...]:
    """The layers that differ, in layer order ("beats" last)."""
    names = [name for name in LAYERS if getattr(before, name) != getattr(after, name)]
    if before.beats != after.beats:
        names.append("beats")
    return tuple(names)
