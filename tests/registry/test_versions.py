"""Version ranges and resolution, data-driven."""

from __future__ import annotations

import pytest

from remora_lsp.registry.client import parse_pack_spec
from remora_lsp.registry.errors import RegistryError
from remora_lsp.registry.versions import newest_match, parse_range

AVAILABLE = ["0.1.0", "0.1.5", "0.2.0", "1.0.0", "1.2.0", "1.2.7", "1.3.0-rc.1", "2.0.0", "2.1.0"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", "2.1.0"),
        ("*", "2.1.0"),
        ("^1", "1.2.7"),
        ("^1.2", "1.2.7"),
        ("^1.2.0", "1.2.7"),
        ("^0.1.0", "0.1.5"),
        ("^0.1", "0.1.5"),
        ("^0", "0.2.0"),
        ("~1.2.0", "1.2.7"),
        ("~1", "1.2.7"),
        ("~0.1.1", "0.1.5"),
        (">=1.0,<2", "1.2.7"),
        (">=1.0.0, <1.2.5", "1.2.0"),
        (">1.2.7", "2.1.0"),
        ("<=1.0.0", "1.0.0"),
        ("1.2.0", "1.2.0"),
        ("=1.2.0", "1.2.0"),
        ("1.3.0-rc.1", "1.3.0-rc.1"),
        ("1.2", "1.2.7"),
        ("^3", None),
        ("1.2.3", None),
    ],
)
def test_resolution(spec: str, expected: str | None) -> None:
    chosen, _ = newest_match([(v, False) for v in AVAILABLE], parse_range(spec))
    assert chosen == expected


def test_yanked_versions_are_skipped_unless_pinned() -> None:
    versions = [("1.0.0", False), ("1.1.0", True)]
    assert newest_match(versions, parse_range("^1")) == ("1.0.0", False)
    assert newest_match(versions, parse_range("1.1.0")) == ("1.1.0", True)
    assert newest_match([("1.1.0", True)], parse_range("^1")) == (None, False)


@pytest.mark.parametrize("spec", ["^x", ">=1.0,<y", "~", ">>1", "^1.2.3.4"])
def test_bad_ranges(spec: str) -> None:
    with pytest.raises(RegistryError, match="range"):
        parse_range(spec)


@pytest.mark.parametrize("spec", ["pack:../etc", "pack:Demo", "pack:", "pack:a/b@1"])
def test_bad_pack_specs(spec: str) -> None:
    with pytest.raises(RegistryError):
        parse_pack_spec(spec)
