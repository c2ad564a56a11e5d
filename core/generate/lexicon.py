"""The words Likeness grounds: nouns and adjectives per measured attribute, degree words,
colour names, hair styles, expressions, and words it knows it cannot ground (age, gender).

Shared by the captioner (which writes training captions from measured attributes) and the
prompt reader (which turns a user's sentence back into attribute targets). The captioner uses
only the first `CAPTION_SYNONYMS` synonyms of each list; the held-out prompt suite also uses the
others, so evaluation covers wording the training captions never contained.
"""
from __future__ import annotations

CAPTION_SYNONYMS = 2

# attribute -> (nouns, high adjectives, low adjectives); a (noun, adjective) pair grounds it
SCALAR_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "face_length": (("face",), ("long", "elongated", "tall"), ("short", "compact")),
    "face_width": (("face",), ("wide", "broad", "round", "full"), ("narrow", "thin", "slim", "gaunt")),
    "jaw_width": (("jaw", "jawline"), ("square", "wide", "broad", "strong", "angular"),
                  ("narrow", "tapered", "pointed", "soft", "delicate")),
    "chin": (("chin",), ("long", "prominent", "big", "strong"), ("short", "small", "weak", "receding")),
    "cheekbones": (("cheekbones", "cheekbone"), ("high", "prominent", "pronounced", "strong", "sharp"),
                   ("flat", "low", "soft", "subtle")),
    "forehead": (("forehead",), ("high", "tall", "big", "large"), ("low", "short", "small")),
    "nose_length": (("nose",), ("long", "elongated"), ("short", "small", "button", "stubby")),
    "nose_width": (("nose", "nostrils"), ("wide", "broad", "flat", "flared"),
                   ("narrow", "thin", "slim", "slender")),
    "nose_bridge": (("bridge", "nose bridge"), ("high", "prominent", "strong", "aquiline", "roman"),
                    ("low", "flat", "shallow")),
    "lip_thickness": (("lips", "lip"), ("full", "thick", "plump", "fleshy"), ("thin", "narrow", "fine")),
    "mouth_width": (("mouth", "smile"), ("wide", "big", "large", "broad"), ("small", "narrow", "tiny")),
    "eye_size": (("eyes", "eye"), ("big", "large", "round"), ("small", "narrow", "tiny")),
    "eye_spacing": (("eyes", "eye"), ("wide-set", "far-apart", "widely-spaced"),
                    ("close-set", "close-together", "closely-spaced")),
    "ears": (("ears", "ear"), ("big", "large", "prominent", "protruding"), ("small", "tiny", "little")),
    "head_size": (("head",), ("big", "large", "huge"), ("small", "little", "tiny")),
    "skin_tone": (("skin", "complexion", "skin tone"), ("light", "fair", "pale", "porcelain", "pale-skinned"),
                  ("dark", "deep", "brown", "black", "tanned", "dark-skinned")),
    "lip_colour": (("lips", "lip"), ("red", "rosy", "pink", "bright"), ("pale", "colourless", "colorless")),
    "cheek_colour": (("cheeks", "cheek"), ("rosy", "red", "ruddy", "flushed", "pink"), ("pale", "sallow")),
    "facial_hair": (("beard", "stubble", "moustache", "mustache", "goatee", "facial hair"),
                    ("heavy", "thick", "full", "dark"), ("light", "faint", "thin")),
    "freckles": (("freckles", "spots"), ("many", "lots of", "heavy", "dense"), ("few", "faint", "light")),
    "brow_thickness": (("eyebrows", "brows", "eyebrow"), ("thick", "bushy", "heavy", "full"),
                       ("thin", "sparse", "fine", "plucked")),
    "brow_darkness": (("eyebrows", "brows", "eyebrow"), ("dark", "black"), ("light", "fair", "faint", "blond", "blonde")),
    "hair_length": (("hair",), ("long", "lengthy"), ("short", "cropped")),
    "hair_lightness": (("hair",), ("light", "blond", "blonde", "fair", "platinum"), ("dark", "black", "jet-black")),
    "hair_redness": (("hair",), ("red", "ginger", "auburn", "copper", "strawberry"), ()),
    "grey_hair": (("hair",), ("grey", "gray", "silver", "white", "greying", "graying"), ()),
    "eye_lightness": (("eyes", "eye"), ("light", "pale"), ("dark",)),
    "eye_blueness": (("eyes", "eye"), ("blue", "grey", "gray", "icy"), ("brown", "hazel", "amber")),
}
# single words that ground an attribute without a noun: word -> [(attribute, sign, level)]
STANDALONE: dict[str, list[tuple[str, int, float]]] = {
    "bearded": [("facial_hair", 1, 1.4)], "stubbly": [("facial_hair", 1, 0.7)],
    "clean-shaven": [("facial_hair", -1, 1.0)], "shaven": [("facial_hair", -1, 1.0)],
    "freckled": [("freckles", 1, 1.4)], "freckly": [("freckles", 1, 1.4)],
    "blond": [("hair_lightness", 1, 1.6)], "blonde": [("hair_lightness", 1, 1.6)],
    "redhead": [("hair_redness", 1, 1.8)], "ginger": [("hair_redness", 1, 1.8)],
    "brunette": [("hair_lightness", -1, 0.8)],
    "pale-skinned": [("skin_tone", 1, 1.2)], "fair-skinned": [("skin_tone", 1, 1.2)],
    "dark-skinned": [("skin_tone", -1, 1.4)], "tanned": [("skin_tone", -1, 0.6)],
}
# presence nouns: "a beard", "freckles" alone mean a clear presence
PRESENCE = {"beard": ("facial_hair", 1.4), "stubble": ("facial_hair", 0.7), "moustache": ("facial_hair", 1.0),
            "mustache": ("facial_hair", 1.0), "goatee": ("facial_hair", 1.0), "facial hair": ("facial_hair", 1.2),
            "freckles": ("freckles", 1.4)}
# hair styles (HairStyle.style) by words
STYLE_WORDS = {"bald": "bald", "hairless": "bald", "shaved head": "buzz", "buzz": "buzz", "buzzcut": "buzz",
               "buzz cut": "buzz", "crew cut": "buzz", "crewcut": "buzz", "short hair": "short",
               "medium hair": "medium", "shoulder-length": "medium", "shoulder length": "medium",
               "long hair": "long", "ponytail": "tied", "bun": "tied", "updo": "tied", "tied": "tied"}
DEGREES = {"slightly": 0.55, "a bit": 0.55, "a little": 0.55, "somewhat": 0.55, "mildly": 0.55,
           "fairly": 0.8, "rather": 0.9, "quite": 1.2, "very": 1.7, "really": 1.7, "strongly": 1.7,
           "extremely": 2.3, "exceptionally": 2.3, "super": 2.3, "incredibly": 2.3}
CAPTION_DEGREES = (("slightly", 0.55), ("", 1.1), ("very", 1.7), ("extremely", 2.3))
PLAIN_LEVEL = 1.1
AVERAGE_WORDS = ("average", "medium", "normal", "typical", "regular")
NEGATIONS = ("no", "without", "not", "never", "lacking")
EXPRESSION_WORDS = {"smiling": "happy", "smile": "happy", "smiles": "happy", "happy": "happy",
                    "grinning": "happy", "cheerful": "happy", "joyful": "happy",
                    "frowning": "sad", "frown": "sad", "sad": "sad", "unhappy": "sad",
                    "surprised": "surprised", "astonished": "surprised", "shocked": "surprised",
                    "amazed": "surprised", "angry": "angry", "furious": "angry", "scowling": "angry",
                    "disgusted": "disgusted", "afraid": "afraid", "scared": "afraid",
                    "frightened": "afraid", "fearful": "afraid", "neutral": "neutral", "calm": "neutral"}
# known words Likeness deliberately does not ground: nothing here labels them
UNGROUNDED_TOPICS = {
    "age": ("old", "young", "elderly", "aged", "teen", "teenage", "teenager", "child", "kid", "baby",
            "middle-aged", "youthful", "senior", "adult", "boy", "girl"),
    "gender": ("man", "woman", "male", "female", "boy", "girl", "guy", "lady", "gentleman",
               "masculine", "feminine", "he", "she", "his", "her"),
    "ethnicity": ("asian", "african", "european", "caucasian", "hispanic", "latino", "latina",
                  "arab", "indian"),
}
STOPWORDS = {"a", "an", "the", "with", "and", "of", "in", "on", "to", "has", "have", "having", "is",
             "are", "who", "that", "which", "person", "face", "someone", "somebody", "people",
             "portrait", "avatar", "character", "head", "looking", "look", "looks", "but", "also",
             "plus", "their", "its", "it", "this", "set", "pair", "features", "feature", "more",
             "less", "make", "give", "them", "her", "his", "very", "by", "for", "as", "like", "hair",
             "eyes", "skin", "colour", "color", "coloured", "colored", "shape", "shaped", "one", "bit"}
