"""The first jobs a new Spark JVM of the gateway runs, so that a user's first cell does not pay
for loading and compiling their code paths."""

from __future__ import annotations


def warm_up(spark) -> None:
    """A first query with a shuffle, collected as rows and as Arrow."""
    frame = spark.range(1000).selectExpr("id", "cast(id AS string) AS s", "current_timestamp() AS t")
    frame.groupBy((frame.id % 10).alias("k")).count().collect()
    frame.toArrow()
