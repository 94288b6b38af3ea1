"""One Alembic revision per schema change, in order: `0001_baseline.py`, then every change since."""
