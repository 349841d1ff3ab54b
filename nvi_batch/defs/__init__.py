"""Thin Dagster definitions: they translate Dagster context and config into engine calls."""
