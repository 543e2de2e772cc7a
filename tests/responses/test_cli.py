"""``openai-sse chat --api responses``: the same command over /v1/responses, offline too."""

from __future__ import annotations

import json

from openai_sse.testing import MockServer, Reply, ToolCall

from ..test_cli import cli_env, expected_answer, run_cli


async def test_offline_by_default_streams_the_answer() -> None:
    result = await run_cli("chat", "--api", "responses", "--rate", "0", "Hello there")
    assert result.code == 0, result.err
    assert result.out == expected_answer("Hello there") + "\n"
    assert "embedded offline server" in result.err


async def test_json_lines_are_the_typed_events() -> None:
    result = await run_cli("chat", "--api", "responses", "--rate", "0", "--json", "Hi")
    assert result.code == 0, result.err
    events = [json.loads(line) for line in result.out.splitlines()]
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] == "response.completed"
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(deltas) == expected_answer("Hi")


async def test_reasoning_tool_calls_usage_and_truncation_against_a_server() -> None:
    async with MockServer(delay=0) as server:
        env = cli_env(OPENAI_BASE_URL=server.base_url)
        server.enqueue(Reply(reasoning="Thinking it over.", text="Done."))
        result = await run_cli("chat", "--api", "responses", "--usage", "Q", env=env)
        assert result.code == 0, result.err
        assert result.out == "Done.\n"
        assert "Thinking it over." in result.err
        assert "output_tokens=" in result.err

        server.enqueue(Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]))
        result = await run_cli("chat", "--api", "responses", "Weather?", env=env)
        assert result.code == 0, result.err
        assert 'get_weather({"city": "Paris"})' in result.out

        result = await run_cli("chat", "--api", "responses", "--max-tokens", "2", "Hello", env=env)
        assert result.code != 0
        assert "cut off" in result.err
        request = server.requests[-1]
        assert request.path == "/v1/responses"
        assert request.json["max_output_tokens"] == 2 and request.json["stream"] is True
