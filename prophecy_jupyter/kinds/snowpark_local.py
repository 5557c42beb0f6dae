"""``snowpark-local``: Snowpark's local testing on this machine, no account needed. DataFrame code
(create_dataframe, filter, group_by, join, table, UDFs ...) runs in Snowpark's own emulator, so
Snowpark cells and pipelines can be written and tested offline, then run on a ``snowflake`` fabric
unchanged; SQL text does not run there (Snowpark's emulator has no SQL engine)."""

from __future__ import annotations

from typing import Any

from prophecy_jupyter.engines.base import Engine
from prophecy_jupyter.kinds.base import EngineContext, FabricKind, KindSettings


class SnowparkLocalSettings(KindSettings):
    def endpoint(self) -> str:
        return "Snowpark local testing on this machine"


def _engine(_settings: SnowparkLocalSettings, context: EngineContext) -> Engine:
    from prophecy_jupyter.engines.snowflake import LOCAL_TESTING, SnowflakeEngine

    return SnowflakeEngine(LOCAL_TESTING, context.local_gateway, context.ref)


def _check(_settings: Any, _secret: str | None, _steps: list[str], _ref: str) -> str:
    return "Snowpark local testing runs on this machine; it reaches no account."


SNOWPARK_LOCAL = FabricKind(
    name="snowpark-local",
    title="Snowpark local testing",
    settings=SnowparkLocalSettings,
    check=_check,
    engine=_engine,
    warm_on_attach=True,
    ends_with_server=True,
    pipeline_code="snowpark",
)
