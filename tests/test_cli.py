"""The ``openai-sse`` command line, run as a real subprocess (``python -m openai_sse``)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from openai_sse import AuthenticationError, Client, __version__
from openai_sse.testing import Fault, MockServer, Raw, Reply, ToolCall, default_text, tokenize
from openai_sse.testing.server import DEFAULT_DELAY

TIMEOUT = 20.0
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")


def expected_answer(prompt: str) -> str:
    """What the mock server answers to a single user message, by its own reply logic."""
    return default_text([{"role": "user", "content": prompt}])


def cli_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "NO_COLOR", "PYTHONUNBUFFERED")
    }
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra)
    return env


@dataclass
class Result:
    code: int
    out: str
    err: str


async def spawn(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "openai_sse",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env if env is not None else cli_env(),
    )


async def finish(
    proc: asyncio.subprocess.Process, stdin: bytes | None = None, timeout: float = TIMEOUT
) -> tuple[int, bytes, bytes]:
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.communicate()
        raise
    assert proc.returncode is not None
    return proc.returncode, out, err


async def run_cli(*args: str, env: dict[str, str] | None = None, stdin: bytes = b"") -> Result:
    code, out, err = await finish(await spawn(*args, env=env), stdin)
    return Result(code, out.decode(), err.decode())


def assert_clean(err: str) -> None:
    assert "Traceback" not in err
    assert "never retrieved" not in err
    assert "Unclosed" not in err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("openai-sse: error: "), err
    return lines[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def usage_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Argument checks run before any I/O, so they are exercised in process: stderr."""
    from openai_sse.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


# --------------------------------------------------------------------------------------------
# Basics
# --------------------------------------------------------------------------------------------


async def test_version() -> None:
    result = await run_cli("--version")
    assert result.code == 0
    assert result.out.strip() == f"openai-sse {__version__}"


async def test_without_a_command_is_a_usage_error() -> None:
    result = await run_cli()
    assert result.code == 2
    assert "a command is required" in result.err


def test_rate_is_refused_with_a_real_endpoint_and_when_negative(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = closed_port()
    remote = usage_error(
        capsys, "chat", "hi", "--rate", "5", "--base-url", f"http://127.0.0.1:{port}/v1"
    )
    negative = usage_error(capsys, "chat", "hi", "--rate", "-1")
    assert "openai-sse chat: error: --rate paces the embedded offline server only" in remote
    assert "argument --rate: must be a number, 0 or more, not -1" in negative


async def test_importing_the_cli_does_not_load_the_server_or_openai() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys, openai_sse.cli; print(sorted(m for m in sys.modules if m in "
        "('aiohttp.web', 'openai_sse.testing.server', 'openai')))",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
    )
    code, out, err = await finish(proc)
    assert code == 0, err
    assert out.decode().strip() == "[]"


# --------------------------------------------------------------------------------------------
# chat, offline
# --------------------------------------------------------------------------------------------


async def test_chat_offline_streams_the_chinese_greeting_token_by_token() -> None:
    expected = expected_answer("你好")
    tokens = len(tokenize(expected))
    proc = await spawn("chat", "你好")
    assert proc.stdout is not None and proc.stdin is not None
    proc.stdin.close()
    err_task = asyncio.ensure_future(proc.stderr.read()) if proc.stderr else None
    pieces: list[tuple[float, bytes]] = []
    while True:
        data = await asyncio.wait_for(proc.stdout.read(65536), TIMEOUT)
        if not data:
            break
        pieces.append((time.monotonic(), data))
    code = await asyncio.wait_for(proc.wait(), TIMEOUT)
    exited = time.monotonic()
    assert err_task is not None
    err = (await err_task).decode()

    assert code == 0, err
    assert b"".join(p for _, p in pieces).decode() == expected + "\n"
    # The answer arrives as a stream at the server's pace, not in one piece at the end.
    assert len(pieces) >= 5
    span = pieces[-1][0] - pieces[0][0]
    assert span >= 0.5 * (tokens - 1) * DEFAULT_DELAY
    assert exited - pieces[0][0] >= span
    assert re.fullmatch(
        r"openai-sse: no OPENAI_API_KEY or --base-url; using the embedded offline server at "
        r"http://127\.0\.0\.1:\d+/v1\n",
        err,
    )


async def test_chat_json_prints_one_chunk_per_line() -> None:
    expected = expected_answer("hello")
    result = await run_cli("chat", "hello", "--json", "--rate", "0")
    assert result.code == 0, result.err
    chunks = [json.loads(line) for line in result.out.splitlines()]
    assert len(chunks) == len(tokenize(expected)) + 3  # role, tokens, finish, usage
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    text = "".join(c["delta"].get("content") or "" for k in chunks for c in k["choices"])
    assert text == expected
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == len(tokenize(expected))


async def test_chat_usage_reports_tokens_and_timing_on_stderr() -> None:
    expected = expected_answer("hello")
    result = await run_cli("chat", "hello", "--usage", "--rate", "0")
    assert result.code == 0, result.err
    assert result.out == expected + "\n"
    usage = re.search(
        r"^openai-sse: usage: prompt_tokens=(\d+) completion_tokens=(\d+) total_tokens=(\d+)$",
        result.err,
        re.M,
    )
    assert usage is not None, result.err
    prompt, completion, total = map(int, usage.groups())
    assert completion == len(tokenize(expected))
    assert total == prompt + completion
    timing = re.search(r"^openai-sse: timing: .*chunks=(\d+) bytes=(\d+)", result.err, re.M)
    assert timing is not None, result.err
    assert int(timing.group(1)) == completion + 3
    assert "time_to_first_token=" in result.err


async def test_chat_reads_the_prompt_from_stdin() -> None:
    result = await run_cli("chat", stdin=b"hello\n")
    assert result.code == 0, result.err
    assert result.out == expected_answer("hello") + "\n"


@posix_only
async def test_ctrl_c_stops_the_offline_stream_and_keeps_the_partial_answer() -> None:
    prompt = "Tell me about server-sent events"
    expected = expected_answer(prompt)
    proc = await spawn("chat", prompt, "--rate", "20")
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.read(65536), TIMEOUT)
    assert first
    proc.send_signal(signal.SIGINT)
    code, rest, err = await finish(proc)
    out = (first + rest).decode()
    assert code == 130, err
    assert out.endswith("\n")
    partial = out[:-1]
    assert partial and expected.startswith(partial)
    assert len(partial) < len(expected)
    assert_clean(err.decode())
    assert len(err.decode().splitlines()) == 1  # only the offline notice


@posix_only
async def test_ctrl_c_closes_the_connection_to_the_server() -> None:
    async with MockServer(delay=0.05) as server:
        proc = await spawn("chat", "Tell me a long story", "--base-url", server.base_url)
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.read(65536), TIMEOUT)
        assert first
        proc.send_signal(signal.SIGINT)
        await server.wait_disconnect(timeout=TIMEOUT)
        await server.wait_idle(timeout=TIMEOUT)
        code, _, err = await finish(proc)
    assert code == 130
    assert err == b""
    assert server.disconnects == 1


# --------------------------------------------------------------------------------------------
# chat against a server
# --------------------------------------------------------------------------------------------


async def test_chat_sends_the_options_to_the_server() -> None:
    expected = expected_answer("hello")
    async with MockServer(delay=0) as server:
        result = await run_cli(
            "chat",
            "hello",
            "--base-url",
            server.base_url,
            "--api-key",
            "sk-test",
            "--model",
            "gpt-4o",
            "--system",
            "Be brief.",
            "--temperature",
            "0.25",
            "--max-tokens",
            "4",
        )
    assert result.code == 4, result.err  # cut at the token limit
    assert (
        result.err
        == "openai-sse: the answer was cut off at the token limit (finish_reason=length)\n"
    )
    assert result.out == "".join(tokenize(expected)[:4]) + "\n"
    request = server.requests[0]
    assert request.headers["Authorization"] == "Bearer sk-test"
    body = request.json
    assert body["model"] == "gpt-4o"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
    ]
    assert body["temperature"] == 0.25
    assert body["max_tokens"] == 4
    assert body["stream"] is True


async def test_reasoning_goes_to_stderr_and_tool_calls_are_shown() -> None:
    async with MockServer(delay=0) as server:
        server.enqueue(
            Reply("42", reasoning="Let me think."),
            Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]),
        )
        reasoning = await run_cli("chat", "q", "--base-url", server.base_url)
        tool = await run_cli("chat", "q", "--base-url", server.base_url)
    assert reasoning.code == 0, reasoning.err
    assert reasoning.out == "42\n"
    assert reasoning.err == "Let me think.\n"
    assert tool.code == 0, tool.err
    assert tool.out == '[tool call] get_weather({"city": "Paris"})\n'


async def test_chat_takes_key_and_base_url_from_the_environment() -> None:
    async with MockServer(delay=0, api_key="env-key") as server:
        env = cli_env(OPENAI_API_KEY="env-key", OPENAI_BASE_URL=server.base_url)
        result = await run_cli("chat", "hi", env=env)
    assert result.code == 0, result.err
    assert result.out == expected_answer("hi") + "\n"
    assert result.err == ""  # no offline notice
    assert len(server.requests) == 1


async def test_wrong_key_is_one_error_line_without_the_key() -> None:
    key = "sk-wrong-secret-key-123456"
    async with MockServer(delay=0, api_key="right-key") as server:
        result = await run_cli("chat", "hi", "--base-url", server.base_url, "--api-key", key)
    assert result.code == 1
    line = one_error_line(result.err)
    assert line.startswith("openai-sse: error: the server answered 401 Unauthorized: ")
    assert key not in result.err and key not in result.out
    assert result.out == ""


async def test_a_key_echoed_by_the_server_is_masked() -> None:
    key = "sk-echoed-secret-key-987654"
    async with MockServer(delay=0) as server:
        server.enqueue(Fault.status(401, f"Incorrect API key provided: {key}."))
        result = await run_cli("chat", "hi", "--base-url", server.base_url, "--api-key", key)
    assert result.code == 1
    assert one_error_line(result.err) == (
        "openai-sse: error: the server answered 401 Unauthorized: Incorrect API key provided: ***."
    )
    assert server.requests[0].headers["Authorization"] == f"Bearer {key}"


async def test_status_fault_is_one_error_line() -> None:
    async with MockServer(delay=0) as server:
        server.enqueue(Fault.status(404, "The model `nope` does not exist."))
        result = await run_cli("chat", "hi", "--base-url", server.base_url, "--model", "nope")
    assert result.code == 1
    line = one_error_line(result.err)
    assert line == (
        "openai-sse: error: the server answered 404 Not Found: The model `nope` does not exist."
    )


async def test_error_inside_the_stream_keeps_the_partial_answer() -> None:
    expected = expected_answer("hello")
    async with MockServer(delay=0) as server:
        server.enqueue(Fault.error_after(3, "The engine broke."))
        result = await run_cli("chat", "hello", "--base-url", server.base_url)
    assert result.code == 1
    assert result.out == "".join(tokenize(expected)[:2]) + "\n"  # role chunk + 2 tokens
    assert one_error_line(result.err) == (
        "openai-sse: error: the server reported an error in the stream after 3 chunks: "
        "The engine broke."
    )


async def test_unreachable_server_is_a_connection_error() -> None:
    port = closed_port()
    result = await run_cli(
        "chat", "hi", "--base-url", f"http://127.0.0.1:{port}/v1", "--max-retries", "0"
    )
    assert result.code == 1
    line = one_error_line(result.err)
    assert line == f"openai-sse: error: cannot connect to 127.0.0.1:{port}: connection refused"
    assert result.out == ""


# --------------------------------------------------------------------------------------------
# serve
# --------------------------------------------------------------------------------------------


async def start_serve(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await spawn("serve", "--port", "0", *args)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode()
    match = re.fullmatch(r"Serving OpenAI-compatible API at (http://127\.0\.0\.1:\d+/v1)\n", line)
    assert match, line
    return proc, match.group(1)


async def stream_text(client: Client, prompt: str) -> str:
    stream = client.chat.stream(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])
    completion = await stream
    return completion.choices[0].message.content or ""


@posix_only
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_serve_answers_the_official_client_and_ours_then_stops_on_sigterm(
    loop: str,
) -> None:
    import openai

    proc, base_url = await start_serve("--rate", "0", "--loop", loop)
    try:
        async with openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0) as official:
            response = await official.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "hello"}],
                stream=True,
            )
            pieces = [c.choices[0].delta.content or "" async for c in response if c.choices]
        async with Client("x", base_url=base_url, max_retries=0) as client:
            ours = await stream_text(client, "你好")
    finally:
        proc.send_signal(signal.SIGTERM)
        code, _, err = await finish(proc)
    assert len([p for p in pieces if p]) == len(tokenize(expected_answer("hello")))
    assert "".join(pieces) == expected_answer("hello")
    assert ours == expected_answer("你好")
    assert code == 0
    assert f"(event loop: {loop})" in err.decode()
    assert_clean(err.decode())


@posix_only
async def test_serve_plays_a_script_and_requires_the_key(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps(["Scripted hello.", {"tokens": ["A", "B", "C"]}]))
    proc, base_url = await start_serve("--rate", "0", "--script", str(script), "--api-key", "k")
    try:
        async with Client("wrong", base_url=base_url, max_retries=0) as client:
            with pytest.raises(AuthenticationError):
                await stream_text(client, "hi")
        async with Client("k", base_url=base_url, max_retries=0) as client:
            answers = [await stream_text(client, "hi") for _ in range(3)]
    finally:
        proc.send_signal(signal.SIGINT)
        code, _, err = await finish(proc)
    assert answers == ["Scripted hello.", "ABC", expected_answer("hi")]
    assert code == 0
    assert_clean(err.decode())


async def test_serve_reports_a_bad_script(tmp_path: Path) -> None:
    script = tmp_path / "bad.json"
    script.write_text(json.dumps([{"text": "hi", "no_such_key": 1}]))
    result = await run_cli("serve", "--port", "0", "--script", str(script))
    assert result.code == 1
    one_error_line(result.err)
    assert result.out == ""


async def test_serve_reports_a_port_in_use() -> None:
    async with MockServer(delay=0) as server:
        port = server.port
        result = await run_cli("serve", "--port", str(port))
    assert result.code == 1
    assert one_error_line(result.err) == (
        f"openai-sse: error: cannot listen on 127.0.0.1:{port}: address already in use"
    )


# --------------------------------------------------------------------------------------------
# Pipes and signals
# --------------------------------------------------------------------------------------------

LONG_PROMPT = "Tell me everything about server-sent events, " * 20


@posix_only
@pytest.mark.parametrize("json_lines", [False, True])
async def test_a_closed_stdout_ends_quietly_and_closes_the_stream(json_lines: bool) -> None:
    read_end, write_end = os.pipe()
    async with MockServer(delay=0.01) as server:
        options = ["--json"] if json_lines else []
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "openai_sse",
            "chat",
            LONG_PROMPT,
            "--base-url",
            server.base_url,
            *options,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_end,
            stderr=asyncio.subprocess.PIPE,
            env=cli_env(),
        )
        os.close(write_end)
        loop = asyncio.get_running_loop()
        first = await asyncio.wait_for(loop.run_in_executor(None, os.read, read_end, 10), TIMEOUT)
        os.close(read_end)  # like `| head -c 10`
        code, _, err = await finish(proc)
        await server.wait_disconnect(timeout=TIMEOUT)
    assert first
    assert code == 141
    assert err == b""  # no traceback, no "Exception ignored", no message


async def until(predicate: Callable[[], bool]) -> None:
    """Poll a condition no event reports (another process's state), within TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, "condition never met"
        await asyncio.sleep(0.02)


async def wait_reading_stdin(pid: int) -> None:
    """Until the process blocks in read(0, ...): it is waiting for the prompt."""
    import platform

    read_call = {"x86_64": "0", "aarch64": "63"}.get(platform.machine())

    def reading() -> bool:
        try:
            fields = Path(f"/proc/{pid}/syscall").read_text().split()
        except OSError:
            return False
        return read_call is None or fields[:2] == [read_call, "0x0"]

    await until(reading)


@pytest.mark.skipif(not Path("/proc/self/syscall").exists(), reason="needs Linux /proc")
async def test_ctrl_c_while_reading_the_prompt_is_quiet() -> None:
    proc = await spawn("chat")
    await wait_reading_stdin(proc.pid)
    proc.send_signal(signal.SIGINT)
    assert proc.stdin is not None
    code, out, err = await finish(proc)
    assert code == 130
    assert out == b""
    assert err == b""


@posix_only
async def test_ctrl_c_before_the_first_token_is_quiet() -> None:
    async with MockServer(delay=0) as server:
        server.enqueue(Fault.delay_headers(30))
        proc = await spawn("chat", "hi", "--base-url", server.base_url)
        await until(lambda: len(server.requests) == 1)  # the server holds the headers back
        proc.send_signal(signal.SIGINT)
        code, out, err = await finish(proc)
    assert code == 130
    assert out == b""
    assert err == b""


@posix_only
async def test_sigterm_mid_answer_is_handled_like_ctrl_c() -> None:
    prompt = "Tell me about server-sent events"
    expected = expected_answer(prompt)
    async with MockServer(delay=0.05) as server:
        proc = await spawn("chat", prompt, "--base-url", server.base_url)
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.read(65536), TIMEOUT)
        proc.send_signal(signal.SIGTERM)
        await server.wait_disconnect(timeout=TIMEOUT)
        code, rest, err = await finish(proc)
    out = (first + rest).decode()
    assert code == 143
    assert out.endswith("\n")  # the final newline is written
    partial = out[:-1]
    assert partial and expected.startswith(partial) and len(partial) < len(expected)
    assert err == b""


# --------------------------------------------------------------------------------------------
# Usage errors
# --------------------------------------------------------------------------------------------


async def test_a_bad_base_url_is_a_usage_error_at_once() -> None:
    started = time.monotonic()
    result = await run_cli("chat", "hi", "--base-url", "ftp://example.com/v1", "--max-retries", "5")
    assert result.code == 2
    assert result.err.endswith(
        "openai-sse chat: error: --base-url: 'ftp://example.com/v1' uses ftp://; "
        "only http:// and https:// are supported\n"
    )
    assert result.out == ""
    assert time.monotonic() - started < TIMEOUT / 2  # no retries


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("not-a-url", "'not-a-url' is not a URL; expected http://HOST[:PORT]/v1 or https://..."),
        ("localhost:8000/v1", "'localhost:8000/v1' is not a URL"),
        ("ftp://example.com/v1", "uses ftp://; only http:// and https:// are supported"),
        ("http:///v1", "'http:///v1' has no host name"),
        ("http://127.0.0.1:99999/v1", "'http://127.0.0.1:99999/v1' is not a valid URL"),
    ],
)
def test_bad_base_urls_are_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str, reason: str
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    err = usage_error(capsys, "chat", "hi", "--base-url", url)
    assert err.splitlines()[-1].startswith("openai-sse chat: error: --base-url: ")
    assert reason in err.splitlines()[-1]
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    err = usage_error(capsys, "chat", "hi")
    assert err.splitlines()[-1].startswith("openai-sse chat: error: OPENAI_BASE_URL: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-tokens", "0"], "argument --max-tokens: must be a positive integer, not 0"),
        (["--max-tokens", "1.5"], "argument --max-tokens: must be a positive integer, not '1.5'"),
        (["--max-retries", "-1"], "argument --max-retries: must be an integer, 0 or more, not -1"),
        (["--timeout", "0"], "argument --timeout: must be a number greater than 0, not 0"),
        (["--timeout", "inf"], "argument --timeout: must be a number greater than 0, not inf"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_options_show_the_chat_usage(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    err = usage_error(capsys, "chat", "hi", *args)
    assert err.startswith("usage: openai-sse chat ")
    assert err.endswith(f"openai-sse chat: error: {message}\n")


def test_serve_rejects_a_port_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, "serve", "--port", "70000")
    assert err.startswith("usage: openai-sse serve ")
    assert "argument -p/--port: must be an integer from 0 to 65535, not 70000" in err


async def test_offline_with_a_key_set_says_so_truthfully() -> None:
    env = cli_env(OPENAI_API_KEY="sk-real-key-123", OPENAI_BASE_URL="http://127.0.0.1:1/v1")
    result = await run_cli("chat", "hello", "--offline", "--rate", "0", env=env)
    assert result.code == 0, result.err
    assert result.out == expected_answer("hello") + "\n"
    assert re.fullmatch(
        r"openai-sse: --offline; an API key and a base URL configured but not used; "
        r"using the embedded offline server at http://127\.0\.0\.1:\d+/v1\n",
        result.err,
    )
    assert "sk-real-key-123" not in result.err


# --------------------------------------------------------------------------------------------
# What the user is told
# --------------------------------------------------------------------------------------------

HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
    + "<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>" * 20
    + "</body></html>"
)


async def test_an_html_error_page_is_summarised() -> None:
    async with MockServer(delay=0) as server:
        server.enqueue(Raw([HTML_PAGE], status=502, content_type="text/html"))
        result = await run_cli("chat", "hi", "--base-url", server.base_url, "--max-retries", "0")
    assert result.code == 1
    assert one_error_line(result.err) == (
        "openai-sse: error: the server answered 502 Bad Gateway: an HTML page ('502 Bad Gateway')"
    )


async def test_a_page_that_is_not_an_event_stream_is_named() -> None:
    async with MockServer(delay=0) as server:
        server.enqueue(Fault.wrong_content_type("text/html", HTML_PAGE))
        result = await run_cli("chat", "hi", "--base-url", server.base_url)
    assert result.code == 1
    line = one_error_line(result.err)
    assert line.startswith("openai-sse: error: the server answered text/html, not an event stream")
    assert "<" not in line


async def test_a_broken_connection_says_after_how_many_chunks() -> None:
    expected = expected_answer("hello")
    async with MockServer(delay=0) as server:
        server.enqueue(Fault.drop_after(3))
        result = await run_cli("chat", "hello", "--base-url", server.base_url)
    assert result.code == 1
    assert result.out == "".join(tokenize(expected)[:2]) + "\n"  # role chunk + 2 tokens
    assert one_error_line(result.err) == "openai-sse: error: the connection broke after 3 chunks"


async def test_a_stalled_stream_times_out_with_the_chunk_count() -> None:
    async with MockServer(delay=0) as server:
        server.enqueue(Fault.stall_after(3))
        result = await run_cli(
            "chat", "hello", "--base-url", server.base_url, "--timeout", "0.5", "--max-retries", "0"
        )
    assert result.code == 1
    assert one_error_line(result.err) == (
        "openai-sse: error: timed out waiting for the next event (after 3 chunks)"
    )


async def test_plain_http_errors_show_no_transport_internals() -> None:
    port = closed_port()
    result = await run_cli(
        "chat", "hi", "--base-url", f"http://127.0.0.1:{port}/v1", "--max-retries", "0"
    )
    assert "ssl:" not in result.err
    assert "Connect call failed" not in result.err


@pytest.mark.parametrize(
    ("reply", "code", "notice"),
    [
        (
            Reply(refusal="I can't help with that."),
            3,
            "openai-sse: the model refused to answer (the refusal is above)",
        ),
        (
            Reply("Some of it", finish_reason="content_filter"),
            3,
            "openai-sse: the answer was stopped by a content filter (finish_reason=content_filter)",
        ),
        (
            Reply("Cut", finish_reason="length"),
            4,
            "openai-sse: the answer was cut off at the token limit (finish_reason=length)",
        ),
    ],
)
async def test_refusals_and_cut_answers_are_told_on_stderr(
    reply: Reply, code: int, notice: str
) -> None:
    async with MockServer(delay=0) as server:
        server.enqueue(reply)
        result = await run_cli("chat", "q", "--base-url", server.base_url)
    assert result.code == code
    err = result.err.splitlines()
    assert err[-1] == notice
    if reply.refusal is not None:
        assert result.out == ""  # the refusal is not the answer
        assert err[:-1] == ["I can't help with that."]
    else:
        assert result.out == f"{reply.text}\n"
        assert len(err) == 1


# --------------------------------------------------------------------------------------------
# serve: access log and script errors
# --------------------------------------------------------------------------------------------


@posix_only
async def test_serve_verbose_logs_each_request() -> None:
    proc, base_url = await start_serve("--rate", "0", "--verbose")
    assert proc.stderr is not None
    try:
        async with Client("x", base_url=base_url, max_retries=0) as client:
            await stream_text(client, "hello")
        lines: list[str] = []
        while not any("POST /v1/chat/completions" in line for line in lines):
            line = await asyncio.wait_for(proc.stderr.readline(), TIMEOUT)
            assert line, lines
            lines.append(line.decode())
    finally:
        proc.send_signal(signal.SIGINT)
        code, _, err = await finish(proc)
    assert code == 0
    assert re.search(r'127\.0\.0\.1 "POST /v1/chat/completions HTTP/1\.1" 200 \d+', lines[-1])
    assert_clean(err.decode())


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ('["fine", {"txt": "hi"}]', "entry 2: unknown reply key 'txt'"),
        ('"fine"\n{"txt": "hi"}\n', "line 2: unknown reply key 'txt'"),
        ('["fine", ', "not valid JSON"),
    ],
)
async def test_serve_names_the_script_file_and_entry(
    tmp_path: Path, content: str, where: str
) -> None:
    script = tmp_path / "replies.json"
    script.write_text(content)
    result = await run_cli("serve", "--port", "0", "--script", str(script))
    assert result.code == 1
    assert one_error_line(result.err).startswith(f"openai-sse: error: {script}: {where}")


def test_serve_on_uvloop_without_uvloop_is_one_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from openai_sse import cli

    monkeypatch.setattr(cli, "uvloop_installed", lambda: False)
    assert cli.main(["serve", "--port", "0", "--loop", "uvloop"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    line = one_error_line(captured.err)
    assert "pip install 'openai-sse[uvloop]'" in line
