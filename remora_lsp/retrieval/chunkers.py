"""Cutting source files into indexable chunks: code, documentation sections, usage windows.

Three kinds of chunk come out of here, each a :class:`Piece` (the :class:`Chunk` stored in the
index plus the text that is embedded for it):

* **code** (tree-sitter): functions, methods and classes with their docstrings — Python,
  JavaScript and TypeScript;
* **documentation sections**: Markdown (ATX ``#`` headings) and reStructuredText (underlined
  titles), labelled with their heading path;
* **usage windows** (Python): for every name whose type the code states — an annotated
  parameter or variable, ``x = SomeClass(...)``, ``x = f(...)`` where ``f`` in the same file
  has a return annotation, ``isinstance`` narrowing — the lines where the name is used in its
  scope, labelled with the fully qualified type resolved through the file's imports and
  normalised to its public name (:mod:`remora_lsp.retrieval.exports`).

A usage window is built by :func:`usage_window`, the same function the hover calls on a live
buffer for an *untyped* name; so a training window is made to look like what the hover will
see: the name's own annotation is cut out of the text and the binding line that gives the type
away (``x = Foo()``, ``isinstance``) is left out. Its embedded text (:meth:`UsageWindow.render`)
lists the structural features that carry the type — the name, the enclosing function and class,
decorators, the parameter default, attributes read and methods called on the name, the calls
it is passed to, how it is used (awaited, iterated, subscripted…) — followed by the code lines.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tree_sitter import Node, Tree

from remora_lsp.core.languages import LanguageName, language_for, new_parser
from remora_lsp.retrieval.exports import ExportResolver, default_resolver
from remora_lsp.retrieval.index import Chunk

__all__ = [
    "BUILTIN_TYPES",
    "Binding",
    "FileAnalysis",
    "Piece",
    "UsageWindow",
    "analyse_python",
    "chunk_code",
    "chunk_docs",
    "chunk_file",
    "chunk_source",
    "module_name_for",
    "usage_window",
    "usage_windows",
]

MAX_WINDOW_LINES = 12
MAX_FEATURE_VALUES = 12
MAX_EMBED_CHARS = 1500
MAX_FILE_BYTES = 1_000_000

BUILTIN_TYPES = frozenset(
    {"str", "int", "float", "bool", "bytes", "bytearray", "complex", "list", "dict", "set",
     "frozenset", "tuple", "type", "range", "memoryview"}
)  # fmt: skip
_TYPING_TO_BUILTIN = {
    "List": "list", "Dict": "dict", "Set": "set", "FrozenSet": "frozenset", "Tuple": "tuple",
    "Type": "type", "Text": "str", "ByteString": "bytes",
}  # fmt: skip
_UNWRAP = {"Optional", "Annotated", "ClassVar", "Final", "Required", "NotRequired", "ReadOnly"}
_TYPING_MODULES = ("typing", "typing_extensions")
_SKIP_NAMES = {"self", "cls", "_"}
_SCOPES = {"function_definition", "class_definition", "lambda"}
_LITERALS = {
    "string": "str", "concatenated_string": "str", "integer": "int", "float": "float",
    "true": "bool", "false": "bool", "list": "list", "dictionary": "dict", "set": "set",
    "tuple": "tuple", "list_comprehension": "list", "dictionary_comprehension": "dict",
    "set_comprehension": "set",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Piece:
    """A chunk to index and the text to embed for it."""

    chunk: Chunk
    embed_text: str


def module_name_for(path: str | Path, root: str | Path | None = None) -> str:
    """The dotted module a file defines: ``fastapi/routing.py`` → ``fastapi.routing``,
    ``pkg/__init__.py`` → ``pkg`` (path taken relative to ``root`` when given)."""
    p = Path(path)
    if root is not None:
        with contextlib.suppress(ValueError):
            p = p.resolve().relative_to(Path(root).resolve())
    parts = list(PurePosixPath(p.as_posix()).with_suffix("").parts)
    parts = [x for x in parts if x not in ("/", "")]
    if parts and parts[-1] == "__init__":
        parts.pop()
    while parts and not all(x.isidentifier() for x in parts):
        parts.pop(0)  # "src/", "site-packages/" and other non-package folders in front
    return ".".join(parts)


def _text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", errors="replace")


def _line_text(lines: Sequence[bytes], row: int) -> str:
    return lines[row].decode("utf-8", errors="replace") if 0 <= row < len(lines) else ""


def _dotted(node: Node | None) -> str | None:
    """``a.b.c`` for an identifier/attribute chain, else None."""
    if node is None:
        return None
    if node.type == "identifier":
        return _text(node)
    if node.type == "attribute":
        head = _dotted(node.child_by_field_name("object"))
        attr = node.child_by_field_name("attribute")
        if head is None or attr is None:
            return None
        return f"{head}.{_text(attr)}"
    return None


def _docstring(body: Node | None) -> str:
    if body is None or body.named_child_count == 0:
        return ""
    first = body.named_children[0]
    if first.type == "expression_statement" and first.named_child_count:
        s = first.named_children[0]
        if s.type == "string":
            content = [c for c in s.named_children if c.type == "string_content"]
            return " ".join(_text(c) for c in content).strip()
    return ""


# -- the per-file analysis ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Binding:
    """A name bound in a scope, how, and (when the syntax says) its type label.

    ``how`` is ``param``, ``annotated``, ``constructor``, ``call``, ``literal``, ``assigned``
    or ``narrowed``; ``node`` is the identifier at the binding site; ``region`` limits the
    usages to a block (``isinstance`` narrowing), else the whole scope counts.
    """

    name: str
    how: str
    node: Node
    label: str | None
    scope: Node
    annotation: Node | None = None  # the annotation to cut out of training text
    hide_rows: tuple[int, ...] = ()  # rows that give the type away (left out of windows)
    region: Node | None = None
    default: Node | None = None


@dataclass
class FileAnalysis:
    """What one Python file binds: imports, classes, return annotations, and every scope's
    bindings. Built once per file by :func:`analyse_python`."""

    tree: Tree
    source: bytes
    module: str
    resolver: ExportResolver
    imports: dict[str, str] = field(default_factory=dict)
    classes: set[str] = field(default_factory=set)
    returns: dict[str, Node] = field(default_factory=dict)
    lines: list[bytes] = field(default_factory=list)
    line_starts: list[int] = field(default_factory=list)
    _labels: dict[str, str | None] = field(default_factory=dict)

    # -- type labels -------------------------------------------------------------------------

    def qualify(self, dotted: str) -> str | None:
        """A name as written in this file → its absolute dotted path (None if unknown)."""
        head, dot, rest = dotted.partition(".")
        if head in self.imports:
            base = self.imports[head]
            return f"{base}.{rest}" if dot else base
        if not dot and head in self.classes:
            return f"{self.module}.{head}" if self.module else head
        if not dot and head in BUILTIN_TYPES:
            return head
        return None

    def label_of_name(self, dotted: str) -> str | None:
        """The canonical type label of a class named as written here, or None."""
        if dotted in self._labels:
            return self._labels[dotted]
        label: str | None = None
        qualified = self.qualify(dotted)
        if qualified is not None:
            module, _, short = qualified.rpartition(".")
            if module in _TYPING_MODULES or module in ("collections.abc", "builtins"):
                label = _TYPING_TO_BUILTIN.get(short) or (short if short in BUILTIN_TYPES else None)
            elif "." not in qualified:
                label = qualified if qualified in BUILTIN_TYPES else None
            else:
                label = self.resolver.canonical(qualified)
                # only classes are types worth predicting: aliases (`Scope = MutableMapping[
                # str, Any]`), TypeVars and typing constructs are not
                if label.startswith(_TYPING_MODULES) or self.resolver.is_class(label) is False:
                    label = None
        self._labels[dotted] = label
        return label

    def label_of_annotation(self, node: Node | None, depth: int = 0) -> str | None:
        """The label an annotation states: ``Optional[X]``, ``X | None``, ``Annotated[X, …]``
        unwrap to X; ``list[int]`` is ``list``; ``Foo[T]`` is ``Foo``; unions of several
        types, ``Any`` and type variables give None."""
        if node is None or depth > 8:
            return None
        kind = node.type
        if kind == "type":
            return self.label_of_annotation(
                node.named_children[0] if node.named_child_count else None, depth + 1
            )
        if kind in ("identifier", "attribute"):
            dotted = _dotted(node)
            return self.label_of_name(dotted) if dotted else None
        if kind in ("generic_type", "subscript"):
            head = (
                node.child_by_field_name("value") if kind == "subscript" else node.named_children[0]
            )
            dotted = _dotted(head)
            if dotted is None:
                return None
            args = self._type_args(node)
            qualified = self.qualify(dotted) or ""
            short = qualified.rpartition(".")[2]
            if qualified.startswith(_TYPING_MODULES) and short in _UNWRAP | {"Union"}:
                options = [a for a in args if a.type != "none" and _text(a) != "None"]
                if short == "Union" and len(options) != 1:
                    return None
                return self.label_of_annotation(options[0], depth + 1) if options else None
            return self.label_of_name(dotted)
        if kind == "binary_operator" and _text(node.child_by_field_name("operator")) == "|":
            parts = [p for p in self._union_parts(node) if p.type != "none" and _text(p) != "None"]
            return self.label_of_annotation(parts[0], depth + 1) if len(parts) == 1 else None
        if kind == "string":
            content = "".join(_text(c) for c in node.named_children if c.type == "string_content")
            return self._label_of_string(content, depth)
        return None

    def _type_args(self, node: Node) -> list[Node]:
        if node.type == "subscript":
            return [c for c in node.children_by_field_name("subscript")]
        out: list[Node] = []
        for child in node.named_children[1:]:
            if child.type == "type_parameter":
                out.extend(
                    c.named_children[0] if c.type == "type" and c.named_child_count else c
                    for c in child.named_children
                )
        return out

    def _union_parts(self, node: Node) -> list[Node]:
        if node.type == "binary_operator" and _text(node.child_by_field_name("operator")) == "|":
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            return [
                *(self._union_parts(left) if left else []),
                *(self._union_parts(right) if right else []),
            ]
        return [node]

    def _label_of_string(self, content: str, depth: int) -> str | None:
        content = content.strip()
        if not content or len(content) > 200:
            return None
        tree = new_parser("python").parse(f"_: {content}\n".encode())
        stmt = tree.root_node.named_children[0] if tree.root_node.named_child_count else None
        assign = stmt.named_children[0] if stmt is not None and stmt.named_child_count else None
        annotation = assign.child_by_field_name("type") if assign is not None else None
        if annotation is None or tree.root_node.has_error:
            return None
        holder = FileAnalysis(
            tree,
            tree.root_node.text or b"",
            self.module,
            self.resolver,
            imports=self.imports,
            classes=self.classes,
            _labels=self._labels,
        )
        return holder.label_of_annotation(annotation, depth + 1)

    def label_of_value(self, value: Node | None) -> tuple[str | None, str]:
        """(label, how) for an assigned value: a literal, ``Foo(...)`` of a class, or a call of
        a function in this file with a return annotation; else (None, "assigned")."""
        if value is None:
            return None, "assigned"
        if value.type == "await" and value.named_child_count:
            value = value.named_children[0]
        if value.type in _LITERALS:
            if value.type == "string" and _text(value).lower().startswith(("b'", 'b"', "rb", "br")):
                return "bytes", "literal"
            return _LITERALS[value.type], "literal"
        if value.type == "call":
            callee = _dotted(value.child_by_field_name("function"))
            if callee is None:
                return None, "assigned"
            if callee in self.returns:
                return self.label_of_annotation(self.returns[callee]), "call"
            qualified = self.qualify(callee)
            known = self.resolver.is_class(qualified) if qualified and "." in qualified else None
            if known is False:
                return None, "assigned"
            short = callee.rpartition(".")[2]
            looks_like_class = short[:1].isupper() and not (short.isupper() and len(short) > 1)
            if known is None and not looks_like_class:
                return None, "assigned"  # functions and CONSTANT factories: not a constructor
            label = self.label_of_name(callee)
            if label is None:
                return None, "assigned"
            return label, "constructor"
        return None, "assigned"

    # -- scopes and bindings -----------------------------------------------------------------

    def scopes(self) -> Iterator[Node]:
        """The module and every function (methods and nested functions included)."""
        yield self.tree.root_node
        stack = [self.tree.root_node]
        while stack:
            node = stack.pop()
            for child in reversed(node.named_children):
                if child.type == "function_definition":
                    yield child
                stack.append(child)

    def bindings(self, scope: Node) -> list[Binding]:
        """Every binding of the scope (parameters first, then statements in order)."""
        out: list[Binding] = []
        if scope.type == "function_definition":
            out.extend(self._params(scope))
            body = scope.child_by_field_name("body")
        else:
            body = scope
        if body is not None:
            for node in _own_statements(body):
                out.extend(self._statement_bindings(node, scope))
        return out

    def _params(self, fn: Node) -> Iterator[Binding]:
        params = fn.child_by_field_name("parameters")
        if params is None:
            return
        for i, p in enumerate(params.named_children):
            name_node: Node | None
            annotation = p.child_by_field_name("type")
            default = p.child_by_field_name("value")
            if p.type == "identifier":
                name_node = p
            elif p.type in ("typed_parameter",):
                name_node = next((c for c in p.named_children if c.type == "identifier"), None)
            elif p.type in ("default_parameter", "typed_default_parameter"):
                name_node = p.child_by_field_name("name")
            else:
                continue  # *args, **kwargs, /, *
            if name_node is None or name_node.type != "identifier":
                continue
            name = _text(name_node)
            if name in _SKIP_NAMES and i == 0:
                continue
            label = self.label_of_annotation(annotation) if annotation is not None else None
            yield Binding(name, "param", name_node, label, fn, annotation, default=default)

    def _statement_bindings(self, node: Node, scope: Node) -> Iterator[Binding]:
        if node.type == "expression_statement" and node.named_child_count:
            inner = node.named_children[0]
            if inner.type == "assignment":
                yield from self._assignment(inner, scope)
        elif node.type == "if_statement":
            condition = node.child_by_field_name("condition")
            block = node.child_by_field_name("consequence")
            for name_node, type_node in _isinstance_checks(condition):
                label = self.label_of_annotation(type_node)
                rows = (node.start_point.row,)
                yield Binding(
                    _text(name_node),
                    "narrowed",
                    name_node,
                    label,
                    scope,
                    hide_rows=rows,
                    region=block,
                )
        elif node.type == "assert_statement" and node.named_child_count:
            for name_node, type_node in _isinstance_checks(node.named_children[0]):
                label = self.label_of_annotation(type_node)
                yield Binding(
                    _text(name_node),
                    "narrowed",
                    name_node,
                    label,
                    scope,
                    hide_rows=(node.start_point.row,),
                    region=node.parent,
                )

    def _assignment(self, node: Node, scope: Node) -> Iterator[Binding]:
        left = node.child_by_field_name("left")
        if left is None or left.type != "identifier":
            return
        annotation = node.child_by_field_name("type")
        value = node.child_by_field_name("right")
        name = _text(left)
        if annotation is not None:
            yield Binding(
                name, "annotated", left, self.label_of_annotation(annotation), scope, annotation
            )
            return
        label, how = self.label_of_value(value)
        hide = (node.start_point.row,) if how in ("constructor", "literal") else ()
        yield Binding(name, how, left, label, scope, None, hide)

    def binding_at(self, offset: int) -> tuple[Binding | None, Node | None, Node | None]:
        """(binding of the name at ``offset``, the identifier there, its scope). The binding
        is the one in the innermost scope that binds the name, preferring a narrowing whose
        block holds the offset."""
        node = self.tree.root_node.descendant_for_byte_range(offset, offset)
        if node is not None and node.type != "identifier" and offset > 0:
            prev = self.tree.root_node.descendant_for_byte_range(offset - 1, offset - 1)
            if prev is not None and prev.type == "identifier":
                node = prev
        if node is None or node.type != "identifier":
            return None, None, None
        parent = node.parent
        if (
            parent is not None
            and parent.type == "attribute"
            and parent.child_by_field_name("attribute") == node
        ):
            return None, node, None  # ``obj.name``: an attribute, not a variable
        name = _text(node)
        scope: Node | None = node
        while scope is not None:
            scope = scope.parent
            while scope is not None and scope.type not in ("function_definition", "module"):
                scope = scope.parent
            if scope is None:
                break
            bindings = [b for b in self.bindings(scope) if b.name == name]
            if bindings:
                narrowed = [
                    b
                    for b in bindings
                    if b.region is not None
                    and b.region.start_byte <= offset < b.region.end_byte
                    and b.node.start_byte != node.start_byte
                ]
                if narrowed and narrowed[-1].label:
                    return narrowed[-1], node, scope
                plain = [b for b in bindings if b.region is None]
                before = [b for b in plain if b.node.start_byte <= offset]
                chosen = (before or plain or bindings)[-1]
                known = [b for b in (before or plain) if b.label]
                if chosen.label is None and known and chosen.how == "assigned":
                    chosen = known[-1]
                return chosen, node, scope
        return None, node, None


def _own_statements(block: Node) -> Iterator[Node]:
    """Statements of a block and of its nested compound statements, not of nested scopes."""
    for child in block.named_children:
        if child.type in ("function_definition", "class_definition", "decorated_definition"):
            continue
        yield child
        if child.type in (
            "if_statement",
            "for_statement",
            "while_statement",
            "try_statement",
            "with_statement",
            "match_statement",
        ):
            for sub in child.named_children:
                if sub.type == "block":
                    yield from _own_statements(sub)
                elif sub.type in (
                    "elif_clause",
                    "else_clause",
                    "except_clause",
                    "finally_clause",
                    "case_clause",
                ):
                    for part in sub.named_children:
                        if part.type == "block":
                            yield from _own_statements(part)


def _isinstance_checks(condition: Node | None) -> Iterator[tuple[Node, Node]]:
    """(name, type) of ``isinstance(name, Type)`` calls in a condition (and ``and`` chains)."""
    if condition is None:
        return
    if (
        condition.type == "boolean_operator"
        and _text(condition.child_by_field_name("operator")) == "and"
    ):
        yield from _isinstance_checks(condition.child_by_field_name("left"))
        yield from _isinstance_checks(condition.child_by_field_name("right"))
        return
    if condition.type == "parenthesized_expression" and condition.named_child_count:
        yield from _isinstance_checks(condition.named_children[0])
        return
    if condition.type != "call" or _text(condition.child_by_field_name("function")) != "isinstance":
        return
    args = condition.child_by_field_name("arguments")
    if args is None or args.named_child_count != 2:
        return
    name, type_node = args.named_children
    if name.type == "identifier" and type_node.type in ("identifier", "attribute"):
        yield name, type_node


def analyse_python(
    tree: Tree,
    source: bytes,
    *,
    module: str = "",
    resolver: ExportResolver | None = None,
    is_package: bool = False,
) -> FileAnalysis:
    """Imports, top-level classes and return annotations of a parsed Python file.

    ``module`` is the file's dotted module name (relative imports resolve against it, or
    against the module itself when ``is_package``: an ``__init__.py``).
    """
    analysis = FileAnalysis(tree, source, module, resolver or default_resolver())
    analysis.lines = source.split(b"\n")
    starts = [0]
    for line in analysis.lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    analysis.line_starts = starts
    stack = list(tree.root_node.named_children)
    while stack:
        node = stack.pop()
        if node.type == "import_statement":
            for item in node.named_children:
                if item.type == "dotted_name":
                    top = _text(item).split(".", 1)[0]
                    analysis.imports.setdefault(top, top)
                elif item.type == "aliased_import":
                    target = _text(item.child_by_field_name("name"))
                    alias = _text(item.child_by_field_name("alias"))
                    analysis.imports[alias] = target
        elif node.type == "import_from_statement":
            base = _from_module(node, module, is_package)
            if base is None:
                continue
            for item in node.children_by_field_name("name"):
                if item.type == "aliased_import":
                    target = _text(item.child_by_field_name("name"))
                    alias = _text(item.child_by_field_name("alias"))
                else:
                    target = alias = _text(item)
                if target:
                    analysis.imports[alias] = f"{base}.{target}"
        elif node.type == "class_definition":
            analysis.classes.add(_text(node.child_by_field_name("name")))
        elif node.type == "function_definition":
            returns = node.child_by_field_name("return_type")
            if returns is not None:
                analysis.returns[_text(node.child_by_field_name("name"))] = returns
        elif node.type == "decorated_definition":
            definition = node.child_by_field_name("definition")
            if definition is not None:
                stack.append(definition)
        elif node.type in (
            "if_statement",
            "try_statement",
            "block",
            "else_clause",
            "except_clause",
            "finally_clause",
            "elif_clause",
        ):
            stack.extend(node.named_children)
    return analysis


def _from_module(node: Node, module: str, is_package: bool) -> str | None:
    target = node.child_by_field_name("module_name")
    if target is None:
        return None
    if target.type == "dotted_name":
        return _text(target)
    # relative: (import_prefix ...) [dotted_name]
    dots = sum(_text(c).count(".") for c in target.named_children if c.type == "import_prefix")
    name = next((_text(c) for c in target.named_children if c.type == "dotted_name"), "")
    if not module:
        return None
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    if dots - 1 > len(base):
        return None
    base = base[: len(base) - (dots - 1)]
    joined = ".".join([*base, name] if name else base)
    return joined or None


# -- usage windows ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsageWindow:
    """Where and how a name is used in its scope (see the module docstring)."""

    name: str
    scope: str
    rows: tuple[int, ...]
    code: str
    features: tuple[tuple[str, tuple[str, ...]], ...]

    def feature(self, key: str) -> tuple[str, ...]:
        return next((values for k, values in self.features if k == key), ())

    @property
    def uses(self) -> int:
        """How many usage sites were seen (attributes, calls, arguments...)."""
        return int(self.feature("count")[0]) if self.feature("count") else 0

    def render(self) -> str:
        """The text that is embedded: one ``key values`` line per feature, then the code."""
        lines = [
            f"{key} {' '.join(values)}"
            for key, values in self.features
            if key != "count" and values
        ]
        return ("\n".join(lines) + "\ncode\n" + self.code)[:MAX_EMBED_CHARS]


def _strip_span(line: bytes, row_start: int, spans: Iterable[tuple[int, int]]) -> bytes:
    out = line
    for start, end in sorted(spans, reverse=True):
        a, b = start - row_start, end - row_start
        if 0 <= a <= b <= len(out):
            out = out[:a] + out[b:]
    return out


def _usage_nodes(scope: Node, name: str, region: Node | None, binding: Node | None) -> list[Node]:
    """Identifiers ``name`` used in ``scope`` (or ``region``), outside nested scopes that
    rebind it, not counting the binding site itself."""
    root = region or scope
    stack: list[Node]
    if root.type == "function_definition" and region is None:
        # the body, and any ERROR node the parser left between the signature and the body of
        # a half-typed function; not the name, parameters or return annotation
        skip = {root.child_by_field_name(f) for f in ("name", "parameters", "return_type")}
        stack = [c for c in root.named_children if c not in skip]
    else:
        stack = [root]
    found: list[Node] = []
    while stack:
        node = stack.pop()
        if node.type == "identifier":
            if _text(node) == name and (binding is None or node.start_byte != binding.start_byte):
                parent = node.parent
                field_name = (
                    parent.type in ("attribute", "keyword_argument")
                    and parent.child_by_field_name(
                        "attribute" if parent.type == "attribute" else "name"
                    )
                    == node
                    if parent is not None
                    else False
                )
                if not field_name:  # `obj.name` and `f(name=...)` are other names
                    found.append(node)
            continue
        if node is not root and node.type in _SCOPES and _rebinds(node, name):
            continue
        stack.extend(reversed(node.named_children))
    found.sort(key=lambda n: n.start_byte)
    return found


def _rebinds(scope: Node, name: str) -> bool:
    if scope.type == "class_definition":
        return False
    params = scope.child_by_field_name("parameters")
    if params is not None:
        for p in params.named_children:
            target = (
                p
                if p.type == "identifier"
                else (
                    p.child_by_field_name("name")
                    or next((c for c in p.named_children if c.type == "identifier"), None)
                )
            )
            if target is not None and _text(target) == name:
                return True
    if scope.type == "function_definition":
        body = scope.child_by_field_name("body")
        if body is not None:
            for stmt in _own_statements(body):
                if stmt.type == "expression_statement" and stmt.named_child_count:
                    inner = stmt.named_children[0]
                    if (
                        inner.type == "assignment"
                        and _text(inner.child_by_field_name("left")) == name
                    ):
                        return True
    return False


def _callee(call: Node) -> str:
    dotted = _dotted(call.child_by_field_name("function"))
    if dotted is None:
        return ""
    parts = dotted.split(".")
    return parts[-1]


def _use_of(node: Node, name: str) -> list[tuple[str, str]]:
    """(feature, value) pairs describing one use of the identifier ``node``."""
    parent = node.parent
    if parent is None:
        return []
    out: list[tuple[str, str]] = []
    kind = parent.type
    if kind == "attribute" and parent.child_by_field_name("object") == node:
        attr = _text(parent.child_by_field_name("attribute"))
        grand = parent.parent
        if (
            grand is not None
            and grand.type == "call"
            and grand.child_by_field_name("function") == parent
        ):
            out.append(("calls", attr))
        else:
            out.append(("attrs", attr))
            if (
                grand is not None
                and grand.type == "attribute"
                and grand.child_by_field_name("object") == parent
            ):
                out.append(("attrs", f"{attr}.{_text(grand.child_by_field_name('attribute'))}"))
    elif kind == "argument_list":
        call = parent.parent
        if call is not None and call.type == "call":
            callee = _callee(call)
            position = [c.start_byte for c in parent.named_children].index(node.start_byte)
            if callee:
                out.append(("passed", f"{callee}" if position == 0 else f"{callee}#{position}"))
    elif kind == "keyword_argument" and parent.child_by_field_name("value") == node:
        args = parent.parent
        call = args.parent if args is not None else None
        if call is not None and call.type == "call":
            out.append(("passed", f"{_callee(call)}:{_text(parent.child_by_field_name('name'))}"))
    elif kind == "call" and parent.child_by_field_name("function") == node:
        out.append(("used", "called"))
    elif kind == "subscript" and parent.child_by_field_name("value") == node:
        sub = parent.child_by_field_name("subscript")
        what = {"string": "str", "integer": "int", "slice": "slice"}.get(
            sub.type if sub else "", "expr"
        )
        out.append(("used", f"subscript-{what}"))
    elif kind == "await":
        out.append(("used", "awaited"))
    elif kind in ("for_statement", "for_in_clause") and parent.child_by_field_name("right") == node:
        out.append(("used", "iterated"))
    elif kind in ("with_item", "as_pattern"):
        out.append(("used", "context"))
    elif kind in ("return_statement", "expression_list") and (
        kind == "return_statement"
        or (parent.parent is not None and parent.parent.type == "return_statement")
    ):
        out.append(("used", "returned"))
    elif kind == "comparison_operator":
        out.append(("used", "compared"))
    elif kind == "binary_operator":
        out.append(("used", f"operator{_text(parent.child_by_field_name('operator'))}"))
    elif kind in ("boolean_operator", "not_operator", "if_statement", "while_statement"):
        out.append(("used", "truth"))
    elif kind == "assignment" and parent.child_by_field_name("right") == node:
        out.append(("used", "assigned"))
    elif kind == "augmented_assignment":
        out.append(("used", "augmented"))
    elif kind in ("string", "interpolation"):
        out.append(("used", "formatted"))
    elif kind == "yield":
        out.append(("used", "yielded"))
    return out


def usage_window(
    analysis: FileAnalysis,
    scope: Node,
    name: str,
    *,
    binding: Binding | None = None,
    binding_node: Node | None = None,
) -> UsageWindow:
    """The usage window of ``name`` in ``scope`` (a function or the module).

    With a ``binding`` (training), its annotation is cut out of the text, the rows that give
    the type away are left out and usages are limited to its region. The hover passes the
    identifier under the cursor as ``binding_node`` when the name has no binding in sight.
    """
    lines = analysis.lines
    region = binding.region if binding is not None else None
    site = binding.node if binding is not None else binding_node
    uses = _usage_nodes(scope, name, region, site)
    hide = set(binding.hide_rows) if binding is not None else set()
    cut: list[tuple[int, int]] = []
    if binding is not None and binding.annotation is not None:
        cut.append((binding.node.end_byte, binding.annotation.end_byte))
    features: dict[str, list[str]] = {"name": [name]}
    fn = scope if scope.type == "function_definition" else None
    rows: list[int] = []
    if fn is not None:
        fn_name = _text(fn.child_by_field_name("name"))
        features["function"] = [fn_name]
        cls = fn.parent
        while cls is not None and cls.type not in ("class_definition", "function_definition"):
            cls = cls.parent
        if cls is not None and cls.type == "class_definition":
            features["class"] = [_text(cls.child_by_field_name("name"))]
        holder = fn.parent
        if holder is not None and holder.type == "decorated_definition":
            decorators = []
            for dec in holder.named_children:
                if dec.type == "decorator" and dec.named_child_count:
                    expr = dec.named_children[0]
                    target = expr.child_by_field_name("function") if expr.type == "call" else expr
                    dotted = _dotted(target)
                    if dotted:
                        decorators.append(dotted.rpartition(".")[2])
            features["decorators"] = decorators
        params = fn.child_by_field_name("parameters")
        if params is not None:
            others = []
            for p in params.named_children:
                target = (
                    p
                    if p.type == "identifier"
                    else (
                        p.child_by_field_name("name")
                        or next((c for c in p.named_children if c.type == "identifier"), None)
                    )
                )
                pname = _text(target) if target is not None else ""
                if pname and pname != name and pname not in _SKIP_NAMES:
                    others.append(pname)
            features["params"] = others[:MAX_FEATURE_VALUES]
            if site is not None and params.start_byte <= site.start_byte < params.end_byte:
                rows.append(site.start_point.row)  # the parameter's line of the signature
        if binding is not None and binding.how == "param":
            features["binding"] = ["param"]
        if fn.type == "function_definition" and _text(fn.children[0]) == "async":
            features.setdefault("used", []).append("in-async")
    else:
        features["function"] = ["module"]
    default = binding.default if binding is not None else None
    site_parent = site.parent if site is not None else None
    if (
        default is None
        and binding is None
        and site_parent is not None
        and site_parent.type in ("default_parameter", "typed_default_parameter")
    ):
        default = site_parent.child_by_field_name("value")
    if default is not None:
        if default.type == "call":
            features["default"] = [_callee(default) or "call"]
        else:
            features["default"] = [
                _LITERALS.get(default.type, "none" if default.type == "none" else default.type)
            ]
    if (
        binding is not None
        and binding.how in ("assigned", "call")
        and binding.node.parent is not None
    ):
        value = binding.node.parent.child_by_field_name("right")
        if value is not None and value.type == "call":
            features["from"] = [_callee(value)]
    for use in uses:
        for key, use_value in _use_of(use, name):
            features.setdefault(key, []).append(use_value)
        rows.append(use.start_point.row)
    rows = [r for r in dict.fromkeys(rows) if r not in hide]
    rows.sort()
    shown = rows[:MAX_WINDOW_LINES]
    code_lines: list[str] = []
    for row in shown:
        raw = lines[row] if row < len(lines) else b""
        if cut and row < len(analysis.line_starts):
            raw = _strip_span(raw, analysis.line_starts[row], cut)
        code_lines.append(raw.decode("utf-8", errors="replace").strip())
    ordered = [
        "name",
        "function",
        "class",
        "decorators",
        "params",
        "binding",
        "default",
        "from",
        "attrs",
        "calls",
        "passed",
        "used",
    ]
    feats = tuple(
        (key, tuple(dict.fromkeys(features[key]))[:MAX_FEATURE_VALUES])
        for key in ordered
        if features.get(key)
    )
    scope_name = features["function"][0]
    return UsageWindow(
        name=name,
        scope=scope_name,
        rows=tuple(shown),
        code="\n".join(code_lines),
        features=(*feats, ("count", (str(len(uses)),))),
    )


def usage_windows(
    analysis: FileAnalysis, path: str, *, min_uses: int = 1, include_builtins: bool = True
) -> list[Piece]:
    """A labelled usage-window chunk for every name whose type the file states."""
    pieces: list[Piece] = []
    for scope in analysis.scopes():
        for binding in analysis.bindings(scope):
            if binding.label is None or binding.name in _SKIP_NAMES:
                continue
            if not include_builtins and "." not in binding.label:
                continue
            window = usage_window(analysis, scope, binding.name, binding=binding)
            if window.uses < min_uses:
                continue
            start = window.rows[0] if window.rows else binding.node.start_point.row
            end = window.rows[-1] if window.rows else start
            chunk = Chunk(
                file=path,
                start_line=start,
                end_line=end,
                kind="usage",
                label=binding.label,
                text=window.code,
                name=binding.name,
            )
            pieces.append(Piece(chunk, window.render()))
    return pieces


# -- code chunks --------------------------------------------------------------------------------

_JS_DEFS = {
    "function_declaration": "function",
    "generator_function_declaration": "function",
    "class_declaration": "class",
    "method_definition": "method",
    "abstract_class_declaration": "class",
    "interface_declaration": "class",
}


def _python_defs(node: Node, prefix: str, in_class: bool) -> Iterator[tuple[Node, str, str]]:
    for child in node.named_children:
        target = child
        if child.type == "decorated_definition":
            target = child.child_by_field_name("definition") or child
        if target.type == "function_definition":
            name = _text(target.child_by_field_name("name"))
            qual = f"{prefix}.{name}" if prefix else name
            yield child, qual, "method" if in_class else "function"
        elif target.type == "class_definition":
            name = _text(target.child_by_field_name("name"))
            qual = f"{prefix}.{name}" if prefix else name
            yield child, qual, "class"
            body = target.child_by_field_name("body")
            if body is not None:
                yield from _python_defs(body, qual, True)
        elif child.type in ("if_statement", "try_statement", "block", "else_clause"):
            yield from _python_defs(child, prefix, in_class)


def chunk_code(
    tree: Tree, source: bytes, path: str, language: LanguageName, *, module: str = ""
) -> list[Piece]:
    """Function, method and class chunks of a parsed file, with docstrings in the embedding."""
    pieces: list[Piece] = []
    if language == "python":
        for node, qual, kind in _python_defs(tree.root_node, "", False):
            target = (
                node.child_by_field_name("definition")
                if node.type == "decorated_definition"
                else node
            )
            assert target is not None
            body = target.child_by_field_name("body")
            doc = _docstring(body)
            header = source[
                node.start_byte : body.start_byte if body is not None else node.end_byte
            ]
            signature = " ".join(header.decode("utf-8", errors="replace").split())
            if kind == "class" and body is not None:
                members = [
                    " ".join(_text(m).split("\n", 1)[0].split())
                    for m in body.named_children
                    if m.type in ("function_definition", "decorated_definition")
                ]
                detail = "\n".join(members[:20])
            else:
                detail = _text(body)[:800] if body is not None else ""
            label = f"{module}.{qual}" if module else qual
            text = _text(node)
            embed = f"{kind} {label}\n{signature}\n{doc}\n{detail}"[:MAX_EMBED_CHARS]
            chunk = Chunk(
                path,
                node.start_point.row,
                node.end_point.row,
                kind,
                label,
                text,
                qual.rpartition(".")[2],
            )
            pieces.append(Piece(chunk, embed))
        return pieces
    stack = [(tree.root_node, "")]
    while stack:
        node, prefix = stack.pop()
        for child in reversed(node.named_children):
            js_kind = _JS_DEFS.get(child.type)
            name_node = child.child_by_field_name("name")
            if js_kind is None and child.type in ("lexical_declaration", "variable_declaration"):
                for decl in child.named_children:
                    value = decl.child_by_field_name("value")
                    if value is not None and value.type in (
                        "arrow_function",
                        "function_expression",
                        "function",
                    ):
                        js_kind, name_node = "function", decl.child_by_field_name("name")
            if js_kind is not None and name_node is not None:
                name = _text(name_node)
                qual = f"{prefix}.{name}" if prefix else name
                comment = child.prev_named_sibling
                doc = _text(comment) if comment is not None and comment.type == "comment" else ""
                text = _text(child)
                signature = " ".join(text.split("{", 1)[0].split())
                embed = f"{js_kind} {qual}\n{signature}\n{doc}\n{text[:800]}"[:MAX_EMBED_CHARS]
                chunk = Chunk(
                    path,
                    child.start_point.row,
                    child.end_point.row,
                    js_kind,
                    f"{module}.{qual}" if module else qual,
                    text,
                    name,
                )
                pieces.append(Piece(chunk, embed))
                stack.append((child, qual))
            else:
                stack.append((child, prefix))
    return pieces


# -- documentation ------------------------------------------------------------------------------

_ATX = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+.:_])\1{2,}\s*$")


def chunk_docs(text: str, path: str, *, max_chars: int = 4000) -> list[Piece]:
    """One chunk per section of a Markdown or reStructuredText document (by heading)."""
    lines = text.splitlines()
    rst = path.lower().endswith((".rst", ".txt"))
    headings: list[tuple[int, int, str]] = []  # (row, level, title)
    in_fence = False
    rst_levels: list[str] = []
    for row, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        if in_fence:
            continue
        if not rst:
            match = _ATX.match(line)
            if match:
                headings.append((row, len(match.group(1)), match.group(2).strip()))
        elif row + 1 < len(lines) and line.strip() and not _RST_UNDERLINE.match(line):
            under = lines[row + 1]
            if _RST_UNDERLINE.match(under) and len(under.rstrip()) >= len(line.rstrip()):
                char = under[0]
                if char not in rst_levels:
                    rst_levels.append(char)
                headings.append((row, rst_levels.index(char) + 1, line.strip()))
    pieces: list[Piece] = []
    if not headings or headings[0][0] > 0:
        headings.insert(0, (0, 0, PurePosixPath(path).stem))
    path_titles: list[tuple[int, str]] = []
    for i, (row, level, title) in enumerate(headings):
        end = headings[i + 1][0] - 1 if i + 1 < len(headings) else len(lines) - 1
        while path_titles and path_titles[-1][0] >= level:
            path_titles.pop()
        path_titles.append((level, title))
        body = "\n".join(lines[row : end + 1]).strip()
        if len(body) < 20:
            continue
        label = " > ".join(t for _, t in path_titles)
        chunk = Chunk(path, row, end, "section", label, body[:max_chars], title)
        pieces.append(Piece(chunk, f"{label}\n{body}"[:MAX_EMBED_CHARS]))
    return pieces


# -- files --------------------------------------------------------------------------------------

DOC_SUFFIXES = (".md", ".markdown", ".rst")


def chunk_source(
    source: bytes,
    path: str,
    *,
    module: str | None = None,
    resolver: ExportResolver | None = None,
    kinds: frozenset[str] = frozenset({"code", "docs", "usage"}),
    language: LanguageName | None = None,
) -> list[Piece]:
    """Every chunk of one file's bytes (``path`` is the label stored in the chunks)."""
    if path.lower().endswith(DOC_SUFFIXES):
        if "docs" not in kinds:
            return []
        return chunk_docs(source.decode("utf-8", errors="replace"), path)
    language = language or language_for(path, None)
    if language is None or len(source) > MAX_FILE_BYTES or b"\x00" in source:
        return []
    tree = new_parser(language).parse(source)
    module = module if module is not None else module_name_for(path) if language == "python" else ""
    pieces: list[Piece] = []
    if "code" in kinds:
        pieces.extend(chunk_code(tree, source, path, language, module=module))
    if "usage" in kinds and language == "python":
        package = PurePosixPath(path).name in ("__init__.py", "__init__.pyi")
        analysis = analyse_python(
            tree, source, module=module, resolver=resolver, is_package=package
        )
        pieces.extend(usage_windows(analysis, path))
    return pieces


def chunk_file(
    path: Path,
    root: Path,
    *,
    resolver: ExportResolver | None = None,
    kinds: frozenset[str] = frozenset({"code", "docs", "usage"}),
    module_root: Path | None = None,
) -> list[Piece]:
    """Chunks of a file on disk; stored paths are relative to ``root``, module names to
    ``module_root`` (defaults to ``root``)."""
    try:
        source = path.read_bytes()
    except OSError:
        return []
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    module = module_name_for(path, module_root or root) if path.suffix in (".py", ".pyi") else None
    return chunk_source(source, rel, module=module, resolver=resolver, kinds=kinds)
