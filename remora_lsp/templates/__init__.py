"""Scaffolding templates: ``.pym`` loading in a sandboxed process, rendering, catalog and router.

Pure library: nothing here imports pygls, lsprotocol or :mod:`remora_lsp.server`. See
``docs/templates.md`` for the ``.pym`` convention and the threat model.
"""

from remora_lsp.templates.catalog import TemplateCatalog
from remora_lsp.templates.errors import (
    ParameterError,
    TemplateError,
    TemplateLimitError,
    TemplateLoadError,
    TemplateNotFoundError,
    TemplateSecurityError,
    UntrustedTemplateError,
)
from remora_lsp.templates.pym import ParamSpec, TemplateSpec, load_pack_templates, load_pym_sources
from remora_lsp.templates.render import (
    FillMarker,
    RenderedFile,
    RenderResult,
    render_spec,
    validate_args,
)
from remora_lsp.templates.router import Route, TemplateRouter, extract_arguments
from remora_lsp.templates.sandbox import SandboxLimits

__all__ = [
    "FillMarker",
    "ParamSpec",
    "ParameterError",
    "RenderResult",
    "RenderedFile",
    "Route",
    "SandboxLimits",
    "TemplateCatalog",
    "TemplateError",
    "TemplateLimitError",
    "TemplateLoadError",
    "TemplateNotFoundError",
    "TemplateRouter",
    "TemplateSecurityError",
    "TemplateSpec",
    "UntrustedTemplateError",
    "extract_arguments",
    "load_pack_templates",
    "load_pym_sources",
    "render_spec",
    "validate_args",
]
