"""Test helpers importable from test modules."""

from tests.conftest import make_app  # noqa: F401
