"""Error texts of the alert channels with no secret in them.

A webhook URL can carry its secret in the path (Slack and Discord hooks do)
or the query, so a channel names only scheme://host:port of it.
"""

import urllib.parse

REDACTED = "***"


def url_origin(url: str) -> str:
    """Return scheme://host:port of `url`, with the scheme's default port when the URL gives none."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return REDACTED
    if port is None:
        port = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{port}" if port is not None else f"{parts.scheme}://{host}"


def scrub(text: str, secrets: list[str | None]) -> str:
    """Return `text` with every non-empty string of `secrets` replaced by ***, longest first."""
    for secret in sorted((secret for secret in secrets if secret), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def url_secrets(url: str) -> list[str]:
    """Return the parts of `url` that may hold a secret: the URL itself, its user info, path and query."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return [url]
    user_info = parts.netloc.rpartition("@")[0]
    path = parts.path if parts.path not in ("", "/") else ""
    return [url, user_info, path, parts.query]
