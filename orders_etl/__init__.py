"""orders_etl: a late-arrival-correct orders fact table on PySpark and Delta Lake."""

__version__ = "0.1.0"
