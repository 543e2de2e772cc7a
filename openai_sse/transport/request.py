"""The request an event source sends: a small immutable value, like OkHttp's ``Request``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .._redact import mask_headers, mask_url, secrets_of

__all__ = ["Request"]


@dataclass(frozen=True, repr=False)
class Request:
    """One HTTP request; ``json`` and ``data`` are mutually exclusive bodies."""

    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    data: bytes | str | None = None

    def __init__(
        self,
        url: str,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: bytes | str | None = None,
    ) -> None:
        if json is not None and data is not None:
            raise ValueError("Request takes json or data, not both")
        # One update of the frozen instance's dict: a request is made per call, and five
        # object.__setattr__ calls cost as much as the rest of the request's preparation.
        self.__dict__.update(
            url=str(url),
            method=method.upper(),
            headers=dict(headers or {}),
            json=json,
            data=data,
        )

    def __repr__(self) -> str:
        # Credentials never reach logs or tracebacks through a repr.
        headers = mask_headers(self.headers)
        return f"Request({self.method} {mask_url(self.url)}, headers={headers!r})"

    @property
    def safe_url(self) -> str:
        """The URL with userinfo and key-like query values masked, for messages and logs."""
        return mask_url(self.url)

    def secrets(self) -> tuple[str, ...]:
        """The credentials this request carries (headers, userinfo, key-like query values)."""
        return secrets_of(self.url, self.headers)

    def header(self, name: str) -> str | None:
        """Case-insensitive header lookup, as HTTP wants."""
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    def with_header(self, name: str, value: str) -> Request:
        """A copy with ``name`` set to ``value``, replacing any spelling of it."""
        lowered = name.lower()
        headers = {k: v for k, v in self.headers.items() if k.lower() != lowered}
        headers[name] = value
        return replace(self, headers=headers)
