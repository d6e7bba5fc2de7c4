"""Semantic-version ranges as ``remora install pack:NAME@RANGE`` accepts them, and resolution.

Accepted ranges: ``*`` or empty (any), an exact version ``1.2.3`` (or ``=1.2.3``), a caret
``^1.2.3`` (same left-most non-zero part), a tilde ``~1.2.3`` (same minor), and comparators
joined by commas or spaces (``>=1.0,<2``). Missing minor/patch parts count as 0 in bounds
(``^1`` = ``>=1.0.0,<2.0.0``). Pre-releases match only a range that names one exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from remora_lsp.packs.manifest import SEMVER_RE
from remora_lsp.packs.store import semver_key
from remora_lsp.registry.errors import RegistryError

__all__ = ["VersionRange", "newest_match", "parse_range"]

_PARTIAL = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?$")
_COMPARATOR = re.compile(r"^(>=|<=|>|<|==|=)?\s*(\S+)$")
Key = tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]


def _key(version: str) -> Key:
    return semver_key(version)


def _triple(text: str, spec: str) -> tuple[int, int, int, int]:
    """``(major, minor, patch, number of parts given)`` of a full or partial version."""
    match = _PARTIAL.match(text)
    if not match:
        raise RegistryError(
            f"version range {spec!r}: {text!r} is not a version such as 1.2.3; "
            "use ^1.2, ~1.2.3, >=1.0,<2 or an exact version"
        )
    parts = [int(p) for p in match.groups() if p is not None]
    given = len(parts)
    parts += [0] * (3 - given)
    return parts[0], parts[1], parts[2], given


def _v(major: int, minor: int, patch: int) -> str:
    return f"{major}.{minor}.{patch}"


@dataclass(frozen=True)
class VersionRange:
    """A conjunction of bounds ``(op, version)``; ``exact`` set when one version is named."""

    text: str
    bounds: tuple[tuple[str, str], ...] = ()
    exact: str | None = None

    def matches(self, version: str) -> bool:
        """True if ``version`` is inside the range."""
        if not SEMVER_RE.match(version):
            return False
        if self.exact is not None:
            return version == self.exact
        if "-" in version.split("+", 1)[0]:
            return False  # pre-releases only when asked for exactly
        key = _key(version)
        for op, bound in self.bounds:
            other = _key(bound)
            ok = {
                ">=": key >= other,
                ">": key > other,
                "<=": key <= other,
                "<": key < other,
            }[op]
            if not ok:
                return False
        return True

    def __str__(self) -> str:
        return self.text or "*"


def parse_range(text: str | None) -> VersionRange:
    """Parse a range; raise RegistryError naming the range and the accepted forms."""
    spec = (text or "").strip()
    if spec in {"", "*", "latest"}:
        return VersionRange(spec)
    if SEMVER_RE.match(spec.lstrip("=")) and not spec.startswith("=="):
        return VersionRange(spec, exact=spec.lstrip("="))
    if spec[0] in "^~":
        major, minor, patch, given = _triple(spec[1:], spec)
        low = _v(major, minor, patch)
        if spec[0] == "~":
            high = _v(major + 1, 0, 0) if given == 1 else _v(major, minor + 1, 0)
        elif major > 0 or given == 1:
            high = _v(major + 1, 0, 0)
        elif minor > 0 or given == 2:
            high = _v(0, minor + 1, 0)
        else:
            high = _v(0, 0, patch + 1)
        return VersionRange(spec, ((">=", low), ("<", high)))
    bounds: list[tuple[str, str]] = []
    for part in re.split(r"[,\s]+", spec):
        if not part:
            continue
        match = _COMPARATOR.match(part)
        if not match:
            raise RegistryError(f"version range {spec!r}: cannot read {part!r}")
        op = match.group(1) or ""
        major, minor, patch, given = _triple(match.group(2), spec)
        if op in {"", "=", "=="}:
            if given == 3:
                bounds += [(">=", _v(major, minor, patch)), ("<=", _v(major, minor, patch))]
            else:  # 1.2 = 1.2.x, 1 = 1.x
                high = _v(major + 1, 0, 0) if given == 1 else _v(major, minor + 1, 0)
                bounds += [(">=", _v(major, minor, patch)), ("<", high)]
        else:
            bounds.append((op, _v(major, minor, patch)))
    if not bounds:
        return VersionRange(spec)
    return VersionRange(spec, tuple(bounds))


def newest_match(
    versions: Iterable[tuple[str, bool]], wanted: VersionRange
) -> tuple[str | None, bool]:
    """The newest non-yanked version in range, else (for an exact range) a yanked one.

    ``versions`` are ``(version, yanked)``. Returns ``(version or None, yanked)``.
    """
    items = list(versions)
    live = [v for v, yanked in items if not yanked and wanted.matches(v)]
    if live:
        return max(live, key=_key), False
    if wanted.exact is not None and any(v == wanted.exact for v, _ in items):
        return wanted.exact, True  # a pinned install of a yanked version still works
    return None, False
