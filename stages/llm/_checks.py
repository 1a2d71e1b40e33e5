"""
The checks of what `LlmClient` is given to reach its server: the base URL, which the
messages and the resume command show whole, so it must hold no key; the API key, which
goes into a header; and that header's name.
"""

from __future__ import annotations

import unicodedata

import httpx

from asyncpipe import ConfigError

__all__ = ["check_base_url", "check_key_header", "checked_key"]

# The characters of an HTTP header's name (RFC 9110's token).
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def checked_key(key: str | None) -> str | None:
    """
    ``key`` without the spaces and line ends around it (a secret file, a CRLF ``.env``).

    Raises:
        ConfigError: it holds a character an HTTP header cannot carry (httpx's error
            would quote the header, key and all); the message never shows the key.
    """
    key = (key or "").strip()
    bad = next((char for char in key if not " " < char < "\x7f"), None)
    if bad is not None:
        raise ConfigError(
            f"the API key holds a character an HTTP header cannot carry "
            f"({unicodedata.name(bad, hex(ord(bad)))}, at position {key.index(bad) + 1}): "
            "check the variable that holds it; the key is not shown"
        )
    return key or None


#: Words that make a query parameter's name a secret's, whole or as a part between
#: ``-``, ``_`` and ``.`` (``api-key``, ``apiKey``, ``access_token``, ``sig``; ``code`` is
#: Azure Functions' key).
_SECRET_WORDS = frozenset(
    [
        "key",
        "apikey",
        "token",
        "secret",
        "password",
        "passwd",
        "pass",
        "sig",
        "signature",
        "code",
        "auth",
        "credential",
    ]
)


def _secret_parameter(url: str) -> str | None:
    """The name of the first parameter of ``url``'s query that reads as a secret, if any."""
    for pair in url.partition("?")[2].split("&"):
        name = pair.partition("=")[0]
        parts = name.lower().replace("-", "_").replace(".", "_").split("_")
        if name and _SECRET_WORDS & {name.lower(), *parts}:
            return name
    return None


def check_base_url(base_url: str) -> None:
    """
    Raises:
        ConfigError: ``base_url`` is not http(s), or holds a user name, a key or a query
            parameter that reads as a secret's (then the message does not show it).
    """
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"the LLM base URL must start with http:// or https://, got {base_url!r}")
    if httpx.URL(base_url).userinfo:
        # httpx would log it on every request, and the command line echoes it.
        raise ConfigError(
            "the LLM base URL holds a user name or key (user:key@host): give the key "
            "in an environment variable instead (--llm-key-env); the URL is not shown"
        )
    if secret := _secret_parameter(base_url):
        # Our own messages and the resume command a run prints show the URL whole.
        raise ConfigError(
            f"the LLM base URL's query holds {secret!r}, which reads as a key: give the "
            "key in an environment variable instead (--llm-key-env, and --llm-key-header "
            "for a header other than Authorization); the URL is not shown"
        )


def check_key_header(name: str) -> None:
    """
    Raises:
        ConfigError: ``name`` is not a header's name (RFC 9110's token).
    """
    if not name or not set(name) <= _TOKEN:
        raise ConfigError(
            f"the API key's header name must be a word of letters, digits and -, got "
            f"{name!r} (--llm-key-header)"
        )
