"""A hardened LSP protocol: bad input is answered or skipped, never fatal.

pygls already survives most garbage but leaves two gaps this class closes: a *request* whose
params do not fit the LSP schema got no answer (the client waited forever) — it now gets an
``InvalidParams`` error naming the method; and positions are always UTF-16, the encoding every
client must support, so one converter (``remora_lsp.core.positions``) serves them all.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol, lsp_method

__all__ = ["RemoraProtocol"]

log = logging.getLogger(__name__)


class _Skipped:
    """Stands in for a message that was already answered with an error: pygls ignores it."""

    jsonrpc = "skipped"


class RemoraProtocol(LanguageServerProtocol):
    """LanguageServerProtocol that answers malformed requests and pins UTF-16 positions."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        if (
            isinstance(data, dict)
            and "jsonrpc" in data
            and "method" in data
            and "params" not in data
        ):
            data = {**data, "params": None}  # JSON-RPC lets a message omit params
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if isinstance(data, dict) and "id" in data and "method" in data:
                method = str(data.get("method"))
                log.warning("malformed %s request %r answered with an error", method, data["id"])
                error = JsonRpcInvalidParams(f"invalid params for {method}: {exc.message or exc}")
                self._send_response(data["id"], error=error.to_response_error())
                return _Skipped()
            raise

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(
        self, params: types.InitializeParams
    ) -> Generator[Any, Any, types.InitializeResult]:
        general = params.capabilities.general
        if general is not None and general.position_encodings:
            general.position_encodings = None
        result: types.InitializeResult = yield from super().lsp_initialize(params)
        return result
