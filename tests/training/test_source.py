"""resolve_source: folders, installed distributions, git URLs (a local file:// repo) and errors."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from remora_lsp.training.errors import SourceError
from remora_lsp.training.source import is_git_url, normalise_name, resolve_source
from remora_lsp.training.types import Source, to_data

TRAIN_REPO = Path(__file__).parents[1] / "data" / "train_repo"

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


@pytest.fixture
def bare_repo(tmp_path: Path) -> Path:
    """tests/data/train_repo committed into a bare repository ``tinyledger.git``."""
    work = tmp_path / "work-tree"
    shutil.copytree(TRAIN_REPO, work)
    _git("init", "-q", "-b", "main", cwd=work)
    _git("add", ".", cwd=work)
    _git("commit", "-q", "-m", "tinyledger", cwd=work)
    bare = tmp_path / "tinyledger.git"
    _git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp_path)
    return bare


def test_folder(tmp_path: Path) -> None:
    src = resolve_source(str(TRAIN_REPO), work_dir=tmp_path)
    assert src.kind == "folder"
    assert src.root == TRAIN_REPO.resolve()
    assert src.name == "tinyledger"  # the project name, not the folder name
    assert src.version == "0.3.0"
    assert src.license == "MIT"  # pyproject's license wins over the LICENSE file's first line
    assert src.license_files == ("LICENSE",)
    assert src.readme_format == "markdown"
    assert src.readme.startswith("# tinyledger")
    assert src.packages == ()
    assert Source.from_data(to_data(src)) == src


def test_folder_licence_from_file_and_rst_readme(tmp_path: Path) -> None:
    root = tmp_path / "My_Project.v2"
    root.mkdir()
    (root / "COPYING").write_text("\n  =====\n  GNU GENERAL PUBLIC LICENSE\n  Version 3\n")
    (root / "README.rst").write_text("Title\n=====\n")
    src = resolve_source(str(root), work_dir=tmp_path / "w")
    assert (src.name, src.license, src.license_files) == (
        "my-project-v2",
        "GNU GENERAL PUBLIC LICENSE",
        ("COPYING",),
    )
    assert (src.readme, src.readme_format) == ("Title\n=====\n", "rst")


def test_folder_without_readme_or_licence(tmp_path: Path) -> None:
    src = resolve_source(str(tmp_path), work_dir=tmp_path / "w")
    assert (src.license, src.license_files, src.readme, src.readme_format) == ("", (), "", "")


@pytest.mark.parametrize("name", ["click", "Jinja2"])
def test_installed_distribution(name: str, tmp_path: Path) -> None:
    src = resolve_source(name, work_dir=tmp_path)
    assert src.kind == "distribution"
    assert src.name == name.lower()
    assert src.packages == (name.lower(),)
    assert (src.root / name.lower() / "__init__.py").is_file()
    assert src.version
    assert src.license  # BSD-3-Clause expression or the classifier
    assert any("LICENSE" in f for f in src.license_files)
    assert all((src.root / f).is_file() for f in src.license_files)
    assert src.readme and src.readme_format in ("markdown", "rst")


@needs_git
def test_git_url_is_cloned_then_reused(bare_repo: Path, tmp_path: Path) -> None:
    url = bare_repo.as_uri()
    messages: list[str] = []
    src = resolve_source(url, work_dir=tmp_path / "run", progress=messages.append)
    assert src.kind == "git"
    assert src.root == (tmp_path / "run" / "source").resolve()
    assert src.name == "tinyledger"
    assert (src.root / "tinyledger" / "money.py").is_file()
    assert (src.license, src.readme_format) == ("MIT", "markdown")
    assert any("cloning" in m for m in messages)
    (src.root / "marker").write_text("kept")  # a resumed run must not clone again
    again = resolve_source(url, work_dir=tmp_path / "run", progress=messages.append)
    assert again == src
    assert (again.root / "marker").read_text() == "kept"
    assert "reusing" in messages[-1]


@needs_git
def test_local_bare_repository_path_is_cloned(bare_repo: Path, tmp_path: Path) -> None:
    src = resolve_source(str(bare_repo), work_dir=tmp_path / "run")
    assert src.kind == "git"
    assert (src.root / "tinyledger" / "ledger.py").is_file()


def test_existing_checkout_named_dot_git_is_a_folder(tmp_path: Path) -> None:
    checkout = tmp_path / "tinyledger.git"
    shutil.copytree(TRAIN_REPO, checkout)
    src = resolve_source(str(checkout), work_dir=tmp_path / "run")
    assert (src.kind, src.root) == ("folder", checkout.resolve())
    assert not (tmp_path / "run").exists()


@needs_git
def test_failed_clone_is_a_clear_error(tmp_path: Path) -> None:
    url = (tmp_path / "missing.git").as_uri()
    with pytest.raises(SourceError, match=r"cannot clone .*missing\.git: .*check the URL"):
        resolve_source(url, work_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "source").exists()
    assert not (tmp_path / "run" / "source.partial").exists()


def test_missing_git_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(SourceError, match="git is not installed"):
        resolve_source("https://example.invalid/x.git", work_dir=tmp_path)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("surely-not-an-installed-distribution-xyz", "cannot resolve SOURCE"),
        ("./no/such/folder", "no such folder"),
        ("", "SOURCE is empty"),
    ],
)
def test_unknown_spec_names_the_accepted_forms(spec: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=message) as info:
        resolve_source(spec, work_dir=tmp_path)
    for form in ("folder", "git URL", "distribution"):
        assert form in str(info.value)


def test_a_file_is_not_a_source(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="is a file, not a folder"):
        resolve_source(str(TRAIN_REPO / "README.md"), work_dir=tmp_path)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("https://github.com/pallets/click", True),
        ("git@github.com:pallets/click.git", True),
        ("ssh://git@host/x", True),
        ("file:///tmp/x", True),
        ("some/folder.git", True),
        ("click", False),
        ("python-dateutil", False),
        ("./src", False),
    ],
)
def test_is_git_url(spec: str, expected: bool) -> None:
    assert is_git_url(spec) is expected


def test_normalise_name() -> None:
    assert normalise_name("Python_Dateutil..x") == "python-dateutil-x"
