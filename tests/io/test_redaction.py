import pytest

from alignslm_eval.io.redaction import redact_command, redact_text, redact_url

SECRET_URL = "http://user:sk-userinfo123@judge.example:8000/v1/?api-key=sk-query456&api-version=2024-06-01"


def test_user_info_and_key_like_query_values_are_redacted_and_the_rest_kept():
    redacted = redact_url(SECRET_URL)
    assert redacted == "http://judge.example:8000/v1?api-key=***&api-version=2024-06-01"


@pytest.mark.parametrize("query", ["token=abc", "access_token=abc", "sig=abc", "key=abc", "whatever=sk-abcdefgh1",
                                   "Password=abc", "x-api-key=abc", "subscription-key=abc", "api_token=abc",
                                   "auth_token=abc", "access_key=abc", "x-goog-api-key=abc", "private_token=abc",
                                   "client_secret=abc", "code=abc"])
def test_every_credential_spelling_in_a_query_is_redacted(query):
    assert redact_url(f"https://h/v1?{query}").endswith("=***")


def test_urls_without_secrets_are_unchanged_but_for_a_trailing_slash():
    assert redact_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1"
    assert redact_url("https://[::1]:9/v1?api-version=1") == "https://[::1]:9/v1?api-version=1"
    assert redact_url(None) is None


def test_an_unparsable_url_is_hidden_whole():
    assert redact_url("http://user:sk-x@host:notaport/v1") == "***"


def test_urls_inside_text_and_command_lines_are_redacted():
    message = f"--judge-base-url {SECRET_URL}: not reachable"
    assert "sk-" not in redact_text(message) and redact_text(message).endswith(": not reachable")
    argv = ["alignslm-eval", "--judge-base-url", SECRET_URL, f"--judge-base-url={SECRET_URL}", "--tasks", "all"]
    redacted = redact_command(argv)
    assert not any("sk-" in a or "user" in a for a in redacted)
    assert redacted[0] == "alignslm-eval" and redacted[-2:] == ["--tasks", "all"]


@pytest.mark.parametrize("text", [
    "--judge-base-url judge.local:8000/v1?api-key=sk-secret123: not an http(s) URL",  # no scheme
    "--judge-base-url https:/user:sk-secret123@host/v1: not an http(s) URL",  # a typo'd scheme
    "http://admin:12345#x@host/v1",  # a numeric password that parses as a port
    "the key sk-secret123 was refused",
])
def test_what_a_malformed_url_or_a_bare_key_would_leak_is_redacted_too(text):
    assert "secret123" not in redact_text(text) and "12345" not in redact_text(text)


def test_words_that_merely_contain_a_key_prefix_are_left_alone():
    text = "task-abcdefgh and work-dir-1234567 at /data/ask_me_anything"
    assert redact_text(text) == text
