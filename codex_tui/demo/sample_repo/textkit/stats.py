"""Word statistics."""

import re

WORD = re.compile(r"[A-Za-z0-9']+")


def words(text):
    """The words of `text`, in order."""
    return WORD.findall(text)


def word_count(text):
    """How many words `text` has."""
    return len(words(text))


def median(values):
    """The median of a non-empty list of numbers."""
    if not values:
        raise ValueError("median() of an empty list")
    ordered = list(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def median_word_length(text):
    """The median length of the words of `text` (0 when there are none)."""
    lengths = [len(w) for w in words(text)]
    return median(lengths) if lengths else 0
