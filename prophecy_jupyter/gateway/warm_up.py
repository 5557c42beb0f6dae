"""The first jobs a new Spark JVM of the gateway runs, so that a user's first cell does not pay
for loading and compiling their code paths."""

from __future__ import annotations

from collections.abc import Callable


def warm_up(spark, wanted: Callable[[], bool] = lambda: True) -> bool:
    """A first query with a shuffle, collected as rows and as Arrow; each step only while
    ``wanted()``. Whether every step ran."""
    frame = spark.range(1000).selectExpr("id", "cast(id AS string) AS s", "current_timestamp() AS t")
    steps = (lambda: frame.groupBy((frame.id % 10).alias("k")).count().collect(), frame.toArrow)
    for step in steps:
        if not wanted():
            return False
        step()
    return True
