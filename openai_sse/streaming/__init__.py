"""What every streamed API shares, written once: the stream lifecycle, the fan-out to
listeners, and the metrics.

Chat (:mod:`openai_sse.chat`) and the Responses API build their streams on these bases; each
only decodes its own events, knows its own end and errors, and accumulates its final object.
"""

from .fanout import TERMINAL_HOOKS, Emission, Fanout, ListenerHookWarning
from .lifecycle import DRAIN_TIMEOUT, END, Accumulator, BaseStream, Connect, RetryDelay
from .metrics import MIN_RATE_SPAN, StreamMetrics

__all__ = [
    "DRAIN_TIMEOUT",
    "END",
    "MIN_RATE_SPAN",
    "TERMINAL_HOOKS",
    "Accumulator",
    "BaseStream",
    "Connect",
    "Emission",
    "Fanout",
    "ListenerHookWarning",
    "RetryDelay",
    "StreamMetrics",
]
