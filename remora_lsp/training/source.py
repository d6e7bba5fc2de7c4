"""Resolve SOURCE, the first argument of ``remora train``, into a :class:`Source`.

Three forms are accepted, tried in this order:

* an existing folder (not a bare git repository): read in place;
* a git URL (``https://…``, ``http://…``, ``git@host:…``, ``ssh://…``, ``file://…``, or anything
  ending in ``.git``, including a local bare repository): cloned with ``git clone --depth 1``
  into ``<work_dir>/source``; an earlier complete clone of the same URL there is reused, so a
  resumed run does not clone again;
* the name of a distribution installed in this environment (``click``, ``python-dateutil``):
  its top-level packages, read where they are installed, with the metadata's version, licence
  and long description.

Everything else is a :class:`~remora_lsp.training.errors.SourceError` that names the spec and
the accepted forms. Only the standard library and the ``git`` executable are used.
"""

from __future__ import annotations

import configparser
import contextlib
import importlib.util
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from remora_lsp.training.errors import SourceError
from remora_lsp.training.types import Source

__all__ = ["CLONE_TIMEOUT", "is_git_url", "normalise_name", "resolve_source"]

CLONE_TIMEOUT = 600.0
"""Seconds a ``git clone`` may take before it is abandoned."""

ReadmeFormat = Literal["markdown", "rst", "text", ""]

_URL_PREFIXES = ("https://", "http://", "ssh://", "file://", "git://")
_SCP_URL = re.compile(r"^[\w.-]+@[\w.-]+:[^/\\]")  # git@github.com:owner/repo
_LICENSE_NAME = re.compile(r"^(licen[cs]e|copying|notice)", re.IGNORECASE)
_README_FORMATS: tuple[tuple[str, ReadmeFormat], ...] = (
    ("readme.md", "markdown"),
    ("readme.markdown", "markdown"),
    ("readme.rst", "rst"),
    ("readme.txt", "text"),
    ("readme", "text"),
)
_ACCEPTED = (
    "an existing folder, a git URL (https://…, git@host:…, ssh://…, file://…, or ending in "
    ".git) or the name of a distribution installed in this Python environment"
)


def normalise_name(name: str) -> str:
    """A project name in PEP 503 form: lower case, runs of ``-_.`` made one ``-``."""
    return re.sub(r"[-_.]+", "-", name).strip("-").lower()


def is_git_url(spec: str) -> bool:
    """Whether ``spec`` names a git repository to clone rather than a folder or a package."""
    s = spec.strip()
    return (
        s.lower().startswith(_URL_PREFIXES)
        or bool(_SCP_URL.match(s))
        or s.rstrip("/").endswith(".git")
    )


def resolve_source(
    spec: str,
    *,
    work_dir: Path,
    progress: Callable[[str], None] | None = None,
    timeout: float = CLONE_TIMEOUT,
) -> Source:
    """Resolve ``spec`` (a git URL, a folder or an installed distribution) into a Source.

    A git URL is cloned into ``work_dir / "source"`` (reused when already cloned from the same
    URL). ``progress`` receives one-line messages about slow steps. Raises
    :class:`SourceError` when the spec is none of the accepted forms, the clone fails or git
    is missing.
    """
    say = progress or (lambda _msg: None)
    spec = spec.strip()
    if not spec:
        raise SourceError(f"SOURCE is empty; pass {_ACCEPTED}")
    path = Path(spec).expanduser()
    bare = _is_bare_repo(path)
    if path.is_dir() and not bare:
        root = path.resolve()
        return _folder_source(spec, "folder", root, root.name)
    if bare or is_git_url(spec):
        url = path.resolve().as_uri() if bare else spec  # file:// so that --depth works
        root = _clone(url, Path(work_dir) / "source", say, timeout)
        name = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].removesuffix(".git")
        return _folder_source(spec, "git", root, name or root.name)
    if path.exists():
        raise SourceError(f"SOURCE {spec!r} is a file, not a folder; pass {_ACCEPTED}")
    if "/" in spec or os.sep in spec or spec.startswith((".", "~")):
        raise SourceError(f"SOURCE {spec!r}: no such folder; pass {_ACCEPTED}")
    try:
        dist = metadata.distribution(spec)
    except (metadata.PackageNotFoundError, ValueError):
        raise SourceError(
            f"cannot resolve SOURCE {spec!r}: it is not {_ACCEPTED} "
            f"(if it is a package, pip install it first)"
        ) from None
    return _distribution_source(spec, dist)


# -- git ----------------------------------------------------------------------------------------


def _is_bare_repo(path: Path) -> bool:
    return (
        path.is_dir()
        and (path / "HEAD").is_file()
        and (path / "objects").is_dir()
        and (path / "refs").is_dir()
    )


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"  # never ask for a password: fail instead
    env["GIT_ASKPASS"] = "echo"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env


def _git(
    args: list[str], *, timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    git = shutil.which("git")
    if git is None:
        raise SourceError(
            "git is not installed (needed to clone SOURCE); install git or pass a local folder"
        )
    return subprocess.run(
        [git, *args], cwd=cwd, env=_git_env(), capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message from git"


def _clone(url: str, dest: Path, say: Callable[[str], None], timeout: float) -> Path:
    """Clone ``url`` into ``dest`` (depth 1), or reuse a complete clone of it already there."""
    if (dest / ".git").exists():
        origin = _git(["config", "--get", "remote.origin.url"], cwd=dest, timeout=30)
        if origin.returncode == 0 and origin.stdout.strip() == url:
            say(f"reusing the clone of {url} in {dest}")
            return dest.resolve()
        say(f"{dest} holds another clone; cloning {url} again")
    partial = dest.with_name(dest.name + ".partial")
    for stale in (partial, dest):
        if stale.exists():
            shutil.rmtree(stale)
    dest.parent.mkdir(parents=True, exist_ok=True)
    say(f"cloning {url} (depth 1)")
    try:
        done = _git(["clone", "--depth", "1", "--quiet", "--", url, str(partial)], timeout=timeout)
    except subprocess.TimeoutExpired:
        shutil.rmtree(partial, ignore_errors=True)
        raise SourceError(
            f"cannot clone {url}: no answer within {timeout:.0f} s; "
            "check the URL or the network, or pass a local folder"
        ) from None
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise SourceError(
            f"cannot clone {url}: {_last_line(done.stderr)}; "
            "check the URL or the network, or pass a local folder"
        )
    partial.rename(dest)  # only a finished clone is ever called "source"
    return dest.resolve()


# -- folders ------------------------------------------------------------------------------------


def _folder_source(spec: str, kind: Literal["folder", "git"], root: Path, name: str) -> Source:
    project = _project_metadata(root)
    license_files = tuple(
        sorted(p.name for p in root.iterdir() if p.is_file() and _LICENSE_NAME.match(p.name))
    )
    license = project.get("license", "")
    if not license:
        for rel in license_files:
            license = _first_meaningful_line(_read_text(root / rel))
            if license:
                break
    readme, readme_format = _folder_readme(root)
    return Source(
        spec=spec,
        kind=kind,
        root=root,
        name=normalise_name(project.get("name") or name),
        version=project.get("version", ""),
        license=license,
        license_files=license_files,
        readme=readme,
        readme_format=readme_format,
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _first_meaningful_line(text: str) -> str:
    """The first line with a letter in it, stripped (``MIT License``, ``Apache License``)."""
    for line in text.splitlines():
        line = line.strip().strip("=-*#").strip()
        if any(c.isalpha() for c in line):
            return line
    return ""


def _project_metadata(root: Path) -> dict[str, str]:
    """``name``, ``license`` and ``version`` declared by pyproject.toml or setup.cfg, when
    literal (the project's name beats the folder's: a checkout is often called ``repo``)."""
    found: dict[str, str] = {}
    with contextlib.suppress(OSError, tomllib.TOMLDecodeError):
        project: Any = tomllib.loads(_read_text(root / "pyproject.toml")).get("project", {})
        if isinstance(project, dict):
            if isinstance(project.get("name"), str) and project["name"].strip():
                found["name"] = project["name"].strip()
            if isinstance(project.get("version"), str):
                found["version"] = project["version"]
            lic = project.get("license")
            if isinstance(lic, dict) and isinstance(lic.get("text"), str):
                lic = lic["text"]
            if isinstance(lic, str):
                found["license"] = _first_meaningful_line(lic)
    if "license" not in found and (root / "setup.cfg").is_file():
        cfg = configparser.ConfigParser(interpolation=None)
        with contextlib.suppress(configparser.Error, UnicodeDecodeError, OSError):
            cfg.read(root / "setup.cfg", encoding="utf-8")
            lic = cfg.get("metadata", "license", fallback="")
            if lic:
                found["license"] = _first_meaningful_line(lic)
            name = cfg.get("metadata", "name", fallback="").strip()
            if name:
                found.setdefault("name", name)
            version = cfg.get("metadata", "version", fallback="")
            if version and not version.startswith(("attr:", "file:")):
                found.setdefault("version", version)
    return found


def _folder_readme(root: Path) -> tuple[str, ReadmeFormat]:
    by_lower = {p.name.lower(): p for p in sorted(root.iterdir()) if p.is_file()}
    for name, fmt in _README_FORMATS:
        if name in by_lower:
            return _read_text(by_lower[name]), fmt
    return "", ""


# -- installed distributions --------------------------------------------------------------------


def _distribution_source(spec: str, dist: metadata.Distribution) -> Source:
    meta: Any = dist.metadata  # an email.message.Message underneath
    root, packages = _locate_packages(Path(str(dist.locate_file(""))), _top_level_names(dist))
    readme = str(meta.get_payload() or "").strip() or str(meta.get("Description") or "").strip()
    content_type = str(meta.get("Description-Content-Type") or "")
    return Source(
        spec=spec,
        kind="distribution",
        root=root,
        name=normalise_name(str(meta["Name"] or spec)),
        version=dist.version or "",
        packages=packages,
        license=_distribution_license(meta),
        license_files=_distribution_license_files(dist),
        readme=readme,
        readme_format=_content_type_format(content_type) if readme else "",
    )


def _top_level_names(dist: metadata.Distribution) -> tuple[str, ...]:
    """Top-level import names: top_level.txt when present, else derived from the RECORD."""
    top_level = dist.read_text("top_level.txt")
    if top_level:
        names = {n.strip().replace("/", ".").split(".")[0] for n in top_level.splitlines()}
        return tuple(sorted(n for n in names if n.isidentifier()))
    files = [f.as_posix() for f in dist.files or ()]
    present = set(files)
    names = set()
    for rel in files:
        parts = rel.split("/")
        head = parts[0]
        if (
            head in ("..", "__pycache__", "bin")
            or head.endswith((".dist-info", ".egg-info", ".data"))
            or rel.startswith("/")
        ):
            continue
        if len(parts) == 1:
            if head.endswith(".py") and head[:-3].isidentifier():
                names.add(head[:-3])
        elif head.isidentifier() and f"{head}/__init__.py" in present:
            names.add(head)
    return tuple(sorted(names))


def _locate_packages(root: Path, names: Iterable[str]) -> tuple[Path, tuple[str, ...]]:
    """The folder holding the packages (site-packages, or elsewhere for an editable install)
    and the names really found there (wheels sometimes list names they do not ship)."""
    root = root.resolve()
    where: dict[str, Path] = {}
    for name in names:
        if (root / name).is_dir() or (root / f"{name}.py").is_file():
            where[name] = root
            continue
        with contextlib.suppress(ImportError, ValueError):
            spec = importlib.util.find_spec(name)
            if spec is not None and spec.origin and spec.origin not in ("built-in", "frozen"):
                origin = Path(spec.origin).resolve()
                if origin.suffix == ".py":
                    where[name] = origin.parents[1 if origin.name == "__init__.py" else 0]
    parents = set(where.values())
    if len(parents) == 1:
        root = parents.pop()
    return root, tuple(sorted(n for n, parent in where.items() if parent == root))


def _distribution_license(meta: Any) -> str:
    expression = str(meta.get("License-Expression") or "").strip()
    if expression:
        return expression
    text = _first_meaningful_line(str(meta.get("License") or ""))
    if text and text.upper() not in ("UNKNOWN", "NONE"):
        return text
    classifiers = [
        c.split("::")[-1].strip()
        for c in (meta.get_all("Classifier") or [])
        if c.startswith("License ::") and c.count("::") >= 2
    ]
    return ", ".join(classifiers)


def _distribution_license_files(dist: metadata.Distribution) -> tuple[str, ...]:
    declared = {str(v) for v in (dist.metadata.get_all("License-File") or [])}
    found = []
    for f in dist.files or ():
        parts = f.parts
        if len(parts) < 2 or not parts[0].endswith(".dist-info"):
            continue
        inner = "/".join(parts[1:])
        if parts[1] == "licenses" or inner in declared or _LICENSE_NAME.match(parts[-1]):
            found.append(f.as_posix())
    return tuple(sorted(found))


def _content_type_format(content_type: str) -> ReadmeFormat:
    kind = content_type.split(";")[0].strip().lower()
    if kind == "text/markdown":
        return "markdown"
    if kind == "text/plain":
        return "text"
    return "rst"  # the core-metadata default (text/x-rst), and x-rst itself
