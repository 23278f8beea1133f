"""URL slugs."""

import re
import unicodedata


def slugify(text, sep="-"):
    normalized = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    parts = re.findall(r"[a-z0-9]+", normalized.lower())
    return sep.join(parts)
