"""Persistence: SQLModel tables, intent-named queries, transactions and pattern search."""
