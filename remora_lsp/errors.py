"""The error tree shared by every Remora package.

Every failure Remora expects (bad config, a broken manifest, a hostile pack, a missing model) is
one of these classes, so callers can catch by kind and users get one clear line::

    RemoraError
    ├── ConfigError            a setting has a bad value (names the field, the value and the fix)
    ├── PackError              anything about a pack
    │   ├── ManifestError      manifest.yaml is missing, unparsable or invalid
    │   ├── ArchiveError       a .remorapack is corrupt or hostile (zip-slip, bomb, links, ...)
    │   ├── SignatureError     missing, malformed or untrusted signature
    │   ├── DigestError        a file's sha256 or size does not match the manifest
    │   └── StoreError         the local pack store cannot do what was asked
    ├── ParseError             a document could not be parsed at all (not: it has syntax errors)
    └── (per layer, each in its package's errors module)
        ├── inference.errors.EngineError      engine failed, model missing (`remora models fetch`)
        ├── retrieval.errors.RetrievalError   corrupt/empty index, dims mismatch, model unavailable
        ├── templates.errors.TemplateError    untrusted, sandbox security/limits, bad parameters
        └── registry.errors.RegistryError     HTTP refusals turned into one-line messages

Messages are written for the user: they say what is wrong, with which value, and what to do.
"""

from __future__ import annotations

__all__ = [
    "ArchiveError",
    "ConfigError",
    "DigestError",
    "ManifestError",
    "PackError",
    "ParseError",
    "RemoraError",
    "SignatureError",
    "StoreError",
]


class RemoraError(Exception):
    """Base class of every error Remora raises on purpose."""


class ConfigError(RemoraError):
    """A configuration value is invalid."""


class PackError(RemoraError):
    """A pack could not be built, verified, installed or loaded."""


class ManifestError(PackError):
    """A pack manifest is missing, unparsable or violates the schema."""


class ArchiveError(PackError):
    """A pack archive is corrupt or contains something that is refused."""


class SignatureError(PackError):
    """A pack signature is missing, malformed, invalid or from an untrusted key."""


class DigestError(PackError):
    """A file in a pack does not match the digest or size the manifest pins."""


class StoreError(PackError):
    """The local pack store cannot perform the requested operation."""


class ParseError(RemoraError):
    """A document could not be parsed at all."""
