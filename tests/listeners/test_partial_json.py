"""The incremental JSON parser: same result as json.loads for any split, consistent prefixes."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openai_sse import ProtocolError
from openai_sse.listeners.partial_json import PartialJSONError, PartialJSONParser, parse_partial

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


@st.composite
def documents(draw: st.DrawFn) -> str:
    value = draw(json_values)
    indent = draw(st.sampled_from([None, 0, 2]))
    ensure_ascii = draw(st.booleans())
    text = json.dumps(value, indent=indent, ensure_ascii=ensure_ascii)
    return draw(st.sampled_from(["", " ", "\n\t "])) + text + draw(st.sampled_from(["", " \r\n"]))


@st.composite
def splits(draw: st.DrawFn, text: str) -> list[str]:
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=min(len(text), 40))))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def consistent(partial: Any, final: Any) -> bool:
    """``partial`` is what a prefix of ``final``'s text may show."""
    if isinstance(final, dict):
        if not isinstance(partial, dict):
            return False
        keys = list(partial)
        if keys != list(final)[: len(keys)]:
            return False
        return all(partial[k] == final[k] for k in keys[:-1]) and (
            not keys or consistent(partial[keys[-1]], final[keys[-1]])
        )
    if isinstance(final, list):
        if not isinstance(partial, list) or len(partial) > len(final):
            return False
        if not partial:
            return True
        return partial[:-1] == final[: len(partial) - 1] and (
            not partial or consistent(partial[-1], final[len(partial) - 1])
        )
    if isinstance(final, str):
        return isinstance(partial, str) and final.startswith(partial)
    return type(partial) is type(final) and partial == final


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_any_split_gives_json_loads_and_consistent_prefixes(data: st.DataObject) -> None:
    text = data.draw(documents())
    final = json.loads(text)
    parser = PartialJSONParser()
    for delta in data.draw(splits(text)):
        parser.feed(delta)
        if parser.has_value:
            assert consistent(copy.deepcopy(parser.value), final)
    assert parser.end() == final
    assert parser.complete


@given(json_values)
@settings(max_examples=60, deadline=None)
def test_one_character_deltas(value: Any) -> None:
    text = json.dumps(value)
    parser = PartialJSONParser()
    for char in text:
        parser.feed(char)
    assert parser.end() == json.loads(text)


def test_partial_value_rules() -> None:
    parser = PartialJSONParser()
    seen = []
    for char in '{"name": "Ada", "age": 36, "tags": ["x", tru':
        if parser.feed(char):
            seen.append(copy.deepcopy(parser.value))
    assert seen[0] == {}
    # a key whose value has not started is absent
    assert {"name": ""} in seen and not any(v == {"name": "Ada", "age": 3} for v in seen)
    assert {"name": "A"} in seen and {"name": "Ad"} in seen
    # the number appears only once a delimiter follows it
    assert {"name": "Ada", "age": 36} in seen
    assert parser.value == {"name": "Ada", "age": 36, "tags": ["x"]}
    parser.feed("e]}")
    assert parser.value == {"name": "Ada", "age": 36, "tags": ["x", True]}
    assert parser.complete


def test_number_at_end_of_document_completes_on_end() -> None:
    parser = PartialJSONParser()
    parser.feed("-12.5e")
    parser.feed("3")
    assert not parser.has_value
    assert parser.end() == -12500.0


def test_same_object_updated_in_place() -> None:
    parser = PartialJSONParser()
    parser.feed('{"a": [')
    first = parser.value
    parser.feed('1, "b"]}')
    assert parser.value is first
    assert first == {"a": [1, "b"]}


ESCAPE_CASES = [
    (['"\\', 'u00e9"'], "é"),
    (['"\\u00', 'e9"'], "é"),
    (['"\\ud83d', '\\ude00"'], "😀"),
    (['"\\ud83d\\u', 'de00"'], "😀"),
    (['"\\ud83d\\ude0', '0"'], "😀"),
    (['"\\ud83d"'], "\ud83d"),  # a lone surrogate, as json.loads gives
    (['"\\ude00x"'], "\ude00x"),
    (['"\\ud83d', "x", '"'], "\ud83dx"),
]


def test_escapes_split_across_deltas() -> None:
    for pieces, expected in ESCAPE_CASES:
        parser = PartialJSONParser()
        for piece in pieces:
            parser.feed(piece)
        assert parser.end() == expected == json.loads("".join(pieces)), pieces


def test_high_surrogate_waits_for_its_pair() -> None:
    parser = PartialJSONParser()
    parser.feed('"a\\ud83d')
    assert parser.value == "a"
    parser.feed("\\ude00")
    assert parser.value == "a😀"


def _feed_all(parser: PartialJSONParser, text: str) -> Any:
    for char in text:
        parser.feed(char)
    return parser.end()


def _reject(name: str) -> None:
    raise ValueError(name)


INVALID = [
    "[1,]",
    '{"a":1,}',
    "01",
    "-",
    "1.",
    ".5",
    "+1",
    "1e",
    '"\x01"',
    '"\\x"',
    '"\\u12g4"',
    "[1 2]",
    '{"a" 1}',
    "{1: 2}",
    "nul1",
    "True",
    "NaN",
    "-Infinity",
    "1 2",
    "{} x",
    "'a'",
    "[}",
    "{]",
]


def test_invalid_json_raises_typed_error_keeping_the_text() -> None:
    for text in INVALID:
        with pytest.raises(ValueError):  # NaN and Infinity are Python's extension, not JSON
            json.loads(text, parse_constant=_reject)
        parser = PartialJSONParser()
        with pytest.raises(PartialJSONError) as info:
            _feed_all(parser, text)
        assert isinstance(info.value, ProtocolError)
        fed = info.value.text  # everything fed up to the character that revealed the error
        assert text.startswith(fed)
        assert 0 <= info.value.position <= len(fed)


def test_incomplete_document_raises_on_end() -> None:
    for text in ["", "   ", "[", '{"a"', '{"a":', '"abc', "tr", '"\\u00']:
        parser = PartialJSONParser()
        parser.feed(text)
        with pytest.raises(PartialJSONError, match="end of JSON"):
            parser.end()


def test_error_position_is_absolute_across_deltas() -> None:
    parser = PartialJSONParser()
    parser.feed('{"a": ')
    with pytest.raises(PartialJSONError) as info:
        parser.feed("x}")
    assert info.value.position == 6


def test_parse_partial() -> None:
    assert parse_partial('{"a": {"b": [1, 2, "th') == {"a": {"b": [1, 2, "th"]}}
    assert parse_partial("") is None
