"""The API's routes tried first: a request under the API's prefix reaches its handler after one
check of the prefix, instead of after every pattern of Jupyter's and of the extensions loaded
before this one (some hundred regular expressions a request); other requests pay that one check."""

from __future__ import annotations

import re
from collections.abc import Collection

from tornado.routing import PathMatches, Rule
from tornado.web import Application, RequestHandler


def route_first(web_app: Application, prefix: str, handlers: Collection[type[RequestHandler]]) -> bool:
    """Move the routing rule that holds ``handlers`` to the front of ``web_app``'s, behind a match
    of ``prefix``; False if no rule holds them (nothing changes then)."""
    rules = web_app.default_router.rules
    for rule in rules:
        inner = getattr(rule.target, "rules", ())
        if any(getattr(r, "target", None) in handlers for r in inner):
            rules.remove(rule)
            rules.insert(0, Rule(PathMatches(re.escape(prefix.rstrip("/")) + "/.*"), rule.target))
            return True
    return False
