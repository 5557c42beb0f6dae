"""Job targets: one exporter per scheduler a fabric kind already has (Snowflake tasks; Databricks
Jobs and Airflow to come), below the services and beside the engines. A kind names its target in
its ``FabricKind``; the job service calls it, so no code switches on a kind's name."""
