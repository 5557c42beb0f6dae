"""Jupyter identities and a restricting authorizer for test servers, several users on one server.

``TokenPerUser``: ``Authorization: token <token>`` names the user ``USER_TOKENS[token]``.
``DenyList``: refuses the (user, action, resource) triples listed as JSON in ``$PROPHECY_TEST_DENY``
and allows everything else, as a deployment's own Authorizer would.
"""

from __future__ import annotations

import json
import os

from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import IdentityProvider, User

DENY_ENV = "PROPHECY_TEST_DENY"
USER_TOKENS = {"alice-7c1e0b": "alice", "bob-52fa9d": "bob"}
TOKEN_OF = {user: token for token, user in USER_TOKENS.items()}


class TokenPerUser(IdentityProvider):
    """Each test token names a user; the server's own token (``IdentityProvider.token``) is its owner."""

    def get_user(self, handler):
        scheme, _, token = handler.request.headers.get("Authorization", "").partition(" ")
        username = USER_TOKENS.get(token) if scheme.lower() == "token" else None
        if username is None:
            return super().get_user(handler)
        handler._token_authenticated = True
        return User(username=username)

    def is_token_authenticated(self, handler) -> bool:
        return getattr(handler, "_token_authenticated", False) or super().is_token_authenticated(handler)


class DenyList(Authorizer):
    """Refuses what ``$PROPHECY_TEST_DENY`` lists: ``[[user, action, resource], ...]``."""

    def is_authorized(self, handler, user, action, resource) -> bool:
        denied = {tuple(entry) for entry in json.loads(os.environ.get(DENY_ENV, "[]"))}
        return (user.username, action, resource) not in denied
