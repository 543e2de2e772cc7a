"""Any JSON value in any field of a recorded event: a typed event or ProtocolError, never a
crash, and the accumulator takes whatever decoded."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openai_sse import ProtocolError
from openai_sse.responses import ResponseAccumulator, decode_event

from .recordings import names, payloads

STREAMS = [[json.loads(data) for data in payloads(name)] for name in names()]

_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_value_anywhere_decodes_or_is_a_protocol_error(data: st.DataObject) -> None:
    """One event of a recorded stream gets a random value somewhere; the whole stream is fed."""
    stream = data.draw(st.sampled_from(STREAMS))
    index = data.draw(st.integers(0, len(stream) - 1))
    path = data.draw(st.sampled_from(_paths(stream[index])))
    mutated = _replace(stream[index], path, data.draw(_VALUES))
    accumulator = ResponseAccumulator()
    for i, payload in enumerate(stream):
        try:
            event = decode_event(json.dumps(mutated if i == index else payload))
        except ProtocolError:
            assert i == index
            continue
        accumulator.add(event)
        snapshot = accumulator.snapshot
    assert isinstance(snapshot.output_text, str)
    assert isinstance(snapshot.to_dict(), dict)
    assert isinstance(snapshot.to_json(), str)
