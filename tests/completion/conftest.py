"""The completion tests reuse the tiny model fixture of the inference tests."""

from tests.inference.conftest import tiny  # noqa: F401
