"""The catalog of the active packs' templates and the ``list_templates``/``render_template`` tools.

A :class:`TemplateCatalog` is built from verified packs: trusted packs' ``.pym`` files are run
once in the sandbox and their declarations kept; an untrusted pack contributes nothing and its
refusal is recorded in :attr:`TemplateCatalog.errors` (the catalog never runs its code). The tool
functions take and return JSON-able data because the orchestrator calls them as tools; expected
failures (unknown template, bad argument, sandbox refusal) come back as ``{"ok": false,
"error": ...}`` values rather than exceptions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from remora_lsp.packs.verify import VerifiedPack
from remora_lsp.templates.errors import TemplateError, TemplateNotFoundError
from remora_lsp.templates.pym import TemplateSpec, load_pack_templates
from remora_lsp.templates.render import RenderResult, render_spec
from remora_lsp.templates.sandbox import SandboxLimits

__all__ = ["TemplateCatalog"]


class TemplateCatalog:
    """Templates by qualified name (``pack/stem``), plus the errors met while loading them."""

    def __init__(
        self,
        specs: Iterable[TemplateSpec] = (),
        errors: Iterable[TemplateError] = (),
        *,
        limits: SandboxLimits | None = None,
    ) -> None:
        self._specs: dict[str, TemplateSpec] = {}
        for spec in specs:
            self._specs[spec.name] = spec
        self.errors: list[TemplateError] = list(errors)
        self.limits = limits

    @classmethod
    def from_packs(
        cls,
        packs: Iterable[VerifiedPack],
        *,
        allow_untrusted_templates: bool = False,
        limits: SandboxLimits | None = None,
    ) -> TemplateCatalog:
        """Load the templates of every pack; untrusted or failing packs only add errors."""
        specs: list[TemplateSpec] = []
        errors: list[TemplateError] = []
        for pack in packs:
            try:
                loaded, failed = load_pack_templates(
                    pack, allow_untrusted_templates=allow_untrusted_templates, limits=limits
                )
            except TemplateError as exc:
                errors.append(exc)
                continue
            specs.extend(loaded)
            errors.extend(failed)
        return cls(specs, errors, limits=limits)

    @property
    def specs(self) -> list[TemplateSpec]:
        """Every template, sorted by name."""
        return [self._specs[name] for name in sorted(self._specs)]

    def __len__(self) -> int:
        return len(self._specs)

    def get(self, name: str) -> TemplateSpec:
        """A template by qualified name, or by its short name when that is unambiguous."""
        if name in self._specs:
            return self._specs[name]
        short = [s for s in self._specs.values() if s.name.split("/", 1)[-1] == name]
        if len(short) == 1:
            return short[0]
        known = ", ".join(sorted(self._specs)) or "none (no trusted pack with templates)"
        if short:
            raise TemplateNotFoundError(
                f"template {name!r} is ambiguous: {', '.join(s.name for s in short)}"
            )
        raise TemplateNotFoundError(f"no template {name!r}; known templates: {known}")

    def render(self, name: str, args: Mapping[str, Any]) -> RenderResult:
        """Render one template; raises :class:`TemplateError` subclasses."""
        return render_spec(self.get(name), args, limits=self.limits)

    # -- tools -------------------------------------------------------------------------------

    def list_templates(self, pack: str | None = None) -> list[dict[str, Any]]:
        """Tool: every template (optionally of one pack) with its intents and parameters."""
        return [s.to_data() for s in self.specs if pack is None or s.pack == pack]

    def render_template(self, name: str, args: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Tool: render ``name`` with ``args``; ``{"ok": true, files, fills}`` or an error value."""
        try:
            result = self.render(name, args or {})
        except TemplateNotFoundError as exc:
            return {
                "ok": False,
                "kind": "not_found",
                "error": str(exc),
                "templates": sorted(self._specs),
            }
        except TemplateError as exc:
            return {"ok": False, "kind": type(exc).__name__, "error": str(exc)}
        return {"ok": True, **result.to_data()}
