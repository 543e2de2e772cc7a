"""``client.responses``: streamed and plain Responses API calls, and following a stored one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..streaming import Connect
from .models import Response, decode_response
from .stream import ResponseStream

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..client import Client
    from .params import EasyInputMessageParam, ResponseParams

    Input = str | Iterable[EasyInputMessageParam | Mapping[str, Any]]

__all__ = ["Responses"]


class Responses:
    """``client.responses``: :meth:`stream` and :meth:`create` on ``/v1/responses``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def stream(
        self,
        *,
        model: str | None = None,
        input: Input | None = None,
        listeners: Iterable[object] = (),
        response_id: str | None = None,
        starting_after: int | None = None,
        resume: bool = False,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **params: Unpack[ResponseParams],
    ) -> ResponseStream:
        """Start streaming at once and return the :class:`ResponseStream`.

        With ``model`` and ``input`` (plus any request parameter: ``instructions``,
        ``tools``, ``reasoning``, ``max_output_tokens``, ``background``, ...) this creates a
        response. With ``response_id`` it follows a stored (background) response instead,
        from after event ``starting_after`` if given.

        ``resume=True`` (for ``background=True`` or ``response_id``) reconnects when the
        connection drops before the end, after the last ``sequence_number`` seen, so the
        answer arrives whole and listeners see each event once.
        """
        client = self._client
        deadline = client._deadline()
        if response_id is not None:
            if model is not None or input is not None or params:
                raise TypeError(
                    "stream(response_id=...) follows a stored response; it takes no model, "
                    "input or request parameters."
                )
            connect = self._follow(response_id, starting_after, extra_headers, deadline)
        else:
            if model is None:
                raise TypeError("stream() needs model= (and input=), or response_id=.")
            if resume and not params.get("background"):
                raise ValueError(
                    "resume=True needs background=True: only a stored background response "
                    "can be followed again after a dropped connection."
                )
            body: dict[str, Any] = {"model": model, **params}
            if input is not None:
                body["input"] = _input(input)
            body["stream"] = True
            if extra_body:
                body.update(extra_body)
            request = client._request("responses", body, extra_headers)
            connect = client._connect(request, deadline)

        def follow_after(stored_id: str, sequence: int) -> Connect:
            return self._follow(stored_id, sequence, extra_headers, deadline)

        stream = ResponseStream(
            connect,
            listeners,
            retry_delay=client._retry_delay(deadline),
            resume=follow_after if resume else None,
            starting_after=starting_after,
        )
        client._register(stream)
        return stream

    async def create(
        self,
        *,
        model: str,
        input: Input | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **params: Unpack[ResponseParams],
    ) -> Response:
        """One response without streaming, with the same retries, caps and errors as streams."""
        body: dict[str, Any] = {"model": model, **params}
        if input is not None:
            body["input"] = _input(input)
        body.pop("stream", None)
        if extra_body:
            body.update(extra_body)
        return await self._client._post_json("responses", body, extra_headers, decode_response)

    def _follow(
        self,
        response_id: str,
        starting_after: int | None,
        extra_headers: Mapping[str, str] | None,
        deadline: float | None,
    ) -> Connect:
        """``GET /responses/{id}?stream=true[&starting_after=N]``."""
        path = f"responses/{quote(response_id, safe='')}?stream=true"
        if starting_after is not None:
            path += f"&starting_after={int(starting_after)}"
        request = self._client._request(path, None, extra_headers, method="GET")
        return self._client._connect(request, deadline)


def _input(value: object) -> Any:
    """A string as it is; any other iterable of items as a list (a generator too)."""
    if isinstance(value, (str, Mapping)):
        return value
    if isinstance(value, Iterable):
        return list(value)
    raise TypeError(f"input must be a string or a list of items, not {type(value).__name__}")
