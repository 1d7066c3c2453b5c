"""Databases and schemas: URLs, throw-away databases and leftovers, reading a schema and its rows,
tables as plain data, and what a migration's operations do."""
