"""``snowflake``: a warehouse reached with each user's own credentials. Fabrics can be defined,
checked and given credentials; cells do not run on it yet (the registry says so)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from prophecy_jupyter.kinds import network
from prophecy_jupyter.kinds.base import FabricKind, KindSettings


class SnowflakeSettings(KindSettings):
    account: str
    user: str
    warehouse: str | None = None
    database: str | None = None
    schema_name: str | None = Field(default=None, alias="schema")
    role: str | None = None
    auth: Literal["password", "key-pair", "oauth"] = "password"

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("account")
    @classmethod
    def _account(cls, account: str) -> str:
        if not re.match(r"^[A-Za-z0-9_.-]+\Z", account):
            raise ValueError("must be an account identifier such as myorg-myaccount")
        return account

    def secret_needed(self) -> str | None:
        return {"password": "password", "key-pair": "private key", "oauth": "token"}[self.auth]

    def endpoint(self) -> str:
        return f"{self.account}.snowflakecomputing.com"


def _check(settings: SnowflakeSettings, _secret: str | None, steps: list[str], _ref: str) -> str:
    network.reach(f"https://{settings.endpoint()}", None, steps)
    steps.append("auth: checked when the first session starts")
    return f"{settings.endpoint()} is reachable."


SNOWFLAKE = FabricKind(name="snowflake", title="Snowflake", settings=SnowflakeSettings, check=_check)
