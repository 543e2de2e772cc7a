"""The ``openai-sse`` command line: stream one chat answer, or serve the embedded mock API.

``openai-sse chat PROMPT`` prints the answer as it streams. Without an API key and without a
base URL it answers offline from the embedded :class:`~openai_sse.testing.MockServer`.
``openai-sse serve`` runs that server in the foreground for other clients.

Only the standard library and the already loaded package are imported up front, so
``--help`` stays quick; the client, asyncio machinery and the server load when a command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from ._version import __version__
from .chat.listener import ChatListener

if TYPE_CHECKING:
    import asyncio

    from .chat.models import (
        ChatCompletion,
        ChatCompletionChunk,
        ChatCompletionMessageToolCall,
    )
    from .chat.stream import ChatStream

__all__ = ["DEFAULT_MODEL", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_USAGE", "build_parser", "main"]

PROG = "openai-sse"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_PORT = 8000

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_DIM = "\x1b[2m"
_RESET = "\x1b[0m"


# --------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------


_N = TypeVar("_N", int, float)


def _number(
    convert: Callable[[str], _N], minimum: float, *, strict: bool = False
) -> Callable[[str], _N]:
    """An argparse type: ``convert``, then a finite value >= ``minimum`` (> with ``strict``)."""
    kind = "an integer" if convert is int else "a number"
    bound = f"greater than {minimum:g}" if strict else f"{minimum:g} or more"

    def parse(text: str) -> _N:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {kind}: {text!r}") from None
        if not (value > minimum if strict else value >= minimum) or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a finite number, {bound}")
        return value

    return parse


_rate = _number(float, 0)  # 0: no pacing
_positive = _number(float, 0, strict=True)
_count = _number(int, 0)


def _port(text: str) -> int:
    value = _count(text)
    if value > 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for both commands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Stream OpenAI-compatible chat completions over server-sent events, or serve an "
            "offline OpenAI-compatible API."
        ),
        epilog=(
            "Without OPENAI_API_KEY and without a base URL, 'chat' answers offline from the "
            "embedded mock server. Exit codes: 0 success, 1 error, 2 usage error, "
            "130 interrupted."
        ),
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    chat = commands.add_parser(
        "chat",
        help="stream the answer to one prompt",
        description=(
            "Stream the answer to PROMPT, printing each piece as it arrives. The API key and "
            "base URL come from the options, else from OPENAI_API_KEY and OPENAI_BASE_URL; "
            "with neither, the embedded offline server answers."
        ),
    )
    chat.add_argument(
        "prompt",
        nargs="?",
        metavar="PROMPT",
        help="the user message; '-' or omitted reads it from standard input",
    )
    chat.add_argument("-m", "--model", default=DEFAULT_MODEL, help="model name (%(default)s)")
    chat.add_argument("-s", "--system", metavar="TEXT", help="a system message to send first")
    chat.add_argument("--base-url", metavar="URL", help="API base URL (env: OPENAI_BASE_URL)")
    chat.add_argument("--api-key", metavar="KEY", help="API key (env: OPENAI_API_KEY)")
    chat.add_argument("-t", "--temperature", type=float, metavar="T", help="sampling temperature")
    chat.add_argument(
        "--max-tokens", type=_count, metavar="N", help="upper bound on the answer's tokens"
    )
    chat.add_argument(
        "--json", action="store_true", help="print every chunk as one JSON line instead of text"
    )
    chat.add_argument(
        "--usage",
        action="store_true",
        help="print token usage and timings on standard error at the end",
    )
    chat.add_argument(
        "--offline",
        action="store_true",
        help="use the embedded offline server even when a key or base URL is configured",
    )
    chat.add_argument(
        "--rate",
        type=_rate,
        metavar="TOKENS_PER_S",
        help="pace of the embedded offline server (default about 33 tokens/s; 0: no pacing)",
    )
    chat.add_argument(
        "--timeout",
        type=_positive,
        metavar="SECONDS",
        help="connect, first-event and idle timeout (default 10 s to connect, 600 s otherwise)",
    )
    chat.add_argument(
        "--max-retries",
        type=_count,
        default=2,
        metavar="N",
        help="retries before the first token, on connection errors, 429 and 5xx (%(default)s)",
    )
    chat.set_defaults(handler=_chat_command, command_parser=chat)

    serve = commands.add_parser(
        "serve",
        help="serve the offline OpenAI-compatible API in the foreground",
        description=(
            "Run the embedded OpenAI-compatible server (POST /v1/chat/completions, GET "
            "/v1/models) until interrupted. Point any OpenAI client at the printed base URL."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (%(default)s)")
    serve.add_argument(
        "-p",
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help="port to listen on; 0 picks a free one (%(default)s)",
    )
    serve.add_argument(
        "--rate",
        type=_rate,
        metavar="TOKENS_PER_S",
        help="streaming pace (default about 33 tokens/s; 0: as fast as possible)",
    )
    serve.add_argument(
        "--script",
        metavar="FILE",
        help="JSON (or JSON lines) reply script: one entry per request, then default replies",
    )
    serve.add_argument(
        "--api-key",
        metavar="KEY",
        help="require this key (Authorization: Bearer KEY); by default any key is accepted",
    )
    serve.set_defaults(handler=_serve_command, command_parser=serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace, argparse.ArgumentParser], int] | None = getattr(
        args, "handler", None
    )
    if handler is None:
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: a command is required (chat or serve)", file=sys.stderr)
        return EXIT_USAGE
    return handler(args, args.command_parser)


# --------------------------------------------------------------------------------------------
# Shared plumbing
# --------------------------------------------------------------------------------------------


def _error(error: BaseException, *secrets: str | None) -> int:
    """Report ``error`` on one line of standard error, with any secret masked out."""
    text = " ".join(str(error).split()) or "(no details)"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    _say(f"error: {type(error).__name__}: {text}")
    return EXIT_ERROR


def _say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def _delay(rate: float | None) -> float:
    """Seconds per token for a rate in tokens per second; the server's own pace by default."""
    if rate is None:
        from .testing.server import DEFAULT_DELAY

        return DEFAULT_DELAY
    return 0.0 if rate == 0 else 1.0 / rate


def _run(main: Callable[[], Coroutine[Any, Any, int]], on_interrupt: Callable[[], int]) -> int:
    """``asyncio.run`` with Ctrl-C as a normal outcome.

    The coroutines install their own SIGINT handlers where the loop supports them; this
    catches the KeyboardInterrupt that arrives instead on platforms where it does not.
    """
    import asyncio

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return on_interrupt()


def _add_signal_handler(
    loop: asyncio.AbstractEventLoop, name: str, callback: Callable[[], None]
) -> bool:
    import signal

    number = getattr(signal, name, None)
    if number is None:
        return False
    try:
        loop.add_signal_handler(number, callback)
    except (NotImplementedError, RuntimeError, ValueError):
        return False
    return True


def _remove_signal_handler(loop: asyncio.AbstractEventLoop, name: str) -> None:
    import signal

    number = getattr(signal, name, None)
    if number is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(number)


def _tolerant(stream: TextIO) -> None:
    """Let text the terminal's encoding cannot show come out escaped instead of failing."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        with contextlib.suppress(ValueError, OSError):
            reconfigure(errors="backslashreplace")


def _use_color(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


# --------------------------------------------------------------------------------------------
# chat
# --------------------------------------------------------------------------------------------


class _Printer(ChatListener):
    """Writes the first choice as it streams: text to stdout, reasoning dimmed to stderr."""

    raise_errors = True

    def __init__(self, out: TextIO, err: TextIO, *, json_lines: bool) -> None:
        self.out = out
        self.err = err
        self.json_lines = json_lines
        self.color = _use_color(err)
        self.written = ""
        self.reasoning = False

    def _write(self, text: str) -> None:
        if not text:
            return
        if self.reasoning:
            self._end_reasoning()
        self.out.write(text)
        self.out.flush()
        self.written = text

    def _end_reasoning(self) -> None:
        self.reasoning = False
        self.err.write((_RESET if self.color else "") + "\n")
        self.err.flush()

    def on_chunk(self, stream: ChatStream, chunk: ChatCompletionChunk) -> None:
        if self.json_lines:
            self.out.write(chunk.to_json() + "\n")
            self.out.flush()

    def on_content(self, stream: ChatStream, delta: str, index: int) -> None:
        if index == 0 and not self.json_lines:
            self._write(delta)

    def on_refusal(self, stream: ChatStream, delta: str, index: int) -> None:
        if index == 0 and not self.json_lines:
            self._write(delta)

    def on_reasoning(self, stream: ChatStream, delta: str, index: int) -> None:
        if index != 0 or self.json_lines or not delta:
            return
        if not self.reasoning:
            self.reasoning = True
            if self.color:
                self.err.write(_DIM)
        self.err.write(delta)
        self.err.flush()

    def on_tool_call(
        self, stream: ChatStream, tool_call: ChatCompletionMessageToolCall, index: int
    ) -> None:
        if index != 0 or self.json_lines:
            return
        self.finish()
        function = tool_call.function
        self._write(f"[tool call] {function.name}({function.arguments})\n")

    def finish(self) -> None:
        """End the reasoning block and the last line, so the prompt starts on a fresh line."""
        if self.reasoning:
            self._end_reasoning()
        if self.written and not self.written.endswith("\n"):
            self.out.write("\n")
            self.out.flush()
            self.written = "\n"


def _read_prompt(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    prompt: str | None = args.prompt
    if prompt is None or prompt == "-":
        if prompt is None and sys.stdin.isatty():
            parser.error("PROMPT is required (or pipe it on standard input)")
        prompt = sys.stdin.read()
    if not prompt.strip():
        parser.error("the prompt is empty")
    return prompt


def _chat_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    prompt = _read_prompt(args, parser)
    api_key: str | None = args.api_key or os.environ.get("OPENAI_API_KEY") or None
    base_url: str | None = args.base_url or os.environ.get("OPENAI_BASE_URL") or None
    offline = bool(args.offline or (api_key is None and base_url is None))
    if args.rate is not None and not offline:
        parser.error(
            "--rate paces the embedded offline server only; add --offline to use it, or drop --rate"
        )
    messages: list[dict[str, str]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": prompt})
    params: dict[str, Any] = {}
    if args.temperature is not None:
        params["temperature"] = args.temperature
    if args.max_tokens is not None:
        params["max_tokens"] = args.max_tokens
    printer = _Printer(sys.stdout, sys.stderr, json_lines=args.json)
    _tolerant(sys.stdout)
    _tolerant(sys.stderr)
    session = _ChatSession(
        printer,
        model=args.model,
        messages=messages,
        params=params,
        api_key=None if offline else api_key,
        base_url=None if offline else base_url,
        delay=_delay(args.rate) if offline else None,
        timeout=args.timeout,
        max_retries=args.max_retries,
        usage=args.usage,
    )

    def interrupted() -> int:
        printer.finish()
        return EXIT_INTERRUPTED

    try:
        return _run(session.run, interrupted)
    except BrokenPipeError:
        return _closed_stdout()


def _closed_stdout() -> int:
    """The reader went away (``openai-sse chat ... | head``): stop quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_ERROR


class _ChatSession:
    """One ``chat`` run: the optional embedded server, the client, the stream and Ctrl-C."""

    def __init__(
        self,
        printer: _Printer,
        *,
        model: str,
        messages: list[dict[str, str]],
        params: dict[str, Any],
        api_key: str | None,
        base_url: str | None,
        delay: float | None,
        timeout: float | None,
        max_retries: int,
        usage: bool,
    ) -> None:
        self.printer = printer
        self.model = model
        self.messages = messages
        self.params = params
        self.api_key = api_key
        self.base_url = base_url
        self.delay = delay
        self.timeout = timeout
        self.max_retries = max_retries
        self.usage = usage
        self.interrupted = False
        self.stream: ChatStream | None = None
        self.task: asyncio.Task[Any] | None = None

    def _on_sigint(self) -> None:
        if self.interrupted or self.stream is None:
            # Before the stream exists, or a second Ctrl-C while shutting down: stop now.
            self.interrupted = True
            if self.task is not None:
                self.task.cancel()
            return
        self.interrupted = True
        self.stream.cancel()

    async def run(self) -> int:
        import asyncio

        loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        handled = _add_signal_handler(loop, "SIGINT", self._on_sigint)
        try:
            return await self._run()
        except asyncio.CancelledError:
            if not self.interrupted:
                raise
            self.printer.finish()
            return EXIT_INTERRUPTED
        finally:
            if handled:
                _remove_signal_handler(loop, "SIGINT")

    async def _run(self) -> int:
        from contextlib import AsyncExitStack

        from .client import Client
        from .errors import OpenAISSEError, StreamCancelled

        async with AsyncExitStack() as stack:
            try:
                base_url = self.base_url
                if self.delay is not None:
                    from .testing.server import MockServer

                    server = await stack.enter_async_context(MockServer(delay=self.delay))
                    base_url = server.base_url
                    _say(
                        "no OPENAI_API_KEY or --base-url; using the embedded offline server at "
                        f"{base_url}"
                    )
                client = await stack.enter_async_context(
                    Client(
                        self.api_key,
                        base_url=base_url,
                        timeout=self.timeout,
                        max_retries=self.max_retries,
                    )
                )
                stream = self.stream = client.chat.stream(
                    model=self.model,
                    messages=self.messages,
                    listeners=[self.printer],
                    **self.params,
                )
                stack.push_async_callback(stream.aclose)
                completion = await stream
            except StreamCancelled as error:
                self.printer.finish()
                if self.interrupted:
                    return EXIT_INTERRUPTED
                return _error(error, self.api_key)
            except BrokenPipeError:
                raise  # standard output is gone; handled outside the loop
            except (OpenAISSEError, OSError, ValueError) as error:
                self.printer.finish()
                return _error(error, self.api_key)
            self.printer.finish()
            if self.usage:
                _report_usage(stream, completion)
            return EXIT_OK


def _report_usage(stream: ChatStream, completion: ChatCompletion) -> None:
    usage = completion.usage
    if usage is None:
        _say("usage: not reported by the server")
    else:
        _say(
            f"usage: prompt_tokens={usage.prompt_tokens} "
            f"completion_tokens={usage.completion_tokens} total_tokens={usage.total_tokens}"
        )
    metrics = stream.metrics
    parts = []
    if metrics.time_to_first_token is not None:
        parts.append(f"time_to_first_token={metrics.time_to_first_token:.3f}s")
    if metrics.duration is not None:
        parts.append(f"duration={metrics.duration:.3f}s")
    parts.append(f"chunks={metrics.chunks}")
    parts.append(f"bytes={metrics.bytes}")
    tps = metrics.tokens_per_second
    if tps is not None:
        parts.append(f"tokens_per_second={tps:.1f}")
    _say("timing: " + " ".join(parts))


# --------------------------------------------------------------------------------------------
# serve
# --------------------------------------------------------------------------------------------


def _serve_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    _tolerant(sys.stderr)
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "delay": _delay(args.rate),
        "api_key": args.api_key,
    }

    async def serve() -> int:
        import asyncio

        from .testing.server import MockServer

        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        installed = [
            name for name in ("SIGINT", "SIGTERM") if _add_signal_handler(loop, name, stop.set)
        ]
        try:
            try:
                if args.script is not None:
                    server = MockServer.from_script(args.script, **options)
                else:
                    server = MockServer(**options)
                await server.start()
            except (OSError, ValueError, TypeError, KeyError) as error:
                return _error(error, args.api_key)
            try:
                print(f"Serving OpenAI-compatible API at {server.base_url}", flush=True)
                _say("press Ctrl-C to stop")
                await stop.wait()
            finally:
                await server.close()
        finally:
            for name in installed:
                _remove_signal_handler(loop, name)
        return EXIT_OK

    return _run(serve, lambda: EXIT_OK)
