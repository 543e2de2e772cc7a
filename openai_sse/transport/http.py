"""Sending one request on aiohttp: redirects followed by this package, broken bodies surfaced.

aiohttp's own redirect handling strips only ``Authorization`` on a change of origin, so an
Azure ``api-key``, ``OpenAI-Organization`` / ``OpenAI-Project`` and a re-sent POST body (the
prompt) would reach whatever host a redirect names. Here redirects are followed only within
the request's origin (scheme, host and port), at most :data:`MAX_REDIRECTS` times; a redirect
anywhere else fails with :class:`~openai_sse.errors.RedirectError` before anything is sent there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import aiohttp
from yarl import URL

from .._redact import mask_url
from ..errors import RedirectError
from .request import Request

__all__ = ["MAX_REDIRECTS", "MaskedResponse", "send", "watch_connection"]

MAX_REDIRECTS: Final = 5
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_BODY_HEADERS: Final = frozenset({"content-type", "content-length", "content-encoding"})


async def send(
    session: aiohttp.ClientSession,
    request: Request,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: aiohttp.ClientTimeout,
) -> aiohttp.ClientResponse:
    """Send ``request`` (with ``headers`` instead of its own, if given) and return the response.

    301/302 turn a POST into a GET without body, 303 turns anything but HEAD into one; 307
    and 308 repeat the method and body. A closed session is reported as a connection error.
    """
    if session.closed:
        raise aiohttp.ClientConnectionError("The aiohttp session is closed.")
    method = request.method
    url = URL(request.url)
    sent_headers: Mapping[str, str] = request.headers if headers is None else headers
    json: Any = request.json
    data = request.data
    for _ in range(MAX_REDIRECTS + 1):
        try:
            response = await session.request(
                method,
                url,
                headers=sent_headers,
                json=json,
                data=data,
                timeout=timeout,
                allow_redirects=False,
            )
        except RuntimeError as exc:
            # aiohttp says "Session is closed" this way when the caller closes it meanwhile.
            if session.closed:
                raise aiohttp.ClientConnectionError("The aiohttp session is closed.") from exc
            raise
        if not isinstance(response, MaskedResponse):
            _mask(response)  # sessions make plain responses (or a class of the caller's)
        location = response.headers.get("Location")
        if response.status not in _REDIRECTS or not location:
            return response
        response.release()
        try:
            target = url.join(URL(location))
        except ValueError as exc:
            raise RedirectError(
                f"The server redirected to an invalid location: {mask_url(location)}",
                location=mask_url(location),
                status_code=response.status,
                response=response,
            ) from exc
        if target.origin() != url.origin():
            shown = mask_url(target)
            raise RedirectError(
                f"The server redirected ({response.status}) to another origin: {shown}; "
                "not followed, so no credential or request body leaves "
                f"{mask_url(url.origin())}. Point base_url at the final address.",
                location=shown,
                status_code=response.status,
                response=response,
            )
        status = response.status
        if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
            method, json, data = "GET", None, None
            sent_headers = {k: v for k, v in sent_headers.items() if k.lower() not in _BODY_HEADERS}
        url = target
    raise RedirectError(
        f"More than {MAX_REDIRECTS} redirects, last to {mask_url(url)}.",
        location=mask_url(url),
        status_code=response.status,
        response=response,
    )


class MaskedResponse(aiohttp.ClientResponse):
    """A response whose repr masks the URL's secrets: :func:`send` gives every response
    it returns this repr."""

    def __repr__(self) -> str:
        reason = (self.reason or "None").encode("ascii", "backslashreplace").decode("ascii")
        return f"<ClientResponse({mask_url(self.url)}) [{self.status} {reason}]>"


def _mask(response: aiohttp.ClientResponse) -> None:
    """Give ``response`` the masked repr: it reaches listeners, errors and logs."""
    cls = type(response)
    masked = _MASKED.get(cls)
    if masked is None:
        namespace = {"__repr__": MaskedResponse.__repr__, "__slots__": ()}
        masked = _MASKED[cls] = type(cls.__name__, (cls,), namespace)
    response.__class__ = masked


# A response class -> its subclass with the masked repr.
_MASKED: dict[type[aiohttp.ClientResponse], type[aiohttp.ClientResponse]] = {
    aiohttp.ClientResponse: MaskedResponse
}


def watch_connection(response: aiohttp.ClientResponse) -> Callable[[], None]:
    """Make a connection lost mid-body fail the body read at once; returns the undo.

    aiohttp's C parser closes the connection on bad chunked framing (a broken chunk size)
    without telling the body's reader, which would then wait for data forever. The response
    handler is the connection's protocol, so the hook is removed again before the connection
    can serve another request.
    """
    connection = response.connection
    protocol = connection.protocol if connection is not None else None
    if protocol is None:
        return _nothing
    original = protocol.connection_lost
    content = response.content

    def connection_lost(exc: BaseException | None) -> None:
        failure = protocol.exception()
        original(exc)
        if not content.is_eof() and content.exception() is None:
            detail = _first_line(failure or exc) or "the server closed it"
            content.set_exception(
                aiohttp.ClientPayloadError(f"The connection broke off mid-body: {detail}")
            )

    def undo() -> None:
        vars(protocol).pop("connection_lost", None)

    protocol.connection_lost = connection_lost  # type: ignore[method-assign]
    return undo


def _nothing() -> None:
    return None


def _first_line(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    message = getattr(exc, "message", None)
    text = message if isinstance(message, str) and message.strip() else str(exc)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
