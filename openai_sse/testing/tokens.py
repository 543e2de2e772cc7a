"""How the mock model cuts text into streamed pieces, and the random ids it stamps on them."""

from __future__ import annotations

import functools
import random
import re
import string
from collections.abc import Sequence

__all__ = [
    "ALNUM",
    "CJK_RANGES",
    "HEX",
    "RANDOM",
    "as_tokens",
    "fragments",
    "random_id",
    "tokenize",
]

CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN_RE = re.compile(
    rf"(?P<cjk>[{CJK_RANGES}]+)"
    rf"| ?(?:(?![{CJK_RANGES}])[^\W\d_])+(?:'(?:(?![{CJK_RANGES}])[^\W\d_])+)?"
    r"| ?\d{1,3}"
    r"|\n+"
    r"|[^\S\n]+(?=\n|$)"
    r"| ?[^\s\w]"
    r"|[^\S\n]+"
    r"|[\s\S]"
)


def tokenize(text: str) -> list[str]:
    """Split text roughly the way a BPE tokenizer streams it; the pieces join back exactly.

    English comes out as words carrying their leading space, CJK as one or two characters per
    token, punctuation and newlines on their own, so paced streams look like a real model's.
    """
    tokens: list[str] = []
    for match in _TOKEN_RE.finditer(text):
        run = match.group("cjk")
        if run is None:
            tokens.append(match.group())
            continue
        pos, size = 0, 2
        while pos < len(run):
            tokens.append(run[pos : pos + size])
            pos += size
            size = 3 - size
    return tokens


def as_tokens(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return tokenize(value)
    return [str(piece) for piece in value]


def fragments(text: str) -> list[str]:
    """Cut tool-call arguments into the short uneven fragments OpenAI streams."""
    out: list[str] = []
    pos, sizes = 0, (4, 5, 6, 3)
    step = 0
    while pos < len(text):
        size = sizes[step % len(sizes)]
        out.append(text[pos : pos + size])
        pos += size
        step += 1
    return out


ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
# Ids only need to be unique, not unguessable: a generator of the server's own (seeded from the
# OS, so a test seeding ``random`` does not repeat them) is far cheaper than secrets.
RANDOM = random.Random()


@functools.cache
def _byte_to_char(alphabet: str) -> bytes:
    return (alphabet * (256 // len(alphabet) + 1))[:256].encode()


def random_id(prefix: str, length: int, alphabet: str = ALNUM) -> str:
    """``prefix`` and ``length`` random characters of ``alphabet`` (ASCII; near-uniform)."""
    return prefix + RANDOM.randbytes(length).translate(_byte_to_char(alphabet)).decode()
