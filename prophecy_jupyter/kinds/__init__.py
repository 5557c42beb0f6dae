"""The fabric kinds: each declares in one place what the product does with it (``base.FabricKind``).
Adding a kind is a module here and a line in ``REGISTRY``; nothing else switches on a kind's name."""

from __future__ import annotations

from prophecy_jupyter.errors import Invalid
from prophecy_jupyter.kinds.airflow import AIRFLOW
from prophecy_jupyter.kinds.base import FabricKind
from prophecy_jupyter.kinds.databricks import DATABRICKS, DATABRICKS_SQL
from prophecy_jupyter.kinds.livy import LIVY
from prophecy_jupyter.kinds.local import LOCAL
from prophecy_jupyter.kinds.snowflake import SNOWFLAKE
from prophecy_jupyter.kinds.snowpark_local import SNOWPARK_LOCAL

REGISTRY: dict[str, FabricKind] = {
    kind.name: kind for kind in (LOCAL, LIVY, DATABRICKS, DATABRICKS_SQL, SNOWFLAKE, SNOWPARK_LOCAL, AIRFLOW)
}


def kind_named(name: str) -> FabricKind:
    """The kind of that name; Invalid (naming ``kind``) for any other."""
    found = REGISTRY.get(name)
    if found is None:
        raise Invalid(f"kind: one of {', '.join(REGISTRY)}", "kind")
    return found


def creatable() -> list[str]:
    """The kinds a team admin may create fabrics of (the built-in ones are not)."""
    return [name for name, kind in REGISTRY.items() if not kind.built_in]
