"""The one masking helper every repr, message and log line goes through."""

from __future__ import annotations

from openai_sse._redact import mask_body, mask_text, mask_url, secrets_of
from openai_sse.transport import Request


def test_mask_url_userinfo_and_key_like_query_values() -> None:
    url = "https://user:pw@host.example:8443/v1?API-KEY=a1&Token=t2&sig=s3&x=keep&access_token=t4"
    masked = mask_url(url)
    assert masked == (
        "https://***@host.example:8443/v1?API-KEY=***&Token=***&sig=***&x=keep&access_token=***"
    )
    assert mask_url("http://127.0.0.1:9/v1") == "http://127.0.0.1:9/v1"


def test_secrets_of_a_request_cover_headers_userinfo_and_query() -> None:
    request = Request(
        "http://u:userinfo-pw@h/v1?key=query%2Bkey",
        headers={"Authorization": "Bearer sk-abcdef", "api-key": "azure-1234", "X": "public"},
    )
    secrets = request.secrets()
    for secret in ("sk-abcdef", "azure-1234", "userinfo-pw", "query+key", "query%2Bkey"):
        assert secret in secrets
    assert "public" not in secrets
    shown = repr(request)
    assert not any(secret in shown for secret in secrets)
    assert "X" in shown and "public" in shown


def test_mask_text_and_body_longest_first_and_nested() -> None:
    secrets = secrets_of(headers={"Authorization": "Bearer sk-abcdef"})
    assert mask_text("bad key sk-abcdef!", secrets) == "bad key ***!"
    body = {"error": {"message": "key Bearer sk-abcdef", "list": ["sk-abcdef", 3]}}
    assert mask_body(body, secrets) == {"error": {"message": "key ***", "list": ["***", 3]}}
    assert secrets_of(headers={"api-key": "abc"}) == ()  # too short to search text for
