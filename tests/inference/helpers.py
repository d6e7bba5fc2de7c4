"""Helpers shared by the backend tests."""

from __future__ import annotations

from tests.inference.tiny import TinyModel

EOS = 0


def matches_reference(got: list[int] | tuple[int, ...], want: list[int]) -> bool:
    """``got`` equals the reference, or is a prefix of it cut where the reference emits EOS."""
    got = list(got)
    if got == want:
        return True
    return got == want[: len(got)] and len(got) < len(want) and want[len(got)] == EOS


def adapter_ref(tiny: TinyModel, name: str, int_id: int = 1):  # type: ignore[no-untyped-def]
    from remora_lsp.inference.engine import AdapterRef

    return AdapterRef(name, int_id, tiny.adapters[name], base_model_id=tiny.model_id)
