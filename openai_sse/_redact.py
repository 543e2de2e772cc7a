"""Masking of credentials, so no key reaches a message, a repr or a log line.

Three places hold secrets: credential headers (``Authorization``, ``api-key``, ...), the
userinfo of a URL, and query parameters named like keys (Azure SAS ``sig``, ``api-key``,
``token``, ...). Everything this package prints goes through :func:`mask_url` or
:func:`mask_text`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "SECRET_HEADERS",
    "is_secret_header",
    "mask_body",
    "mask_headers",
    "mask_text",
    "mask_url",
    "secrets_of",
]

MASK: Final = "***"

SECRET_HEADERS: Final = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        "openai-organization",
        "openai-project",
        "cookie",
    }
)
"""Headers that identify or authorise the caller; never sent to another origin, never shown."""

_SECRET_PARAMS: Final = frozenset(
    {
        "api-key",
        "api_key",
        "apikey",
        "key",
        "token",
        "access_token",
        "auth",
        "sig",
        "signature",
        "secret",
        "password",
        "code",
        "x-api-key",
    }
)
# Values shorter than this are not searched for in free text: masking "1" would garble it.
_MIN_SECRET: Final = 4


def is_secret_header(name: str) -> bool:
    return name.lower() in SECRET_HEADERS


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy with every credential header's value replaced by ``***``."""
    return {k: MASK if is_secret_header(k) else v for k, v in headers.items()}


def _secret_param(name: str) -> bool:
    return name.lower() in _SECRET_PARAMS


def mask_url(url: object) -> str:
    """``url`` with its userinfo and key-like query values replaced by ``***``."""
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pieces = []
        for piece in query.split("&"):
            name, eq, _ = piece.partition("=")
            if eq and _secret_param(unquote(name)):
                piece = f"{name}={MASK}"
            pieces.append(piece)
        query = "&".join(pieces)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def secrets_of(url: object = None, headers: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The secret values a request carries, to be searched for in text it causes."""
    found: list[str] = []
    for name, value in (headers or {}).items():
        if is_secret_header(name) and value:
            found.append(value)
            scheme, _, credential = value.partition(" ")
            if credential and scheme.lower() in ("bearer", "basic", "token"):
                found.append(credential)
    if url is not None:
        try:
            parts = urlsplit(str(url))
        except ValueError:
            parts = None
        if parts is not None:
            if parts.password:
                found += [parts.password, unquote(parts.password)]
            if parts.username and parts.password is None:
                found += [parts.username, unquote(parts.username)]
            for name, value in parse_qsl(parts.query, keep_blank_values=False):
                if _secret_param(name):
                    found += [value, quote(value, safe="")]
    # Longest first, so a key is masked whole before any shorter value inside it.
    unique = {s for s in found if len(s) >= _MIN_SECRET}
    return tuple(sorted(unique, key=len, reverse=True))


def mask_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets`` replaced by ``***``."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_body(body: Any, secrets: tuple[str, ...]) -> Any:
    """A decoded error body with every string in it masked (dicts and lists walked)."""
    if not secrets:
        return body
    if isinstance(body, str):
        return mask_text(body, secrets)
    if isinstance(body, dict):
        return {k: mask_body(v, secrets) for k, v in body.items()}
    if isinstance(body, list):
        return [mask_body(v, secrets) for v in body]
    return body
