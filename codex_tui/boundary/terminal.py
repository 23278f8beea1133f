"""Untrusted text on its way to a terminal: remove every control sequence, keep the words.

Command output, model text, file names and messages quoting them can carry escape sequences that
write the clipboard (OSC 52), retitle the window, clear the screen or move the cursor. Textual and
Rich drop only a few C0 characters (BEL, BS, VT, FF, CR) and let ESC and C1 through, so every
front end passes untrusted text through :func:`strip_controls` before it prints or draws it.

Two more kinds of code point go too: lone surrogates (JSON's `\\ud800` decodes to one; it is not
UTF-8, so the web driver's encode of a frame holding it raises) and the bidi embeddings, overrides
and isolates U+202A–U+202E, U+2066–U+2069 (a bidi terminal would show a command reversed).
"""

from __future__ import annotations

import re
from typing import Final

_STRING_END: Final = r"(?:\x07|\x1b\\|\x9c)?"
"""BEL or ST ends an OSC/DCS/SOS/PM/APC string; a string cut off by the end of the text is removed too."""

_CONTROLS: Final = re.compile(
    # One leading character class lets `re` skip plain text fast (about 10x); what follows the
    # control character is chosen by looking back at it.
    rf"""
    [\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]  # C0 but \t \n, DEL, C1, ...
    (?:
        (?<=\x1b) (?:
            \[ [0-?]* [ -/]* [@-~]                                   # CSI, e.g. ESC [ 2 J
          | [\]PX^_] [^\x07\x1b\x9c]* {_STRING_END}                 # OSC, DCS, SOS, PM, APC
          | [ -/]* [0-~]                                             # two-char sequences (nF, Fp, Fe, Fs)
        )
      | (?<=\x9b) [0-?]* [ -/]* [@-~]                                # 8-bit CSI
      | (?<=[\x90\x98\x9d\x9e\x9f]) [^\x07\x1b\x9c]* {_STRING_END}   # 8-bit DCS, SOS, OSC, PM, APC
    )?                                                               # ... with its whole sequence
    """,
    re.VERBOSE,
)


def strip_controls(text: str) -> str:
    """`text` without terminal control characters, escape sequences, lone surrogates or bidi overrides;
    newline and tab stay, CRLF is LF."""
    return _CONTROLS.sub("", text)
