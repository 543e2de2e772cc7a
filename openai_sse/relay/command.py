"""``openai-sse relay``: run the relay in the foreground until interrupted.

Only argparse is loaded when the parser is built; aiohttp, redis and the embedded server
load when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from typing import Any

from .._loops import loop_name, run

__all__ = ["DEFAULT_RELAY_PORT", "add_relay_command", "relay_command"]

DEFAULT_RELAY_PORT = 8080


def add_relay_command(commands: Any) -> argparse.ArgumentParser:
    """Add the ``relay`` subcommand to the ``openai-sse`` parser's subcommands."""
    from ..cli import _add_address, _add_loop, _positive, _rate

    relay: argparse.ArgumentParser = commands.add_parser(
        "relay",
        help="serve the relay: resumable streams for browsers, a chat page, a pass-through",
        description=(
            "Relay an OpenAI-compatible API to browsers: POST /v1/chat/completions and "
            "/v1/responses pass through; /v1/streams keeps answers resumable (Redis shares "
            "them between relay processes); GET / is a chat page. Without --upstream it "
            "relays the embedded offline server."
        ),
    )
    _add_address(relay, DEFAULT_RELAY_PORT)
    relay.add_argument(
        "--upstream",
        metavar="URL",
        help="upstream API base URL, e.g. https://api.openai.com/v1 (default: embedded server)",
    )
    relay.add_argument(
        "--api-key", metavar="KEY", help="upstream API key (env: OPENAI_API_KEY); never sent on"
    )
    relay.add_argument(
        "--redis",
        metavar="URL",
        help="keep streams in Redis (redis://host:6379/0) so any relay process serves them",
    )
    relay.add_argument(
        "--token",
        metavar="T",
        help="require Authorization: Bearer T from clients (env: OPENAI_SSE_RELAY_TOKEN)",
    )
    relay.add_argument(
        "--grace",
        type=_positive,
        default=30.0,
        metavar="SECONDS",
        help="stop a generation nobody has listened to for this long (%(default)s)",
    )
    relay.add_argument(
        "--keepalive",
        type=_positive,
        default=15.0,
        metavar="SECONDS",
        help="comment line on idle streams this often (%(default)s)",
    )
    relay.add_argument(
        "--owner-timeout",
        type=_positive,
        default=10.0,
        metavar="SECONDS",
        help="end a stream as lost when its generating process is silent this long (%(default)s)",
    )
    relay.add_argument(
        "--rate",
        type=_rate,
        metavar="TOKENS_PER_S",
        help="pace of the embedded server when there is no --upstream",
    )
    _add_loop(relay)
    relay.add_argument(
        "-v", "--verbose", action="store_true", help="log one line per request on standard error"
    )
    relay.set_defaults(handler=relay_command, command_parser=relay)
    return relay


def relay_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..cli import EXIT_ERROR, EXIT_INTERRUPTED

    if args.rate is not None and args.upstream:
        parser.error("--rate paces the embedded server only; drop it or drop --upstream")
    import logging

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if args.verbose else logging.WARNING,
        format="openai-sse: %(asctime)s %(name)s %(message)s",
    )
    token = args.token or os.environ.get("OPENAI_SSE_RELAY_TOKEN") or None
    api_key = args.api_key or os.environ.get("OPENAI_API_KEY") or None
    try:
        run(_serve(args, token, api_key), args.loop)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        for secret in (token, api_key):
            if secret:
                text = text.replace(secret, "***")
        _say(f"error: {text}")
        return EXIT_ERROR
    return 0


async def _serve(args: argparse.Namespace, token: str | None, api_key: str | None) -> None:
    from yarl import URL

    from ..cli import _delay
    from .app import Relay
    from .store import Store, StoreUnavailable

    async with contextlib.AsyncExitStack() as stack:
        upstream = args.upstream
        if not upstream:
            from ..testing.server import MockServer

            server = await stack.enter_async_context(MockServer(delay=_delay(args.rate)))
            upstream = server.base_url
            _say(f"no --upstream: relaying the embedded offline server at {upstream}")
        store: Store | None = None
        if args.redis:
            from .redis_store import RedisStore

            store = RedisStore(args.redis)
            stack.push_async_callback(store.close)
            try:
                await store.ping()
            except StoreUnavailable as exc:
                _say(f"warning: {exc}; new streams get 503 until it answers")
        relay = Relay(
            upstream=upstream,
            api_key=api_key,
            store=store,
            token=token,
            grace=args.grace,
            keepalive=args.keepalive,
            owner_timeout=args.owner_timeout,
        )
        await relay.start(args.host, args.port)
        stack.push_async_callback(relay.close)
        shown = URL(upstream).with_user(None).with_password(None).with_query(None)
        where = "Redis" if args.redis else "memory"
        _say(
            f"upstream {shown}; streams kept in {where}; token {'required' if token else 'off'}; "
            f"event loop: {loop_name()}"
        )
        if args.loop == "auto" and loop_name() == "asyncio":
            _say("uvloop is not installed; with it the relay needs about half the CPU per chunk")
            _say("pip install 'openai-sse[relay]' (Linux and macOS)")
        print(f"openai-sse relay: serving on {relay.url}", flush=True)
        await _until_signalled()


async def _until_signalled() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


def _say(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(f"openai-sse: {message}", file=sys.stderr, flush=True)
