"""Counts in the editor's English: one helper so "1 question" and "3 questions" agree everywhere."""


def counted(count: int, noun: str) -> str:
    """'1 post', '3 posts', '100,000 recipients' (the noun's plural takes an s)."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
