"""The Redis store: any number of relay processes serve any stream.

Each generation is one Redis Stream (``XADD`` per event, ``MAXLEN ~`` bound, a TTL renewed
on every write), a small hash marking its end, a lease key renewed by followers and an
owner key renewed by the instance that runs the generation. Stop
requests go out on one pub/sub channel; the instance running the generation acts on them.
Keys share a ``{stream id}`` hash tag, so they live in one slot of a Redis Cluster.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from .store import InvalidEventId, StoreUnavailable, StreamEvent

__all__ = ["RedisStore"]

logger = logging.getLogger("openai_sse.relay")

_T = TypeVar("_T")
_timeout = getattr(asyncio, "timeout", None)
_STREAM_ID = re.compile(r"\d{1,20}(-\d{1,20})?")

# Append events unless the stream is unknown or already ended, in one atomic step.
# ARGV: ttl in ms, maxlen, then kind and data of each event.
_EXTEND = """
if redis.call('EXISTS', KEYS[2]) == 0 or redis.call('HEXISTS', KEYS[2], 'ended') == 1 then
  return false
end
local ids = {}
for i = 3, #ARGV, 2 do
  local kind, data = ARGV[i], ARGV[i + 1]
  ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'k', kind, 'd', data)
  if ARGV[i] == 'done' or ARGV[i] == 'error' then
    redis.call('HSET', KEYS[2], 'ended', '1')
    break
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return ids
"""


class RedisStore:
    """Streams in Redis at ``url``; errors reaching it become :class:`StoreUnavailable`.

    ``timeout`` bounds every command (beyond a blocking read's own wait), so an unreachable
    or stalled Redis gives a quick, clear error instead of a hang. A follower holds one
    connection while it waits for events, hence the large ``max_connections``.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        ttl: float = 3600.0,
        maxlen: int = 100_000,
        prefix: str = "openai-sse:",
        timeout: float = 3.0,
        max_connections: int = 10_000,
    ) -> None:
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.ttl = ttl
        self.maxlen = maxlen
        self.prefix = prefix
        self.timeout = timeout
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._listen_errors = (*self._errors, asyncio.TimeoutError)
        self._redis: Any = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=timeout,
            socket_timeout=None,  # blocking reads wait longer; every call has its own bound
            retry=Retry(NoBackoff(), 0),
            max_connections=max_connections,
        )
        self._extend = self._redis.register_script(_EXTEND)
        self._channel = prefix + "stop"

    def _keys(self, stream_id: str) -> tuple[str, str, str]:
        base = f"{self.prefix}{{{stream_id}}}"
        return base, base + ":meta", base + ":lease"

    def _owner_key(self, stream_id: str) -> str:
        return f"{self.prefix}{{{stream_id}}}:owner"

    async def _call(self, awaitable: Awaitable[_T], extra: float = 0.0) -> _T:
        try:
            if _timeout is None:  # Python 3.10
                return await asyncio.wait_for(awaitable, self.timeout + extra)
            async with _timeout(self.timeout + extra):  # no task per command, unlike wait_for
                return await awaitable
        except asyncio.TimeoutError:
            raise StoreUnavailable("Redis did not answer in time") from None
        except self._errors as exc:
            raise StoreUnavailable(f"Redis is unreachable: {type(exc).__name__}") from exc

    async def create(self, stream_id: str, *, lease: float) -> None:
        _, meta, lease_key = self._keys(stream_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(meta, "created", "1")
        pipe.pexpire(meta, int(self.ttl * 1000))
        pipe.set(lease_key, "1", px=max(int(lease * 1000), 1))
        await self._call(pipe.execute())

    async def exists(self, stream_id: str) -> bool:
        _, meta, _ = self._keys(stream_id)
        return bool(await self._call(self._redis.exists(meta)))

    async def extend(self, stream_id: str, events: Sequence[tuple[str, str]]) -> list[str] | None:
        stream, meta, _ = self._keys(stream_id)
        args: list[str | int] = [int(self.ttl * 1000), self.maxlen]
        for kind, data in events:
            args += [kind, data]
        result = await self._call(self._extend(keys=[stream, meta], args=args))
        return None if result is None else [str(id) for id in result]

    async def read(self, stream_id: str, after: str | None, *, timeout: float) -> list[StreamEvent]:
        if after is not None and not _STREAM_ID.fullmatch(after):
            raise InvalidEventId(after)
        stream, _, _ = self._keys(stream_id)
        if timeout <= 0:
            reply = await self._call(self._redis.xread({stream: after or "0-0"}))
            if not reply and after is not None and await self._beyond_end(stream, after):
                raise InvalidEventId(after)
        else:
            block = max(int(timeout * 1000), 1)
            reply = await self._call(
                self._redis.xread({stream: after or "0-0"}, block=block), extra=timeout
            )
        if not reply:
            return []
        _, entries = reply[0]
        return [StreamEvent(id, fields["k"], fields["d"]) for id, fields in entries]

    async def _beyond_end(self, stream: str, after: str) -> bool:
        """Whether ``after`` is later than the stream's last id: an id not issued (yet)."""
        last = await self._call(self._redis.xrevrange(stream, count=1))
        return not last or _id_key(after) > _id_key(last[0][0])

    async def renew_lease(self, stream_id: str, lease: float) -> None:
        _, _, lease_key = self._keys(stream_id)
        await self._call(self._redis.set(lease_key, "1", px=max(int(lease * 1000), 1)))

    async def wanted(self, stream_id: str) -> bool:
        _, meta, lease_key = self._keys(stream_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.exists(meta)
        pipe.hexists(meta, "ended")
        pipe.exists(lease_key)
        known, ended, leased = await self._call(pipe.execute())
        return bool(known) and not ended and bool(leased)

    async def heartbeat(self, stream_id: str, ttl: float) -> None:
        key = self._owner_key(stream_id)
        await self._call(self._redis.set(key, "1", px=max(int(ttl * 1000), 1)))

    async def alive(self, stream_id: str) -> bool:
        return bool(await self._call(self._redis.exists(self._owner_key(stream_id))))

    async def request_stop(self, stream_id: str) -> None:
        await self._call(self._redis.publish(self._channel, stream_id))

    async def listen_stops(self, on_stop: Callable[[str], None]) -> None:
        while True:
            try:
                async with self._subscription() as messages:
                    async for stream_id in messages:
                        on_stop(stream_id)
            except self._listen_errors as exc:
                logger.warning("Stop channel lost (%s); resubscribing", type(exc).__name__)
                await asyncio.sleep(1.0)

    @asynccontextmanager
    async def _subscription(self) -> AsyncIterator[AsyncIterator[str]]:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await asyncio.wait_for(pubsub.subscribe(self._channel), self.timeout)
            yield _messages(pubsub)
        finally:
            await pubsub.aclose()

    async def ping(self) -> None:
        await self._call(self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()

    def __repr__(self) -> str:
        return f"<RedisStore prefix={self.prefix!r}>"


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


async def _messages(pubsub: Any) -> AsyncIterator[str]:
    async for message in pubsub.listen():
        if message.get("type") == "message":
            yield str(message["data"])
