"""The small value types of the transport layer."""

from __future__ import annotations

import pytest

from openai_sse.transport import EventSourceListener, Request, Timeout


def test_request_normalises_and_looks_up_headers_case_insensitively() -> None:
    request = Request("http://127.0.0.1/x", "post", headers={"X-Key": "1"}, json={"a": 1})
    assert request.method == "POST"
    assert request.header("x-key") == "1"
    assert request.header("missing") is None
    changed = request.with_header("x-KEY", "2")
    assert changed.headers == {"x-KEY": "2"}
    assert request.headers == {"X-Key": "1"}  # immutable: the original is unchanged


def test_request_rejects_two_bodies() -> None:
    with pytest.raises(ValueError, match="json or data"):
        Request("http://127.0.0.1/", "POST", json={}, data=b"x")


def test_timeout_of() -> None:
    assert Timeout.of(5) == Timeout(connect=5, first_event=5, idle=5, total=None)
    assert Timeout.of(None) == Timeout(connect=None, first_event=None, idle=None, total=None)
    custom = Timeout(idle=1)
    assert Timeout.of(custom) is custom
    assert Timeout().total is None  # never a total deadline by default: it kills long streams


def test_listener_defaults_are_no_ops() -> None:
    listener = EventSourceListener()
    source: object = object()
    assert listener.on_open(source, None) is None  # type: ignore[arg-type]
    assert listener.on_event(source, None, None, "x") is None  # type: ignore[arg-type]
    assert listener.on_closed(source) is None  # type: ignore[arg-type]
    assert listener.on_failure(source, ValueError(), None) is None  # type: ignore[arg-type]
