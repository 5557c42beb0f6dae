"""``local``: PySpark on this machine behind our own Livy-compatible gateway, built in."""

from __future__ import annotations

from typing import Any

from prophecy_jupyter.engines.base import Engine, RunsBatches
from prophecy_jupyter.engines.livy import LivyEngine, LivySettings
from prophecy_jupyter.kinds.base import EngineContext, FabricKind, KindSettings
from prophecy_jupyter.schedulers.airflow import AIRFLOW


class LocalSettings(KindSettings):
    def endpoint(self) -> str:
        return "embedded local Spark"


def _engine(_settings: LocalSettings, context: EngineContext) -> Engine:
    url, token = context.local_gateway()
    settings = LivySettings(url=url, auth="bearer")
    return LivyEngine(settings, secret=token, fabric_name=context.ref, locate=context.local_gateway)


def _check(_settings: Any, _secret: str | None, _steps: list[str], _ref: str) -> str:
    return "The local fabric runs on this machine."


LOCAL = FabricKind(
    name="local",
    title="local Spark",
    settings=LocalSettings,
    check=_check,
    engine=_engine,
    built_in=True,
    warm_on_attach=True,
    ends_with_server=True,
    capabilities=(RunsBatches,),
    scheduler=AIRFLOW,
)
