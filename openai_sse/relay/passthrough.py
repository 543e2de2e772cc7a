"""``POST /v1/chat/completions`` and ``POST /v1/responses`` forwarded as they are.

The upstream's bytes are copied as they arrive, so any OpenAI client (the official package
included) can take the relay as its base URL. The upstream request lives inside the request
handler: when the downstream client goes away aiohttp cancels the handler, which closes the
upstream connection at once, before the first token as well as mid-answer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from aiohttp import web

from ..client import Client
from ..errors import RedirectError
from ..transport import Request
from ..transport.http import send
from .errors import Redactor, http_error

__all__ = ["forward"]

logger = logging.getLogger("openai_sse.relay")

# Request headers a client may pass on; its Authorization is for the relay and never leaves.
_FORWARDED = ("Accept", "OpenAI-Beta", "Idempotency-Key")
# Response headers worth keeping; length and encoding are aiohttp's to set.
_KEPT_PREFIXES = ("openai-", "x-ratelimit-", "x-request-id")
_KEPT = ("Content-Type", "Retry-After")


async def forward(
    request: web.Request,
    client: Client,
    session: aiohttp.ClientSession,
    path: str,
    body: dict[str, Any],
    redact: Redactor,
) -> web.StreamResponse:
    """Send ``body`` to the upstream's ``path`` and stream its answer back unchanged."""
    extra = {name: request.headers[name] for name in _FORWARDED if name in request.headers}
    upstream_request: Request = client._request(path, body, extra)
    timeout = client.timeout
    try:
        # Redirects stay within the upstream's origin: no key or prompt reaches another host.
        upstream = await send(
            session,
            upstream_request,
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=timeout.connect, sock_read=timeout.idle
            ),
        )
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError, RedirectError) as exc:
        message = redact(f"Upstream unreachable: {type(exc).__name__}: {exc}")
        logger.warning("%s", message)
        return http_error(502, message, type="upstream_error")
    try:
        headers = {
            name: value
            for name, value in upstream.headers.items()
            if name in _KEPT or name.lower().startswith(_KEPT_PREFIXES)
        }
        if upstream.content_type == "text/event-stream":
            headers.update({"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"})
        response = web.StreamResponse(status=upstream.status, headers=headers)
        await response.prepare(request)
        try:
            async for data in upstream.content.iter_any():
                await response.write(data)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            # Headers are gone already: cut the body short so the client sees a broken stream.
            logger.warning("Upstream broke off: %s", redact(f"{type(exc).__name__}: {exc}"))
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
        return response
    finally:
        if upstream.content.at_eof():
            upstream.release()  # the connection goes back to the pool
        else:
            upstream.close()
