"""Adapters behind small protocols: SQL (SQLite default, PostgreSQL), DynamoDB, publication sources."""
