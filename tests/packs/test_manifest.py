"""Manifest schema rules and the canonical bytes a signature covers."""

from __future__ import annotations

import copy

import pytest
import yaml

from remora_lsp.errors import ManifestError
from remora_lsp.packs.manifest import Manifest, canonical_manifest_bytes, parse_manifest

from .factory import entry, good_files, manifest_data, raw_yaml

BASE = "format: 1\nname: demo\nversion: 1.0.0\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("format: 1\nname: demo\nversion: '1.0'\n", r"`version` = '1.0': must be a semantic"),
        ("format: 1\nname: demo\nversion: 1.0\n", r"`version` = 1.0: .*quoted string"),
        ("format: 1\nname: Demo\nversion: 1.0.0\n", r"`name` = 'Demo'"),
        (BASE + "extra: 1\n", r"`extra` is not part of format 1"),
        ("format: 3\nname: demo\nversion: 1.0.0\n", r"pack format 3 is newer .* upgrade Remora"),
        ("format: 0\nname: demo\nversion: 1.0.0\n", r"`format` = 0: must be 1"),
        ("name: demo\nversion: 1.0.0\n", r"`format` is required"),
        (BASE + "name: other\n", r"key 'name' appears twice"),
        (BASE + "card: {a: &x [1], b: *x}\n", r"YAML aliases"),
        (BASE + "card: !!python/object:os.system {}\n", r"not valid YAML"),
        (BASE + "library: {name: x, ecosystem: cargo}\n", r"`library.ecosystem` = 'cargo'"),
        (BASE + "library: {name: x, ecosystem: pypi, versions: '>=>1'}\n", r"version range"),
        (BASE + "triggers: {python_imports: ['os; rm']}\n", r"not a dotted Python module"),
        (BASE + "templates: [templates/a.py]\n", r"must be a .pym file"),
        (BASE + "files: {'docs/../x': {sha256: " + "a" * 64 + ", size: 1}}\n", r"relative POSIX"),
        (BASE + "files: {'run.sh': {sha256: " + "a" * 64 + ", size: 1}}\n", r"outside the pack"),
        (BASE + "files: {'docs/a': {sha256: abc, size: 1}}\n", r"sha256"),
        (BASE + "files: {'docs/a': {sha256: " + "a" * 64 + ", size: -1}}\n", r"size"),
        ("[1, 2]\n", r"must be a YAML mapping"),
        ("a: [\n", r"not valid YAML"),
        (BASE + "card: " + "[" * 5000 + "]" * 5000 + "\n", r"nested too deeply|not valid YAML"),
        (BASE + "description: " + "x" * 3000 + "\n", r"`description`"),
    ],
)
def test_invalid_manifests_name_field_value_and_rule(text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest(text)


def test_cross_field_rules_apply_once_files_are_pinned() -> None:
    files = good_files()
    data = manifest_data(files)
    Manifest.model_validate(data)
    for change, message in [
        (lambda d: d["files"].pop("templates/router.pym"), "template 'templates/router.pym'"),
        (lambda d: d["files"].pop("embeddings/chunks.jsonl"), "embeddings file"),
        (lambda d: d["files"].pop("adapters/generation/adapter_config.json"), "adapter_config"),
        (lambda d: d["adapters"].append(copy.deepcopy(d["adapters"][0])), "more than once"),
        (lambda d: d["adapters"][0].update(path="docs"), "must be under adapters/"),
        (
            lambda d: d["files"].update({"docs/readme.md": entry(b"x")}),
            "differ only in case",
        ),
    ]:
        broken = manifest_data(files)
        change(broken)
        with pytest.raises(ManifestError, match=message):
            parse_manifest(raw_yaml(broken))


def test_dev_manifest_without_files_skips_cross_checks() -> None:
    manifest = parse_manifest(BASE + "templates: [templates/a.pym]\n")
    assert manifest.files == {} and manifest.templates == ("templates/a.pym",)


def test_canonical_bytes_ignore_yaml_form_and_defaults() -> None:
    data = manifest_data(good_files())
    a = parse_manifest(raw_yaml(data))
    flow = yaml.safe_dump(data, default_flow_style=True).encode()
    b = parse_manifest(b"# a comment\n" + flow)
    assert canonical_manifest_bytes(a) == canonical_manifest_bytes(b)
    explicit = dict(data, card={}, tools=[], triggers={**data["triggers"], "js_imports": []})
    assert canonical_manifest_bytes(parse_manifest(raw_yaml(explicit))) == (
        canonical_manifest_bytes(a)
    )
    text = canonical_manifest_bytes(a)
    assert b" " not in text.replace(b"a test pack", b"") and b'"signature"' not in text
    assert text.startswith(b'{"adapters":[{"alpha":8.0,')


def test_canonical_bytes_change_with_any_pinned_digest() -> None:
    data = manifest_data(good_files())
    before = canonical_manifest_bytes(data)
    data["files"]["docs/README.md"] = entry(b"other")
    assert canonical_manifest_bytes(data) != before
