"""Guess an article's language from the scripts its letters are written in, offline and fast.

Only the writing system is used: kana means Japanese, Hangul Korean, Han without kana Chinese,
and so on. Latin text cannot be told apart this way, so it falls back to English; an editor who
writes French sets `lang: fr` in the front matter.
"""

from __future__ import annotations

import unicodedata
from collections import Counter

DEFAULT_LANG = "en"
# A CJK character carries about as much text as a short word, so it outweighs a Latin letter.
CJK_WEIGHT = 3
# Unicode character-name prefixes → the language that script most likely means.
SCRIPT_LANGS = {
    "HIRAGANA": "ja",
    "KATAKANA": "ja",
    "HALFWIDTH KATAKANA": "ja",
    "HANGUL": "ko",
    "CJK": "zh",
    "CYRILLIC": "ru",
    "GREEK": "el",
    "ARABIC": "ar",
    "HEBREW": "he",
    "THAI": "th",
    "DEVANAGARI": "hi",
    "LATIN": "en",
}


def detect_lang(text: str) -> str:
    """The language code whose script dominates `text`; English when nothing else stands out."""
    counts = _script_counts(text)
    if not counts:
        return DEFAULT_LANG
    kana = counts.get("HIRAGANA", 0) + counts.get("KATAKANA", 0)
    weights: Counter[str] = Counter()
    for script, count in counts.items():
        lang = SCRIPT_LANGS[script]
        # Han characters in a text that also has kana are Japanese kanji.
        if script == "CJK" and kana:
            lang = "ja"
        cjk_like = script in {"CJK", "HIRAGANA", "KATAKANA", "HALFWIDTH KATAKANA", "HANGUL"}
        weights[lang] += count * (CJK_WEIGHT if cjk_like else 1)
    return weights.most_common(1)[0][0]


def _script_counts(text: str) -> Counter[str]:
    """How many letters of each known script the text has (each distinct character named once)."""
    counts: Counter[str] = Counter()
    for ch, count in Counter(text).items():
        if not ch.isalpha() and ch not in "ー々〆":
            continue
        script = _script_of(unicodedata.name(ch, ""))
        if script:
            counts[script] += count
    return counts


def _script_of(name: str) -> str:
    """The SCRIPT_LANGS key a character name starts with, or '' for scripts we do not know."""
    for prefix in SCRIPT_LANGS:
        if name.startswith(prefix):
            return prefix
    if name.startswith(("FULLWIDTH LATIN", "KATAKANA-HIRAGANA")):
        return "LATIN" if "LATIN" in name else "KATAKANA"
    if name.startswith("IDEOGRAPHIC"):
        return "CJK"
    return ""
