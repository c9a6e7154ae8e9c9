"""ascii_folded agrees with re.IGNORECASE on every character it treats as an ASCII letter."""

import re
import string
import sys

from publisher.text.casefold import ascii_folded


def test_every_character_re_takes_for_an_ascii_letter_folds_to_it() -> None:
    letters = {letter: re.compile(letter, re.IGNORECASE) for letter in string.ascii_lowercase}
    taken = 0
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if not char.isalpha():
            continue
        for letter, pattern in letters.items():
            if pattern.fullmatch(char):
                taken += 1
                assert ascii_folded(char) == letter, hex(code)
    assert taken == 2 * 26 + 4  # A-Z, a-z and İ ı ſ K


def test_other_text_is_lower_cased() -> None:
    assert ascii_folded("JavaScript: ſcript İ") == "javascript: script i"
