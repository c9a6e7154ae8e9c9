"""What re's IGNORECASE treats as an ASCII letter, for plain string tests that must agree with it.

Besides A-Z, exactly four characters match an ASCII letter under `re.IGNORECASE` (checked over
every code point in tests/test_casefold.py): İ and ı match i, ſ matches s, the Kelvin sign K
matches k. `str.lower()` alone maps only K, and İ to two characters.
"""

ASCII_FOLDS = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def ascii_folded(text: str) -> str:
    """`text` lower-cased, with the four letters re's IGNORECASE takes for ASCII made ASCII."""
    return text.translate(ASCII_FOLDS).lower()
