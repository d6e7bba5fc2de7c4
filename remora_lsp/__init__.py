"""Remora: a language server that activates per-library AI Language Packs from a file's imports."""

__version__ = "0.1.0"

__all__ = ["__version__"]
