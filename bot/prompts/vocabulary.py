"""The words of the Sora grammar: camera moves and framings, places and times, looks, motion verbs, hype."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from bot.domain import PromptSpec

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
    "camera angle", "profile shot", "insert shot", "closeup", "overhead", "slow motion", "timelapse",
    "time lapse", "hyperlapse", "high speed", "wide", "aerial view", "shot from above", "from above",
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
        "suburb", "playground", "greenhouse", "sidewalk", "pavement", "crosswalk", "lagoon", "bay", "viaduct",
        "workshop", "branch", "tree", "trees", "treetop", "rock", "rocks", "log", "rug", "carpet", "floor",
        "velvet", "marble", "sand", "grass", "water", "deep sea", "seabed", "seafloor", "sky", "horizon",
        "road", "roads", "path", "trail", "track", "racetrack", "runway", "stairs", "staircase", "doorway",
        "balcony", "terrace", "porch", "yard", "backyard", "shop", "store", "bakery", "attic", "basement",
        "hospital", "school", "museum", "gallery", "theatre", "theater", "concert hall", "nightclub", "club",
        "pool", "swimming pool", "pond", "stream", "creek", "swamp", "marsh", "savanna", "prairie", "tundra",
        "volcano", "crater", "orchard", "vineyard", "wheat field", "pine forest", "streetlamp", "lamp post",
        "crossroads", "intersection", "parking lot", "car park", "train station", "airport", "port", "dock",
        "docks", "boardwalk", "hilltop", "peak", "summit", "ridge", "slope", "ice", "snowfield", "rainforest",
        "grove", "cabin", "hut", "tent", "camp", "campfire", "fireplace", "hearth", "desk", "bed", "sofa",
        "couch", "shelf", "windowsill", "ledge", "wall", "fence", "gate", "alleyways", "lane", "avenue",
        "boulevard", "cobblestones", "tokyo", "paris", "london", "new york",
        # time and weather
        "night", "nighttime", "midnight", "dusk", "dawn", "twilight", "sunrise", "sunset", "golden hour",
        "blue hour", "morning", "afternoon", "evening", "noon", "midday", "daylight", "daytime", "rain",
        "rainy", "raining", "drizzle", "storm", "stormy", "thunderstorm", "lightning", "fog", "foggy", "mist",
        "misty", "haze", "hazy", "smoke", "steam", "snow", "snowy", "snowfall", "blizzard", "wind", "windy",
        "clouds", "cloudy", "overcast", "sunlight", "sunny", "moonlight", "puddle", "puddles", "leaves",
        "petals", "dust", "embers", "sparks", "waves", "neon", "neon signs", "signs", "lanterns",
        "streetlights", "street lamps", "traffic", "weather", "winter", "summer", "autumn", "spring",
        "rush hour", "heavy fog", "first light", "nightfall", "daybreak", "heat haze",
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
        "motion blur", "tones", "minimal", "minimalism", "impressionist", "impressionism", "moonlit",
        "earthy", "tactile", "texture", "textures", "high saturation", "saturation", "high gloss", "gloss",
        "luxurious", "bioluminescent", "crisp", "crisp detail", "home video", "commercial lighting",
        "product lighting", "studio lighting", "candlelight", "candlelit", "imax", "shot on imax", "cold palette",
        "warm palette", "art deco", "ukiyo e", "studio ghibli", "ghibli", "lo fi", "analog", "polaroid",
        "sharp", "airy", "punchy", "velvety", "silky", "duotone", "halftone", "comic book", "pencil sketch",
        "charcoal", "ink", "woodcut", "golden light", "hazy light", "neon lighting",
        "contrast", "colour", "color", "grade",
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
     "fade", "exit", "approach", "plant", "steam", "stream", "brush", "shape", "feed", "stroke", "pet", "rust",
     "foam", "froth", "coil", "curl", "flare", "tear", "rip", "pack", "chase", "fill", "perch", "circle",
     "hammer", "deal", "pop", "fizz", "trickle", "gush", "skateboard", "snowboard", "arrange", "scoop",
     "flick", "spin", "shuffle", "sprawl", "graze", "stalk", "saw", "dig", "pedal"}
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
    "tilt", "wade", "hike", "wriggle", "flop", "somersault", "shape", "brush", "stream", "topple", "polish",
    "wash", "rinse", "dig", "sculpt", "weave", "knit", "sew", "feed", "graze", "nibble", "stalk", "circle",
    "perch", "pedal", "skateboard", "snowboard", "unpack", "pack", "arrange", "scoop", "flick", "wring",
    "sharpen", "hammer", "carve", "decorate",
    "splash", "pop", "fizz", "foam", "froth", "curl", "coil", "uncoil", "shuffle", "deal", "spin",
    "sprawl", "tear", "rip", "crumple", "flare", "brighten", "darken", "wilt", "ripen", "rust",
    "fill", "overflow", "stop", "pause", "trickle", "gush", "stroke", "pet", "chase", "play",
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


# Function words are the surest sign of a language in a short idea; a few dozen each tell the common ones apart.
_FUNCTION_WORDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "English": frozenset(
            [
                "a",
                "an",
                "the",
                "of",
                "in",
                "on",
                "at",
                "with",
                "and",
                "while",
                "through",
                "into",
                "over",
                "under",
                "is",
                "are",
                "its",
                "his",
                "her",
                "their",
                "from",
                "to",
                "as",
                "by",
                "then",
                "slowly",
                "camera",
                "shot",
            ]
        ),
        "Spanish": frozenset(
            [
                "el",
                "la",
                "los",
                "las",
                "un",
                "una",
                "unos",
                "unas",
                "del",
                "al",
                "en",
                "con",
                "por",
                "para",
                "que",
                "y",
                "mientras",
                "sobre",
                "bajo",
                "entre",
                "es",
                "son",
                "muy",
                "lentamente",
                "cámara",
                "plano",
                "se",
                "su",
                "sus",
                "hacia",
                "desde",
            ]
        ),
        "French": frozenset(
            [
                "le",
                "la",
                "les",
                "un",
                "une",
                "des",
                "du",
                "au",
                "aux",
                "en",
                "avec",
                "dans",
                "sur",
                "sous",
                "pour",
                "que",
                "et",
                "pendant",
                "est",
                "sont",
                "très",
                "lentement",
                "caméra",
                "se",
                "sa",
                "son",
                "ses",
                "vers",
                "depuis",
            ]
        ),
        "German": frozenset(
            [
                "der",
                "die",
                "das",
                "ein",
                "eine",
                "einen",
                "dem",
                "den",
                "des",
                "im",
                "am",
                "mit",
                "und",
                "während",
                "auf",
                "unter",
                "über",
                "ist",
                "sind",
                "sehr",
                "langsam",
                "kamera",
                "sich",
                "sein",
                "seine",
                "ihre",
                "durch",
                "zum",
                "zur",
            ]
        ),
        "Portuguese": frozenset(
            [
                "o",
                "os",
                "um",
                "uma",
                "uns",
                "umas",
                "do",
                "da",
                "dos",
                "das",
                "no",
                "na",
                "nos",
                "nas",
                "em",
                "com",
                "por",
                "para",
                "que",
                "e",
                "enquanto",
                "sobre",
                "é",
                "são",
                "muito",
                "lentamente",
                "câmera",
                "seu",
                "sua",
                "pelo",
                "pela",
            ]
        ),
        "Italian": frozenset(
            [
                "il",
                "lo",
                "gli",
                "un",
                "una",
                "uno",
                "del",
                "della",
                "dei",
                "nel",
                "nella",
                "con",
                "per",
                "che",
                "e",
                "mentre",
                "sopra",
                "sotto",
                "è",
                "sono",
                "molto",
                "lentamente",
                "telecamera",
                "suo",
                "sua",
                "verso",
                "dal",
                "dalla",
            ]
        ),
    }
)


def language_of(text: str) -> str | None:
    """None for English (or too little to tell); else the language's name, or "another language"."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return None
    latin = sum(1 for ch in letters if unicodedata.name(ch, "").startswith("LATIN"))
    if latin < len(letters) * 0.5:
        return "another language"
    words = [w.lower() for w in _words(text)]
    counts = {name: sum(w in vocabulary for w in words) for name, vocabulary in _FUNCTION_WORDS.items()}
    english = counts.pop("English")
    best = max(counts, key=lambda name: counts[name])
    # Shared spellings ("a", "en", "con") cancel out; another language must clearly outnumber English.
    if counts[best] >= 2 and counts[best] > 2 * english:
        return best
    return None
