"""The errors of the template layer, all under :class:`remora_lsp.errors.RemoraError`.

::

    RemoraError
     └── TemplateError               anything about a template, with a message for the user
          ├── UntrustedTemplateError  the pack is not trusted: its .pym was not executed
          ├── TemplateLoadError       a .pym failed to run or declared an invalid convention
          ├── ParameterError          arguments do not match the declared schema (names the param)
          ├── TemplateSecurityError   the Jinja2 sandbox or the process sandbox refused something
          ├── TemplateLimitError      a time, memory or output limit stopped the work
          └── TemplateNotFoundError   no template of that name in the catalog
"""

from __future__ import annotations

from remora_lsp.errors import RemoraError

__all__ = [
    "ParameterError",
    "TemplateError",
    "TemplateLimitError",
    "TemplateLoadError",
    "TemplateNotFoundError",
    "TemplateSecurityError",
    "UntrustedTemplateError",
]


class TemplateError(RemoraError):
    """Base class of every template error."""


class UntrustedTemplateError(TemplateError):
    """A template of an untrusted pack was asked for; its code was not executed."""


class TemplateLoadError(TemplateError):
    """A ``.pym`` raised, or what it defined does not follow the convention."""


class ParameterError(TemplateError):
    """An argument is missing, unknown or of the wrong type; the message names the parameter."""


class TemplateSecurityError(TemplateError):
    """The sandbox refused an operation (Jinja2 attribute escape, file or network access...)."""


class TemplateLimitError(TemplateError):
    """The sandboxed process ran out of CPU time, wall-clock time, memory or output space."""


class TemplateNotFoundError(TemplateError):
    """No template with that name in the catalog."""
