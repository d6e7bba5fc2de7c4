"""LSP feature modules; each exposes ``register(ls)`` and keeps its handlers thin."""
