"""Merge streamed chunks into a :class:`ChatCompletion`.

:meth:`ChatCompletionAccumulator.add` runs once per chunk on the hot path, so it only appends
the delta's strings to per-choice fragment lists; the strings are joined when a snapshot is
built, which keeps the whole stream linear in its size however small the deltas are.
"""

from __future__ import annotations

from typing import Any

from .models import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChatCompletionMessageToolCall,
    ChatCompletionTokenLogprob,
    Choice,
    ChoiceDeltaToolCall,
    ChoiceLogprobs,
    CompletionUsage,
    Function,
    FunctionCall,
)

__all__ = ["ChatCompletionAccumulator"]


class _ToolCall:
    """A tool call being assembled from its fragments."""

    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self, id: str | None, type: str | None, name: str | None) -> None:
        self.id = id
        self.type = type
        self.name = name
        self.arguments: list[str] = []

    def build(self) -> ChatCompletionMessageToolCall:
        arguments = self.arguments
        if len(arguments) > 1:
            # Collapse, so that later snapshots join one string instead of every fragment.
            arguments[:] = ["".join(arguments)]
        return ChatCompletionMessageToolCall(
            id=self.id or "",
            type=self.type or "function",
            function=Function(name=self.name or "", arguments=arguments[0] if arguments else ""),
        )


class _Choice:
    """Everything one choice has received so far, as fragment lists."""

    __slots__ = (
        "content",
        "content_filter_results",
        "finish_reason",
        "function_arguments",
        "function_name",
        "index",
        "logprobs",
        "logprobs_content",
        "logprobs_refusal",
        "open_from",
        "reasoning",
        "refusal",
        "role",
        "tool_by_index",
        "tools",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.role: str | None = None
        self.content: list[str] | None = None
        self.refusal: list[str] | None = None
        self.reasoning: list[str] | None = None
        self.tools: list[_ToolCall] | None = None
        self.tool_by_index: dict[int, _ToolCall] = {}
        self.open_from = 0  # tools[open_from:] have not been reported complete yet
        self.function_name: str | None = None
        self.function_arguments: list[str] | None = None
        self.logprobs = False
        self.logprobs_content: list[ChatCompletionTokenLogprob] | None = None
        self.logprobs_refusal: list[ChatCompletionTokenLogprob] | None = None
        self.finish_reason: str | None = None
        self.content_filter_results: dict[str, Any] | None = None

    def close_tools(self, done: list[tuple[int, ChatCompletionMessageToolCall]], end: int) -> None:
        tools = self.tools
        if tools is not None:
            index = self.index
            for tool in tools[self.open_from : end]:
                done.append((index, tool.build()))
        self.open_from = end

    def build(self) -> Choice:
        content = self.content
        refusal = self.refusal
        reasoning = self.reasoning
        function_call = None
        if self.function_arguments is not None or self.function_name is not None:
            function_call = FunctionCall(
                name=self.function_name or "",
                arguments="".join(self.function_arguments or ()),
            )
        message = ChatCompletionMessage(
            role=self.role or "assistant",
            content=None if content is None else "".join(content),
            refusal=None if refusal is None else "".join(refusal),
            tool_calls=None if self.tools is None else [tool.build() for tool in self.tools],
            function_call=function_call,
            reasoning=None if reasoning is None else "".join(reasoning),
        )
        logprobs = None
        if self.logprobs:
            lp_content = self.logprobs_content
            lp_refusal = self.logprobs_refusal
            logprobs = ChoiceLogprobs(
                content=None if lp_content is None else list(lp_content),
                refusal=None if lp_refusal is None else list(lp_refusal),
            )
        return Choice(
            index=self.index,
            message=message,
            finish_reason=self.finish_reason,
            logprobs=logprobs,
            content_filter_results=self.content_filter_results,
        )


class ChatCompletionAccumulator:
    """Feed it every chunk of one stream; :attr:`snapshot` is the completion so far.

    Choices may arrive interleaved in any order (``n > 1``). Tool calls are merged by their
    ``index``, except that a fragment bringing a new, different ``id`` for an index already in
    use starts a new call, because some servers (Ollama) send every call with index 0.
    Identifying fields take the first non-empty value, since Azure opens with a chunk whose
    ``id`` and ``model`` are empty.
    """

    __slots__ = (
        "_choices",
        "_created",
        "_id",
        "_last",
        "_meta_open",
        "_model",
        "_prompt_filter_results",
        "_service_tier",
        "_snapshot",
        "_system_fingerprint",
        "_unfinished",
        "_usage",
    )

    def __init__(self) -> None:
        self._choices: dict[int, _Choice] = {}
        self._last: _Choice | None = None
        self._unfinished = 0
        self._id = ""
        self._model = ""
        self._created = 0
        self._system_fingerprint: str | None = None
        self._service_tier: str | None = None
        self._meta_open = True
        self._prompt_filter_results: list[dict[str, Any]] | None = None
        self._usage: CompletionUsage | None = None
        self._snapshot: ChatCompletion | None = None

    def add(self, chunk: ChatCompletionChunk) -> list[tuple[int, ChatCompletionMessageToolCall]]:
        """Merge ``chunk``; return ``(choice index, tool call)`` for each call it completed.

        A tool call is complete once a later call starts in the same choice or the choice
        gets its ``finish_reason``.
        """
        self._snapshot = None
        done: list[tuple[int, ChatCompletionMessageToolCall]] = []
        if self._meta_open:
            self._merge_meta(chunk)
        if chunk.usage is not None:
            self._usage = chunk.usage
        if chunk.prompt_filter_results is not None and self._prompt_filter_results is None:
            self._prompt_filter_results = chunk.prompt_filter_results

        for choice in chunk.choices:
            index = choice.index
            state = self._last
            if state is None or state.index != index:
                state = self._choices.get(index)
                if state is None:
                    state = self._choices[index] = _Choice(index)
                    self._unfinished += 1
                self._last = state
            delta = choice.delta

            text = delta.content
            if text is not None:
                if state.content is None:
                    state.content = [text]
                else:
                    state.content.append(text)
            text = delta.reasoning_content
            if text is None:
                text = delta.reasoning
            if text is not None:
                if state.reasoning is None:
                    state.reasoning = [text]
                else:
                    state.reasoning.append(text)
            text = delta.refusal
            if text is not None:
                if state.refusal is None:
                    state.refusal = [text]
                else:
                    state.refusal.append(text)
            if delta.role is not None and state.role is None:
                state.role = delta.role
            if delta.tool_calls is not None:
                self._merge_tool_calls(state, delta.tool_calls, done)
            if delta.function_call is not None:
                call = delta.function_call
                if call.name and not state.function_name:
                    state.function_name = call.name
                if state.function_arguments is None:
                    state.function_arguments = []
                if call.arguments:
                    state.function_arguments.append(call.arguments)
            if choice.logprobs is not None:
                self._merge_logprobs(state, choice.logprobs)
            if choice.content_filter_results:
                state.content_filter_results = choice.content_filter_results
            if choice.finish_reason and state.finish_reason is None:
                state.finish_reason = choice.finish_reason
                self._unfinished -= 1
                state.close_tools(done, len(state.tools or ()))
        return done

    @property
    def snapshot(self) -> ChatCompletion:
        """The completion as far as it has streamed; cached until the next :meth:`add`."""
        snapshot = self._snapshot
        if snapshot is None:
            snapshot = self._snapshot = ChatCompletion(
                id=self._id,
                object="chat.completion",
                created=self._created,
                model=self._model,
                choices=[self._choices[i].build() for i in sorted(self._choices)],
                usage=self._usage,
                system_fingerprint=self._system_fingerprint,
                service_tier=self._service_tier,
                prompt_filter_results=self._prompt_filter_results,
            )
        return snapshot

    @property
    def finished(self) -> bool:
        """True once at least one choice was seen and every choice seen has a finish reason."""
        return self._unfinished == 0 and bool(self._choices)

    @property
    def usage(self) -> CompletionUsage | None:
        """The latest usage the stream reported, from a usage-only chunk or a finish chunk."""
        return self._usage

    def _merge_meta(self, chunk: ChatCompletionChunk) -> None:
        if not self._id and chunk.id:
            self._id = chunk.id
        if not self._model and chunk.model:
            self._model = chunk.model
        if not self._created and chunk.created:
            self._created = chunk.created
        if not self._system_fingerprint and chunk.system_fingerprint:
            self._system_fingerprint = chunk.system_fingerprint
        if not self._service_tier and chunk.service_tier:
            self._service_tier = chunk.service_tier
        self._meta_open = not (
            self._id
            and self._model
            and self._created
            and self._system_fingerprint
            and self._service_tier
        )

    @staticmethod
    def _merge_tool_calls(
        state: _Choice,
        fragments: list[ChoiceDeltaToolCall],
        done: list[tuple[int, ChatCompletionMessageToolCall]],
    ) -> None:
        tools = state.tools
        if tools is None:
            tools = state.tools = []
        by_index = state.tool_by_index
        for fragment in fragments:
            tool = by_index.get(fragment.index)
            function = fragment.function
            if tool is None or (fragment.id and tool.id and fragment.id != tool.id):
                state.close_tools(done, len(tools))
                tool = _ToolCall(
                    fragment.id, fragment.type, None if function is None else function.name
                )
                by_index[fragment.index] = tool
                tools.append(tool)
            else:
                if fragment.id and not tool.id:
                    tool.id = fragment.id
                if fragment.type and not tool.type:
                    tool.type = fragment.type
                if function is not None and function.name and not tool.name:
                    tool.name = function.name
            if function is not None and function.arguments:
                tool.arguments.append(function.arguments)

    @staticmethod
    def _merge_logprobs(state: _Choice, logprobs: ChoiceLogprobs) -> None:
        state.logprobs = True
        if logprobs.content is not None:
            if state.logprobs_content is None:
                state.logprobs_content = list(logprobs.content)
            else:
                state.logprobs_content.extend(logprobs.content)
        if logprobs.refusal is not None:
            if state.logprobs_refusal is None:
                state.logprobs_refusal = list(logprobs.refusal)
            else:
                state.logprobs_refusal.extend(logprobs.refusal)
