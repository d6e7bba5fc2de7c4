"""Where a Python name is really defined, and what its public name is — read with ``ast``.

Type labels must be comparable wherever they come from: ``pandas.core.frame.DataFrame``,
``pd.DataFrame`` and ``from pandas import DataFrame`` are one type, and so are
``fastapi.Request`` and ``starlette.requests.Request`` (fastapi re-exports starlette's class).
:class:`ExportResolver` makes that so without importing any library (importing user libraries
inside a language server would run their code): it finds installed modules with
``importlib.machinery.PathFinder`` (which locates files without executing them), parses them
with ``ast``, and follows ``from x import y [as z]``, star imports (through ``__all__``), lazy
``__getattr__`` tables such as pydantic's ``_dynamic_imports`` and simple aliases
``Name = other`` to the module that defines the class. :meth:`ExportResolver.canonical` then
names the definition by its shortest public path inside its own top-level package
(``pandas.core.frame.DataFrame`` → ``pandas.DataFrame``), and :meth:`ExportResolver.aliases`
lists the other public paths that reach it (``fastapi.Request`` for starlette's class).
Unknown or unparsable modules are not errors: the name is returned as written.
"""

from __future__ import annotations

import ast
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.machinery import PathFinder
from pathlib import Path

__all__ = ["ExportResolver", "ModuleInfo", "default_resolver"]

MAX_MODULE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 12


@dataclass
class ModuleInfo:
    """What one module binds at its top level (including inside ``if``/``try`` blocks)."""

    name: str
    is_package: bool
    classes: set[str] = field(default_factory=set)
    functions: set[str] = field(default_factory=set)
    imports: dict[str, str] = field(default_factory=dict)  # local name → absolute qualname
    modules: dict[str, str] = field(default_factory=dict)  # local name → imported module
    stars: list[str] = field(default_factory=list)  # modules star-imported
    all: tuple[str, ...] | None = None
    lazy: dict[str, str] = field(default_factory=dict)  # name → module (``__getattr__`` tables)
    assigned: dict[str, str] = field(default_factory=dict)  # ``X = Y`` simple aliases
    variables: set[str] = field(default_factory=set)  # any other top-level assignment

    def public_names(self) -> list[str]:
        if self.all is not None:
            return list(self.all)
        names = set(self.classes) | set(self.functions) | set(self.imports) | set(self.lazy)
        return sorted(n for n in names if not n.startswith("_"))


def _absolute(module: str, level: int, current: str, is_package: bool) -> str | None:
    """Resolve a relative import of ``module`` at ``level`` dots from module ``current``."""
    if level == 0:
        return module
    parts = current.split(".")
    base = parts if is_package else parts[:-1]
    if level - 1 > len(base):
        return None
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base) or None


def _string_tuple(node: ast.AST) -> tuple[str, ...] | None:
    if isinstance(node, ast.List | ast.Tuple):
        out = []
        for elt in node.elts:
            if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                out.append(elt.value)
            else:
                return None
        return tuple(out)
    return None


def _collect(info: ModuleInfo, body: Iterable[ast.stmt]) -> None:
    for node in body:
        if isinstance(node, ast.ClassDef):
            info.classes.add(node.name)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            info.functions.add(node.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    info.modules[alias.asname] = alias.name
                else:
                    top = alias.name.split(".", 1)[0]
                    info.modules.setdefault(top, top)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module or "", node.level, info.name, info.is_package)
            if base is None:
                continue
            for alias in node.names:
                if alias.name == "*":
                    info.stars.append(base)
                else:
                    info.imports[alias.asname or alias.name] = f"{base}.{alias.name}"
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            for target in targets:
                if not isinstance(target, ast.Name):
                    continue
                info.variables.add(target.id)
                if value is None:
                    continue
                if target.id == "__all__":
                    names = _string_tuple(value)
                    if names is not None:
                        info.all = names
                elif isinstance(value, ast.Dict):
                    _collect_lazy(info, value)
                elif isinstance(value, ast.Name | ast.Attribute):
                    dotted = _dotted(value)
                    if dotted:
                        info.assigned[target.id] = dotted
        elif isinstance(node, ast.AugAssign):
            if isinstance(node.target, ast.Name) and node.target.id == "__all__":
                extra = _string_tuple(node.value)
                if extra is not None:
                    info.all = (*(info.all or ()), *extra)
        elif isinstance(node, ast.If | ast.Try):
            _collect(info, node.body)
            _collect(info, node.orelse)
            if isinstance(node, ast.Try):
                for handler in node.handlers:
                    _collect(info, handler.body)
                _collect(info, node.finalbody)


def _collect_lazy(info: ModuleInfo, table: ast.Dict) -> None:
    """``{'BaseModel': (__spec__.parent, '.main'), 'X': ('pkg.mod', 'X')}``-style tables."""
    for key, value in zip(table.keys, table.values, strict=False):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            continue
        if isinstance(value, ast.Tuple):
            strings = [
                e.value
                for e in value.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str)
            ]
            target = next((s for s in strings if s.startswith(".")), None)
            if target is not None:
                level = len(target) - len(target.lstrip("."))
                module = _absolute(target.lstrip("."), level, info.name, info.is_package)
                if module:
                    info.lazy[key.value] = module
            elif len(strings) == 2 and "." in strings[0]:
                info.lazy[key.value] = strings[0]


def _dotted(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


class ExportResolver:
    """Resolves dotted names to their defining class and public name. Thread-safe; caches
    every module it parses. ``search_paths`` are looked in before ``sys.path`` (a workspace's
    own source roots)."""

    def __init__(self, search_paths: Sequence[Path | str] = ()) -> None:
        self._paths = [str(p) for p in search_paths]
        self._modules: dict[str, ModuleInfo | None] = {}
        self._files: dict[str, tuple[Path, bool] | None] = {}
        self._exports: dict[str, dict[str, str]] = {}
        self._aliases: dict[str, dict[str, list[str]]] = {}
        self._lock = threading.RLock()

    # -- finding and reading modules -----------------------------------------------------------

    def module_file(self, module: str) -> tuple[Path, bool] | None:
        """(file, is_package) of an installed or workspace module, without importing it."""
        with self._lock:
            if module in self._files:
                return self._files[module]
            found = self._find(module)
            self._files[module] = found
            return found

    def _find(self, module: str) -> tuple[Path, bool] | None:
        parts = module.split(".")
        if not all(p.isidentifier() for p in parts):
            return None
        if len(parts) == 1:
            try:
                spec = PathFinder.find_spec(parts[0], [*self._paths, *sys.path])
            except (ImportError, ValueError, OSError):
                return None
            if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
                if spec is not None and spec.submodule_search_locations:  # namespace package
                    locations = list(spec.submodule_search_locations)
                    if locations:
                        return Path(locations[0]) / "__init__.py", True
                return None
            origin = Path(spec.origin)
            if origin.suffix not in (".py", ".pyi"):
                return None
            return origin, origin.name.startswith("__init__.")
        parent = self.module_file(".".join(parts[:-1]))
        if parent is None or not parent[1]:
            return None
        folder = parent[0].parent
        for candidate, is_pkg in (
            (folder / parts[-1] / "__init__.py", True),
            (folder / f"{parts[-1]}.py", False),
        ):
            if candidate.is_file():
                return candidate, is_pkg
        if (folder / parts[-1]).is_dir():
            return folder / parts[-1] / "__init__.py", True  # namespace sub-package
        return None

    def module_info(self, module: str) -> ModuleInfo | None:
        """The parsed top-level bindings of ``module``, or None if it cannot be found/read."""
        with self._lock:
            if module in self._modules:
                return self._modules[module]
            self._modules[module] = None  # guards against import cycles
            located = self.module_file(module)
            info = None
            if located is not None:
                info = ModuleInfo(module, located[1])
                path = located[0]
                try:
                    if path.is_file() and path.stat().st_size <= MAX_MODULE_BYTES:
                        tree = ast.parse(path.read_bytes())
                        _collect(info, tree.body)
                except (OSError, SyntaxError, ValueError, RecursionError):
                    pass
            self._modules[module] = info
            return info

    # -- resolution ----------------------------------------------------------------------------

    def split(self, qualname: str) -> tuple[str, str] | None:
        """(longest module prefix that exists, the rest) of a dotted name, or None."""
        parts = qualname.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:cut])
            if self.module_file(module) is not None:
                return module, ".".join(parts[cut:])
        return None

    def define(self, qualname: str) -> str:
        """The defining location of ``qualname`` (re-exports followed), or the name itself."""
        return self._define(qualname, 0, set())

    def _define(self, qualname: str, depth: int, seen: set[str]) -> str:
        if depth > MAX_DEPTH or qualname in seen:
            return qualname
        seen.add(qualname)
        split = self.split(qualname)
        if split is None:
            return qualname
        module, rest = split
        head, dot, tail = rest.partition(".")
        info = self.module_info(module)
        if info is None:
            return qualname
        suffix = f".{tail}" if dot else ""
        if head in info.classes or head in info.functions:
            return qualname
        if head in info.imports:
            return self._define(info.imports[head] + suffix, depth + 1, seen)
        if head in info.modules:
            return self._define(info.modules[head] + suffix, depth + 1, seen)
        if head in info.lazy:
            return self._define(f"{info.lazy[head]}.{head}{suffix}", depth + 1, seen)
        if head in info.assigned:
            target = info.assigned[head]
            first = target.split(".", 1)[0]
            if first in info.imports or first in info.modules or first in info.classes:
                resolved = self._define(f"{module}.{target}", depth + 1, seen)
                if resolved != f"{module}.{target}":
                    return resolved + suffix
        for star in info.stars:
            star_info = self.module_info(star)
            if star_info is None:
                continue
            names = star_info.public_names()
            if head in names or head in star_info.classes:
                return self._define(f"{star}.{rest}", depth + 1, seen)
        return qualname

    def is_class(self, qualname: str) -> bool | None:
        """True/False when the definition was found, None when it could not be read."""
        defined = self.define(qualname)
        split = self.split(defined)
        if split is None:
            return None
        info = self.module_info(split[0])
        if info is None or "." in split[1]:
            return None
        if split[1] in info.classes:
            return True
        if split[1] in info.functions or split[1] in info.variables:
            return False  # a function, a type alias, a TypeVar, a constant
        return None

    def exports(self, package: str) -> dict[str, str]:
        """Definition → public name for everything the top-level ``package`` exports."""
        with self._lock:
            cached = self._exports.get(package)
            if cached is not None:
                return cached
            self._exports[package] = {}  # cycle guard
            out: dict[str, str] = {}
            info = self.module_info(package)
            if info is not None:
                names = set(info.public_names())
                for star in info.stars:
                    star_info = self.module_info(star)
                    if star_info is not None:
                        names.update(star_info.public_names())
                for name in sorted(names):
                    public = f"{package}.{name}"
                    defined = self.define(public)
                    if defined == public:
                        continue
                    # prefer the class's own name over an alias (`DataFrame`, not `Alias`)
                    current = out.get(defined)
                    own = defined.rpartition(".")[2] == name
                    if current is None or (own and current.rpartition(".")[2] != name):
                        out[defined] = public
            self._exports[package] = out
            return out

    def canonical(self, qualname: str) -> str:
        """The defining class named by its public path in its own top-level package.

        ``pandas.core.frame.DataFrame`` → ``pandas.DataFrame``; ``fastapi.Request`` →
        ``starlette.requests.Request`` (defined there; starlette has no shorter public path).
        Names that cannot be resolved come back unchanged.
        """
        if "." not in qualname:
            return qualname
        defined = self.define(qualname)
        top = defined.split(".", 1)[0]
        return self.exports(top).get(defined, defined)

    def aliases(self, canonical: str, packages: Iterable[str]) -> list[str]:
        """Public names in ``packages``' top level that reach the same definition."""
        defined = self.define(canonical)
        out: list[str] = []
        for package in packages:
            for definition, public in self.exports(package).items():
                if definition == defined and public not in out:
                    out.append(public)
        return out


_DEFAULT: ExportResolver | None = None
_DEFAULT_LOCK = threading.Lock()


def default_resolver() -> ExportResolver:
    """One shared resolver over ``sys.path`` (the installed packages)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = ExportResolver()
        return _DEFAULT
