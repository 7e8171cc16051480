"""The report's controls: whole pipelines run on purpose-made inputs (a package: its conftest must not shadow tests/conftest.py)."""
