"""Git hosting providers and the user name each expects with a personal access token over HTTPS.

The token travels only as an ``Authorization`` header that git reads from its environment
(``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n``), scoped to the project's URL:
never in the remote URL, ``.git/config``, a process's arguments or a credential helper's store.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Provider:
    key: str
    title: str
    token_username: str | None
    """The user name that goes with a token; None when it must be the user's own account name."""


PROVIDERS = {
    p.key: p
    for p in (
        Provider("github", "GitHub or GitHub Enterprise", "x-access-token"),
        Provider("gitlab", "GitLab (also self-hosted)", "oauth2"),
        Provider("bitbucket-cloud", "Bitbucket Cloud (access token)", "x-token-auth"),
        Provider("bitbucket-server", "Bitbucket Server / Data Center (HTTP access token)", None),
        Provider("azure-devops", "Azure DevOps", "pat"),
        Provider("generic", "Any HTTPS Git server, e.g. Gitea", None),
    )
}
_LOOPBACK_HTTP = re.compile(r"^http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/")


def provider(key: str) -> Provider:
    found = PROVIDERS.get(key)
    if found is None:
        raise ValueError(f"unknown Git provider {key!r}; use one of {', '.join(PROVIDERS)}")
    return found


def check_url(url: str) -> str:
    """An HTTPS clone URL without credentials (plain http only on this machine)."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValueError("must not carry a user name or token; set your token instead")
    if not (parts.scheme == "https" and parts.hostname) and not _LOOPBACK_HTTP.match(url):
        raise ValueError("must be an https:// URL (plain http only on this machine)")
    return url.rstrip("/")


def auth_environment(url: str, key: str, token: str, username: str | None) -> dict[str, str]:
    """Environment variables that make git send the token to ``url`` (and nowhere else)."""
    user = provider(key).token_username or username
    if not user:
        raise ValueError(f"{provider(key).title} needs your account name with the token")
    basic = base64.b64encode(f"{user}:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{url}.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
    }
