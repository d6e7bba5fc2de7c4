"""Pack status for the editor: ``remora/listPacks`` and the activate/deactivate commands."""

from __future__ import annotations

from typing import Any

from remora_lsp.errors import PackError
from remora_lsp.server.app import RemoraServer, guarded

__all__ = ["LIST_PACKS", "register"]

LIST_PACKS = "remora/listPacks"
ACTIVATE = "remora.activatePack"
DEACTIVATE = "remora.deactivatePack"


def _pack_name(args: Any) -> str:
    if isinstance(args, (list, tuple)) and args:
        first = args[0]
        if isinstance(first, dict):
            first = first.get("name")
        if isinstance(first, str) and first:
            return first
    raise PackError("expected the pack name as the command's first argument, e.g. ['fastapi']")


def register(ls: RemoraServer) -> None:
    """Register the pack request and commands on ``ls``."""

    @ls.feature(LIST_PACKS)
    @guarded(ls, request=True)
    def on_list_packs(ls: RemoraServer, params: Any = None) -> dict[str, Any]:
        return ls.session.status()

    @ls.command(ACTIVATE)
    @guarded(ls, request=True)
    def on_activate_pack(ls: RemoraServer, *args: Any) -> dict[str, Any]:
        message = ls.session.force(_pack_name(_flatten(args)), True)
        return {"message": message, **ls.session.status()}

    @ls.command(DEACTIVATE)
    @guarded(ls, request=True)
    def on_deactivate_pack(ls: RemoraServer, *args: Any) -> dict[str, Any]:
        message = ls.session.force(_pack_name(_flatten(args)), False)
        return {"message": message, **ls.session.status()}


def _flatten(args: tuple[Any, ...]) -> Any:
    # pygls passes the argument list either spread or as one list, depending on the version.
    if len(args) == 1 and isinstance(args[0], list):
        return args[0]
    return list(args)
