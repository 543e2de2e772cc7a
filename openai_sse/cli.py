"""The ``openai-sse`` command line: stream one chat answer, serve the embedded mock API, relay.

``openai-sse chat PROMPT`` prints the answer as it streams. Without an API key and without a
base URL it answers offline from the embedded :class:`~openai_sse.testing.MockServer`.
``openai-sse serve`` runs that server in the foreground for other clients; ``openai-sse
relay`` (in :mod:`openai_sse.relay.command`) serves the relay. Exit statuses are the
``EXIT_*`` constants, documented in ``docs/cli.md``.

Only the standard library and the already loaded package are imported up front, so
``--help`` stays quick; the client, asyncio machinery and the server load when a command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import math
import os
import re
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from ._loops import LOOPS, loop_name, uvloop_installed
from ._version import __version__
from .chat.listener import ChatListener

if TYPE_CHECKING:
    import asyncio

    from .chat.models import (
        ChatCompletion,
        ChatCompletionChunk,
        ChatCompletionMessageToolCall,
    )
    from .chat.params import ChatCompletionMessageParam, ChatParams
    from .chat.stream import ChatStream
    from .responses import Response, ResponseStream, ResponseStreamEvent
    from .responses.models import ResponseFunctionToolCall
    from .testing import ScriptItem

__all__ = [
    "DEFAULT_MODEL",
    "EXIT_CLOSED_OUTPUT",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_REFUSED",
    "EXIT_TERMINATED",
    "EXIT_TRUNCATED",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

PROG = "openai-sse"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_PORT = 8000

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3  # a refusal, or finish_reason "content_filter"
EXIT_TRUNCATED = 4  # finish_reason "length": the token limit cut the answer
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_CLOSED_OUTPUT = 141  # standard output closed by its reader (128 + SIGPIPE), like `yes | head`
EXIT_TERMINATED = 143  # SIGTERM (128 + SIGTERM)

_SIGNAL_EXITS = {"SIGINT": EXIT_INTERRUPTED, "SIGTERM": EXIT_TERMINATED}

_DIM = "\x1b[2m"
_RESET = "\x1b[0m"


# --------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------


def _integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type for whole numbers from ``minimum`` (and up to ``maximum``)."""
    if maximum is not None:
        wanted = f"an integer from {minimum} to {maximum}"
    elif minimum == 1:
        wanted = "a positive integer"
    else:
        wanted = f"an integer, {minimum} or more"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted}, not {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be {wanted}, not {text}")
        return value

    return parse


def _real(minimum: float, *, strict: bool) -> Callable[[str], float]:
    """An argparse type for finite numbers above ``minimum`` (or from it, without ``strict``)."""
    wanted = f"a number greater than {minimum:g}" if strict else f"a number, {minimum:g} or more"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted}, not {text!r}") from None
        if not math.isfinite(value) or not (value > minimum if strict else value >= minimum):
            raise argparse.ArgumentTypeError(f"must be {wanted}, not {text}")
        return value

    return parse


_rate = _real(0, strict=False)  # 0: no pacing
_positive = _real(0, strict=True)
_tokens = _integer(1)
_count = _integer(0)
_port = _integer(0, 65535)


def _add_address(parser: argparse.ArgumentParser, default_port: int) -> None:
    """``--host`` and ``-p/--port``, alike for every command that serves."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (%(default)s)")
    parser.add_argument(
        "-p",
        "--port",
        type=_port,
        default=default_port,
        help="port to listen on; 0 picks a free one (%(default)s)",
    )


def _add_loop(parser: argparse.ArgumentParser) -> None:
    """``--loop``, alike for every command that serves."""
    parser.add_argument(
        "--loop",
        choices=LOOPS,
        default="auto",
        help="event loop: uvloop (openai-sse[uvloop]) when installed, or as asked (%(default)s)",
    )


def _http_url(text: str) -> str | None:
    """Why ``text`` is not usable as an API base URL, or None when it is."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as error:
        return f"{text!r} is not a valid URL ({error})"
    if parts.scheme not in ("http", "https"):
        if not parts.scheme or "://" not in text:
            return f"{text!r} is not a URL; expected http://HOST[:PORT]/v1 or https://..."
        return f"{text!r} uses {parts.scheme}://; only http:// and https:// are supported"
    if not parts.hostname:
        return f"{text!r} has no host name"
    return None


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
            "embedded mock server. Exit codes: 0 success, 1 error, 2 usage error, 3 refused "
            "or filtered, 4 cut at the token limit, 130 Ctrl-C, 141 output closed, "
            "143 SIGTERM."
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
    chat.add_argument(
        "--api",
        choices=("chat", "responses"),
        default="chat",
        help="stream Chat Completions or the Responses API (%(default)s)",
    )
    chat.add_argument("-s", "--system", metavar="TEXT", help="a system message to send first")
    chat.add_argument("--base-url", metavar="URL", help="API base URL (env: OPENAI_BASE_URL)")
    chat.add_argument("--api-key", metavar="KEY", help="API key (env: OPENAI_API_KEY)")
    chat.add_argument("-t", "--temperature", type=float, metavar="T", help="sampling temperature")
    chat.add_argument(
        "--max-tokens", type=_tokens, metavar="N", help="upper bound on the answer's tokens"
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
        help=(
            "retries before the first token, on connection errors and timeouts, HTTP 408, 409, "
            "429 and 5xx, and server errors inside the stream (%(default)s)"
        ),
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
    _add_address(serve, DEFAULT_PORT)
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
    _add_loop(serve)
    serve.add_argument(
        "--api-key",
        metavar="KEY",
        help="require this key (Authorization: Bearer KEY); by default any key is accepted",
    )
    serve.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log one line per request on standard error",
    )
    serve.set_defaults(handler=_serve_command, command_parser=serve)

    from .relay.command import add_relay_command

    add_relay_command(commands)
    parser.set_defaults(command_names=tuple(commands.choices))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        parser = build_parser()
        # Known args first, so an unknown option is reported with its subcommand's usage.
        args, unknown = parser.parse_known_args(argv)
        command_parser: argparse.ArgumentParser = getattr(args, "command_parser", parser)
        if unknown:
            command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        handler: Callable[[argparse.Namespace, argparse.ArgumentParser], int] | None = getattr(
            args, "handler", None
        )
        if handler is None:
            parser.print_usage(sys.stderr)
            names = ", ".join(args.command_names)
            print(f"{PROG}: error: a command is required ({names})", file=sys.stderr)
            return EXIT_USAGE
        return handler(args, command_parser)
    except KeyboardInterrupt:
        # Ctrl-C outside the event loop: while the prompt is read, or during start-up.
        return EXIT_INTERRUPTED


# --------------------------------------------------------------------------------------------
# Shared plumbing
# --------------------------------------------------------------------------------------------


def _error(message: str, *secrets: str | None) -> int:
    """Report an error on one line of standard error, with any secret masked out."""
    text = " ".join(message.split()) or "(no details)"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    _say(f"error: {text}")
    return EXIT_ERROR


def _say(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # standard error itself may be gone
        print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def _describe(error: BaseException, chunks: int = 0) -> str:
    """What went wrong, in the user's terms: no transport internals, no error class names.

    ``chunks`` is how many chunks had arrived, which tells a connection that broke mid-answer
    from one that never worked.
    """
    from .errors import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        IncompleteStreamError,
        ProtocolError,
        StreamError,
    )

    after = f"after {_plural(chunks, 'chunk')}" if chunks else "before the first chunk"
    if isinstance(error, APIStatusError):
        return _status_text(error.status_code, error.body)
    if isinstance(error, APITimeoutError):
        phase = {
            "connect": "connecting",
            "first_event": "waiting for the first event",
            "idle": "waiting for the next event",
        }.get(getattr(error, "phase", ""), "waiting for the server")
        return f"timed out {phase}" + (f" (after {_plural(chunks, 'chunk')})" if chunks else "")
    if isinstance(error, APIConnectionError):
        if chunks or "broke off" in error.message:
            return f"the connection broke {after}"
        return _connection_text(error.message)
    if isinstance(error, StreamError):
        return f"the server reported an error in the stream {after}: {error.message}"
    if isinstance(error, IncompleteStreamError):
        return f"the stream ended {after}, before the answer was complete"
    if isinstance(error, ProtocolError):
        response = error.response
        content_type = response.content_type if response is not None else ""
        if content_type and content_type != "text/event-stream":
            hint = (
                "the server may not support streaming"
                if content_type == "application/json"
                else "is the base URL the API's /v1 root?"
            )
            return f"the server answered {content_type}, not an event stream ({hint})"
        return f"the server sent something unreadable {after}: {_clip(error.message)}"
    if isinstance(error, OSError) and error.errno:
        return os.strerror(error.errno).lower()
    return _clip(str(error)) or type(error).__name__


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _status_text(status: int, body: Any) -> str:
    """``the server answered 404 Not Found: <the API's own message>``."""
    from http import HTTPStatus

    try:
        phrase = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        phrase = str(status)
    detail = _body_text(body)
    return f"the server answered {phrase}" + (f": {detail}" if detail else "")


def _body_text(body: Any) -> str:
    """The API's own error message, or a one-line summary of a page that is not JSON."""
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        if not isinstance(message, str):
            message = body.get("message")
        return _clip(message) if isinstance(message, str) else ""
    if not isinstance(body, str):
        return ""
    if "<" in body and re.search(r"<(!doctype|html|head|body)\b", body, re.I):
        title = re.search(r"<title[^>]*>(.*?)</title>", body, re.I | re.S)
        text = title.group(1) if title else re.sub(r"<[^>]*>", " ", body)
        summary = _clip(html.unescape(text), 80)
        return f"an HTML page ({summary!r})" if summary else "an HTML page"
    return _clip(body)


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _connection_text(message: str) -> str:
    """aiohttp's connector message in plain words (no ``ssl:default``, no call details)."""
    match = re.search(r"Cannot connect to host (\S+) ssl:\S+ \[(.*)\]", message)
    if match is None:
        text = message.removeprefix("Connection error:").strip()
        return f"connection failed: {_clip(text)}" if text else "connection failed"
    address, reason = match.groups()
    if reason.startswith("Connect call failed"):
        reason = "connection refused"
    return f"cannot connect to {address}: {reason[:1].lower()}{reason[1:]}"


def _delay(rate: float | None) -> float:
    """Seconds per token for a rate in tokens per second; the server's own pace by default."""
    if rate is None:
        from .testing.server import DEFAULT_DELAY

        return DEFAULT_DELAY
    return 0.0 if rate == 0 else 1.0 / rate


def _run(
    main: Callable[[], Coroutine[Any, Any, int]],
    on_interrupt: Callable[[], int],
    loop: str = "asyncio",
) -> int:
    """Run ``main`` on ``loop`` (see :data:`openai_sse._loops.LOOPS`), with Ctrl-C as a
    normal outcome.

    The coroutines install their own SIGINT handlers where the loop supports them; this
    catches the KeyboardInterrupt that arrives instead on platforms where it does not.
    """
    from ._loops import run

    try:
        return run(main(), loop)
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
    """Writes the first choice as it streams: text to stdout; reasoning and refusals to stderr.

    When the reader of standard output goes away (``| head``) it stops the stream, points
    stdout at the null device so the interpreter's final flush cannot fail, and says so in
    ``output_closed``. Any other failure to print ends the stream with that error.
    """

    raise_errors = True

    def __init__(
        self, out: TextIO, err: TextIO, *, json_lines: bool, every_index: bool = False
    ) -> None:
        self.out = out
        self.err = err
        self.json_lines = json_lines
        # Chat prints the first choice; every output item of a response belongs to the answer.
        self.every_index = every_index
        self.color = _use_color(err)
        self.written = ""
        self.side: str | None = None  # "reasoning" or "refusal" while stderr text is open
        self.output_closed = False

    def _write(self, text: str, stream: ChatStream | ResponseStream | None = None) -> None:
        if not text or self.output_closed:
            return
        self._end_side()
        try:
            self.out.write(text)
            self.out.flush()
        except BrokenPipeError:
            self.output_closed = True
            _to_devnull(self.out)
            if stream is not None:
                stream.cancel()
            return
        self.written = text

    def _side(self, kind: str, text: str) -> None:
        """Text that is not the answer, on standard error: dimmed reasoning, a refusal."""
        if not text:
            return
        if self.side != kind:
            self._end_side()
            self.side = kind
            if self.color and kind == "reasoning":
                self._err(_DIM)
        self._err(text)

    def _end_side(self) -> None:
        if self.side is not None:
            reset = _RESET if self.color and self.side == "reasoning" else ""
            self.side = None
            self._err(reset + "\n")

    def _err(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.err.write(text)
            self.err.flush()

    def on_chunk(self, stream: ChatStream, chunk: ChatCompletionChunk) -> None:
        if self.json_lines:
            self._write(chunk.to_json() + "\n", stream)

    def on_event(self, stream: ResponseStream, event: ResponseStreamEvent) -> None:
        if self.json_lines:
            self._write(event.to_json() + "\n", stream)

    def on_content(self, stream: ChatStream | ResponseStream, delta: str, index: int) -> None:
        if (index == 0 or self.every_index) and not self.json_lines:
            self._write(delta, stream)

    def on_refusal(self, stream: ChatStream | ResponseStream, delta: str, index: int) -> None:
        if (index == 0 or self.every_index) and not self.json_lines:
            self._side("refusal", delta)

    def on_reasoning(self, stream: ChatStream | ResponseStream, delta: str, index: int) -> None:
        if (index == 0 or self.every_index) and not self.json_lines:
            self._side("reasoning", delta)

    def on_tool_call(
        self,
        stream: ChatStream | ResponseStream,
        tool_call: ChatCompletionMessageToolCall | ResponseFunctionToolCall,
        index: int,
    ) -> None:
        if (index != 0 and not self.every_index) or self.json_lines:
            return
        self.finish()
        function: Any = getattr(tool_call, "function", tool_call)  # chat nests the two
        self._write(f"[tool call] {function.name}({function.arguments})\n", stream)

    def finish(self) -> None:
        """End the side text and the last line, so the shell prompt starts on a fresh line."""
        self._end_side()
        if self.written and not self.written.endswith("\n"):
            self._write("\n")


def _to_devnull(stream: TextIO) -> None:
    """Point ``stream``'s file descriptor at the null device (the Python docs' SIGPIPE advice)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)


def _outcome(completion: ChatCompletion | Response) -> int:
    """Tell the user on stderr when the answer is not a plain, whole answer; the exit status."""
    if not hasattr(completion, "choices"):
        return _response_outcome(completion)
    if not completion.choices:
        return EXIT_OK
    choice = completion.choices[0]
    if choice.message.refusal:
        _say("the model refused to answer (the refusal is above)")
        return EXIT_REFUSED
    if choice.finish_reason == "content_filter":
        _say("the answer was stopped by a content filter (finish_reason=content_filter)")
        return EXIT_REFUSED
    if choice.finish_reason == "length":
        _say("the answer was cut off at the token limit (finish_reason=length)")
        return EXIT_TRUNCATED
    return EXIT_OK


def _response_outcome(response: Response) -> int:
    """:func:`_outcome` for the Responses API: its status and refusal parts."""
    for item in response.output:
        for part in getattr(item, "content", None) or ():
            if getattr(part, "type", None) == "refusal":
                _say("the model refused to answer (the refusal is above)")
                return EXIT_REFUSED
    if response.status == "incomplete":
        details = response.incomplete_details
        reason = details.reason if details is not None else None
        if reason == "content_filter":
            _say("the answer was stopped by a content filter (incomplete: content_filter)")
            return EXIT_REFUSED
        _say(f"the answer was cut off at the token limit (incomplete: {reason})")
        return EXIT_TRUNCATED
    return EXIT_OK


def _read_prompt(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    prompt: str | None = args.prompt
    if prompt is None or prompt == "-":
        if prompt is None and sys.stdin.isatty():
            parser.error("PROMPT is required (or pipe it on standard input)")
        prompt = sys.stdin.read()
    if not prompt.strip():
        parser.error("the prompt is empty")
    return prompt


def _endpoint(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> tuple[str | None, str | None, str | None]:
    """``(api_key, base_url, offline_reason)``; ``offline_reason`` is None for a real endpoint."""
    api_key: str | None = args.api_key or os.environ.get("OPENAI_API_KEY") or None
    base_url: str | None = args.base_url or os.environ.get("OPENAI_BASE_URL") or None
    if base_url is not None and not args.offline:
        problem = _http_url(base_url)
        if problem is not None:
            source = "--base-url" if args.base_url else "OPENAI_BASE_URL"
            parser.error(f"{source}: {problem}")
    if args.offline:
        configured = [
            name
            for name, value in (("an API key", api_key), ("a base URL", base_url))
            if value is not None
        ]
        ignored = f"; {' and '.join(configured)} configured but not used" if configured else ""
        return None, None, f"--offline{ignored}"
    if api_key is None and base_url is None:
        return None, None, "no OPENAI_API_KEY or --base-url"
    return api_key, base_url, None


def _chat_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    api_key, base_url, offline = _endpoint(args, parser)
    if args.rate is not None and offline is None:
        parser.error(
            "--rate paces the embedded offline server only; add --offline to use it, or drop --rate"
        )
    prompt = _read_prompt(args, parser)
    messages: list[ChatCompletionMessageParam] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": prompt})
    params: ChatParams = {}
    if args.temperature is not None:
        params["temperature"] = args.temperature
    if args.max_tokens is not None:
        params["max_tokens"] = args.max_tokens
    printer = _Printer(
        sys.stdout, sys.stderr, json_lines=args.json, every_index=args.api == "responses"
    )
    _tolerant(sys.stdout)
    _tolerant(sys.stderr)
    session = _ChatSession(
        printer,
        model=args.model,
        messages=messages,
        params=params,
        api_key=api_key,
        base_url=base_url,
        offline=offline,
        delay=_delay(args.rate) if offline is not None else None,
        timeout=args.timeout,
        max_retries=args.max_retries,
        usage=args.usage,
        api=args.api,
    )

    def interrupted() -> int:
        printer.finish()
        return EXIT_INTERRUPTED

    try:
        return _run(session.run, interrupted)
    except BrokenPipeError:  # a write outside the printer, e.g. the final newline
        _to_devnull(sys.stdout)
        return EXIT_CLOSED_OUTPUT


class _ChatSession:
    """One ``chat`` run: the optional embedded server, the client, the stream and signals.

    SIGINT (Ctrl-C) and SIGTERM cancel the stream, so the connection closes at once and the
    partial answer stays printed; before the stream exists they stop start-up.
    """

    def __init__(
        self,
        printer: _Printer,
        *,
        model: str,
        messages: list[ChatCompletionMessageParam],
        params: ChatParams,
        api_key: str | None,
        base_url: str | None,
        offline: str | None,
        delay: float | None,
        timeout: float | None,
        max_retries: int,
        usage: bool,
        api: str = "chat",
    ) -> None:
        self.printer = printer
        self.api = api
        self.model = model
        self.messages = messages
        self.params = params
        self.api_key = api_key
        self.base_url = base_url
        self.offline = offline
        self.delay = delay
        self.timeout = timeout
        self.max_retries = max_retries
        self.usage = usage
        self.signalled: int | None = None  # the exit status of the signal received
        self.stream: ChatStream | ResponseStream | None = None
        self.task: asyncio.Task[Any] | None = None

    def _on_signal(self, status: int) -> None:
        first = self.signalled is None
        self.signalled = status if first else self.signalled
        if first and self.stream is not None:
            self.stream.cancel()
        elif self.task is not None:
            # Before the stream exists, or a second signal while shutting down: stop now.
            self.task.cancel()

    async def run(self) -> int:
        import asyncio
        import functools

        loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        installed = [
            name
            for name, status in _SIGNAL_EXITS.items()
            if _add_signal_handler(loop, name, functools.partial(self._on_signal, status))
        ]
        try:
            return await self._run()
        except asyncio.CancelledError:
            if self.signalled is None:
                raise
            self.printer.finish()
            return self.signalled
        finally:
            for name in installed:
                _remove_signal_handler(loop, name)

    async def _run(self) -> int:
        from contextlib import AsyncExitStack

        from .client import Client
        from .errors import OpenAISSEError, StreamCancelled

        async with AsyncExitStack() as stack:
            stream: ChatStream | ResponseStream | None = None
            try:
                base_url = self.base_url
                if self.delay is not None:
                    from .testing.server import MockServer

                    server = await stack.enter_async_context(MockServer(delay=self.delay))
                    base_url = server.base_url
                    _say(f"{self.offline}; using the embedded offline server at {base_url}")
                client = await stack.enter_async_context(
                    Client(
                        self.api_key,
                        base_url=base_url,
                        timeout=self.timeout,
                        max_retries=self.max_retries,
                    )
                )
                if self.api == "responses":
                    stream = self.stream = client.responses.stream(
                        model=self.model,
                        input=self.messages,
                        listeners=[self.printer],
                        temperature=self.params.get("temperature"),
                        max_output_tokens=self.params.get("max_tokens"),
                    )
                else:
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
                if self.printer.output_closed:
                    return EXIT_CLOSED_OUTPUT
                if self.signalled is not None:
                    return self.signalled
                return _error(_describe(error), self.api_key)
            except (OpenAISSEError, OSError, ValueError) as error:
                self.printer.finish()
                if self.printer.output_closed:
                    return EXIT_CLOSED_OUTPUT
                chunks = stream.metrics.chunks if stream is not None else 0
                return _error(_describe(error, chunks), self.api_key)
            self.printer.finish()
            if self.printer.output_closed:
                return EXIT_CLOSED_OUTPUT
            if self.usage:
                _report_usage(stream, completion)
            return _outcome(completion)


def _report_usage(
    stream: ChatStream | ResponseStream, completion: ChatCompletion | Response
) -> None:
    from .responses.models import ResponseUsage

    usage = completion.usage
    if usage is None:
        _say("usage: not reported by the server")
    elif isinstance(usage, ResponseUsage):
        _say(
            f"usage: input_tokens={usage.input_tokens} "
            f"output_tokens={usage.output_tokens} total_tokens={usage.total_tokens}"
        )
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
    if args.loop == "uvloop" and not uvloop_installed():
        return _error("--loop uvloop needs uvloop: pip install 'openai-sse[uvloop]'")
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "delay": _delay(args.rate),
        "api_key": args.api_key,
    }
    if args.verbose:
        import logging

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{PROG}: %(asctime)s %(message)s"))
        access_log = logging.getLogger("openai_sse.serve.access")
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False
        options["access_log"] = access_log
    if args.script is not None:
        try:
            options["script"] = _load_script(args.script)
        except ValueError as error:
            return _error(str(error), args.api_key)

    async def serve() -> int:
        import asyncio

        from .testing.server import MockServer

        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        installed = [
            name for name in ("SIGINT", "SIGTERM") if _add_signal_handler(loop, name, stop.set)
        ]
        try:
            server = MockServer(**options)
            try:
                await server.start()
            except OSError as error:
                return _error(f"cannot listen on {args.host}:{args.port}: {_describe(error)}")
            try:
                print(f"Serving OpenAI-compatible API at {server.base_url}", flush=True)
                _say(f"press Ctrl-C to stop (event loop: {loop_name()})")
                await stop.wait()
            finally:
                await server.close()
        finally:
            for name in installed:
                _remove_signal_handler(loop, name)
        return EXIT_OK

    return _run(serve, lambda: EXIT_OK, args.loop)


def _load_script(path: str) -> list[ScriptItem]:
    """Read a reply script entry by entry, so an error names the file and the entry."""
    import json
    from pathlib import Path

    from .testing import load_script

    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ValueError(f"cannot read the script {path}: {reason}") from None
    if text.lstrip().startswith("["):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON: {error}") from None
        if not isinstance(values, list):
            raise ValueError(f"{path}: a script is a JSON list or JSON lines")
        items: list[ScriptItem] = []
        for number, value in enumerate(values, 1):
            items.extend(_script_entry(load_script, [value], f"{path}: entry {number}"))
        return items
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            where = f"{path}: line {number}"
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{where}: not valid JSON: {error}") from None
            items.extend(_script_entry(load_script, [value], where))
    return items


def _script_entry(
    load: Callable[[list[Any]], list[ScriptItem]], entries: list[Any], where: str
) -> list[ScriptItem]:
    try:
        return load(entries)
    except (ValueError, TypeError, KeyError) as error:
        reason = str(error) if not isinstance(error, KeyError) else f"missing key {error}"
        raise ValueError(f"{where}: {reason}") from None
