"""Which failures are worth another attempt, and how long to wait before it.

Only failures before any content reached a listener are retried; the chat stream enforces
that, this module only judges the error itself.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import APIConnectionError, APIStatusError, StreamError

__all__ = ["RetryPolicy"]

_RETRYABLE_STATUS = frozenset({408, 409, 429})
_RETRYABLE_STREAM_ERRORS = frozenset(
    {
        "server_error",
        "internal_error",
        "internal_server_error",
        "overloaded",
        "overloaded_error",
        "rate_limit_exceeded",
        "rate_limit_error",
        "service_unavailable",
        "timeout",
        "502",
        "503",
        "504",
        "529",
        "500",
        "429",
    }
)


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` further attempts, waiting as the server asks or backing off.

    The server's ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date) is honoured up
    to ``max_server_delay``; otherwise the wait is ``initial_delay * 2**attempt`` capped at
    ``max_delay``, less up to a quarter at random so clients spread out.
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_server_delay: float = 60.0

    def delay(self, error: BaseException, attempt: int) -> float | None:
        """Seconds before attempt ``attempt + 1``, or None when it should not happen."""
        if attempt >= self.max_retries or not is_retryable(error):
            return None
        headers = (
            error.response.headers if isinstance(error, APIStatusError) and error.response else None
        )
        if headers is not None:
            server = _server_delay(headers)
            if server is not None and 0 <= server <= self.max_server_delay:
                return server
        backoff = min(self.initial_delay * 2.0**attempt, self.max_delay)
        return backoff * (1.0 - 0.25 * random.random())


def is_retryable(error: BaseException) -> bool:
    """Connection errors and timeouts, 408/409/429/5xx, and transient in-stream errors."""
    if isinstance(error, APIStatusError):
        response = error.response
        if response is not None:
            should = response.headers.get("x-should-retry")
            if should == "true":
                return True
            if should == "false":
                return False
        return error.status_code in _RETRYABLE_STATUS or error.status_code >= 500
    if isinstance(error, APIConnectionError):
        return True
    if isinstance(error, StreamError):
        return any(
            str(value).lower() in _RETRYABLE_STREAM_ERRORS
            for value in (error.type, error.code)
            if value is not None
        )
    return False


def _server_delay(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return float(value) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return email.utils.mktime_tz(parsed) - time.time()
