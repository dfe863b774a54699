import pytest

from alignslm_eval.redaction import redact_command, redact_text, redact_url

SECRET_URL = "http://user:sk-userinfo123@judge.example:8000/v1/?api-key=sk-query456&api-version=2024-06-01"


def test_user_info_and_key_like_query_values_are_redacted_and_the_rest_kept():
    redacted = redact_url(SECRET_URL)
    assert redacted == "http://judge.example:8000/v1?api-key=***&api-version=2024-06-01"


@pytest.mark.parametrize("query", ["token=abc", "access_token=abc", "sig=abc", "key=abc", "whatever=sk-abcdefgh1",
                                   "Password=abc", "x-api-key=abc"])
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
