"""The schema's history as Alembic revisions: `versions/` holds one per change, `env.py` runs them on the
connection `storage.schema` hands it, `legacy.py` is how the baseline brings up an unversioned database."""
