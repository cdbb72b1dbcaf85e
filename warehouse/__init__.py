"""The DuckDB warehouse: connection, migrations, storing and reading the living-review tables."""

from warehouse.db import WarehouseError, connect, migrate, opened, query, rows_as_dicts, schema_version, transaction

__all__ = ["WarehouseError", "connect", "migrate", "opened", "query", "rows_as_dicts", "schema_version", "transaction"]
