"""The DocScraper: documentation in, :class:`~remora_lsp.training.types.DocSection` records out.

Documentation is cut into its semantic sections, each labelled with its heading path (page title
down to the section's own heading) and the code names it mentions, ready to be paired with code:

* Markdown (ATX and setext headings, fenced code, front matter skipped), reStructuredText
  (underline/overline titles levelled by first appearance, ``code-block`` and ``::`` literal
  blocks, ``:func:``-style roles) and plain text are parsed line by line;
* built HTML from Sphinx and MkDocs is parsed with :mod:`html.parser`, keeping only the main
  content (navigation, sidebars, headers, footers, permalinks dropped);
* :func:`scrape_folder` reads a local docs tree, :func:`find_docs` finds the docs of a
  repository, :func:`crawl_site` crawls a documentation site politely (same site and path
  prefix, robots.txt honoured, depth and page limits) and :func:`scrape_docs` picks one of these
  from a spec.

Sections longer than ``max_chars`` are split at paragraph boundaries (never inside a code fence
when avoidable) into parts titled ``"<heading> (part N)"``. Empty sections are dropped.

This is a separate parser from :func:`remora_lsp.retrieval.chunkers.chunk_docs` on purpose: that
one indexes raw line ranges of a file for search (and is fed by tree-sitter-heavy module
imports), while this one rebuilds clean section text, handles HTML and keeps code names.
"""

from __future__ import annotations

import hashlib
import keyword
import logging
import os
import re
import textwrap
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from remora_lsp.training.errors import DocsError
from remora_lsp.training.types import DocSection

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DocFormat",
    "chunk_text",
    "crawl_site",
    "find_docs",
    "format_for",
    "scrape_docs",
    "scrape_folder",
]

log = logging.getLogger(__name__)

DocFormat = Literal["markdown", "rst", "html", "text"]
Progress = Callable[[int, int], None]

_SUFFIXES: dict[str, DocFormat] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
    ".txt": "text",
    ".html": "html",
    ".htm": "html",
}
_SKIP_DIRS = {"_static", "_modules", "_images", "_build", "node_modules", "__pycache__"}
_SKIP_FILES = {"search.html", "genindex.html", "py-modindex.html", "404.html", "robots.txt"}
_DOC_DIRS = ("docs", "doc", "documentation")


def format_for(path: str | Path) -> DocFormat:
    """The format of a docs file by its suffix (unknown suffixes are plain text)."""
    return _SUFFIXES.get(PurePosixPath(str(path)).suffix.lower(), "text")


# -- code names ---------------------------------------------------------------------------------

_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_SPAN_NAME = re.compile(rf"@?({_DOTTED})\s*(?:\(.*\)|\[.*\])?\s*:?")
_CALL = re.compile(rf"(?<![\w.])(?<!def )(?<!class )({_DOTTED})\s*\(")
_IMPORT = re.compile(
    rf"^\s*import\s+({_DOTTED}(?:\s+as\s+\w+)?(?:\s*,\s*{_DOTTED}(?:\s+as\s+\w+)?)*)"
)
_FROM_IMPORT = re.compile(rf"^\s*from\s+({_DOTTED})\s+import\s+\(?([\w\s,]+)\)?")
_STRING = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'")
_COMMENT = re.compile(r"(?:^|\s)(?:#|//).*$")
_PROMPT = re.compile(r"^\s*(?:>>>|\.\.\.|\$|In \[\d+\]:)\s?")
_FILE_SUFFIXES = {
    "py", "pyi", "md", "rst", "txt", "toml", "json", "yaml", "yml", "cfg", "ini", "html", "js",
    "ts", "sh", "lock", "csv", "png", "svg", "in", "log", "zip", "whl", "gz",
}  # fmt: skip
_NOT_NAMES = {"None", "True", "False", "print", "self", "cls"}


def _ok_name(name: str) -> bool:
    first, _, rest = name.partition(".")
    last = name.rpartition(".")[2]
    return (
        bool(name)
        and not keyword.iskeyword(first)
        and name not in _NOT_NAMES
        and not (rest and last.lower() in _FILE_SUFFIXES)  # `setup.py`, `mkdocs.yml`
    )


def names_in_span(span: str) -> list[str]:
    """The name an inline code span refers to: ``app.get()`` → ``app.get``; else nothing."""
    match = _SPAN_NAME.fullmatch(span.strip())
    return [match.group(1)] if match and _ok_name(match.group(1)) else []


def names_in_code(code: str) -> list[str]:
    """Names imported or called in a code block (dotted names kept, strings and comments
    ignored): ``from fastapi import Depends`` → ``fastapi``, ``fastapi.Depends``, ``Depends``."""
    out: list[str] = []
    for raw in code.splitlines():
        line = _COMMENT.sub("", _STRING.sub('""', _PROMPT.sub("", raw)))
        match = _FROM_IMPORT.match(line)
        if match:
            module = match.group(1)
            out.append(module)
            for item in match.group(2).split(","):
                name = item.split()[0] if item.split() else ""
                if name.isidentifier():
                    out += [f"{module}.{name}", name]
            continue
        match = _IMPORT.match(line)
        if match:
            out += [part.split()[0] for part in match.group(1).split(",") if part.split()]
            continue
        out += [m.group(1) for m in _CALL.finditer(line)]
    return [n for n in out if _ok_name(n)]


# -- sections -----------------------------------------------------------------------------------


@dataclass
class _Block:
    """A paragraph (or list, table…) or a fenced code block, and the names it mentions."""

    text: str
    names: list[str] = field(default_factory=list)
    code: bool = False


@dataclass
class _Section:
    level: int
    title: str
    blocks: list[_Block] = field(default_factory=list)


def _fence(code: str, lang: str = "") -> str:
    code = code.strip("\n")
    ticks = "```"
    while ticks in code:
        ticks += "`"
    return f"{ticks}{lang}\n{code}\n{ticks}"


def _code_block(code: str, lang: str = "") -> _Block:
    code = textwrap.dedent(code).strip("\n")
    return _Block(_fence(code, lang), names_in_code(code), code=True)


def _split_block(block: _Block, max_chars: int) -> list[_Block]:
    """A block too long for one part, cut at line (code) or sentence boundaries."""
    if len(block.text) <= max_chars:
        return [block]
    if block.code:
        first, _, rest = block.text.partition("\n")
        body, _, _ = rest.rpartition("\n")
        lang = first.lstrip("`")
        units = body.split("\n")
        room = max(max_chars - len(first) * 2 - 2, 1)
    else:
        units = re.split(r"(?<=[.!?:])\s+|\n", block.text)
        room = max_chars
    pieces: list[str] = []
    current = ""
    for unit in units:
        while len(unit) > room:  # a single enormous line: hard cut
            if current:
                pieces.append(current)
                current = ""
            pieces.append(unit[:room])
            unit = unit[room:]
        joined = f"{current}\n{unit}" if current else unit
        if len(joined) > room and current:
            pieces.append(current)
            joined = unit
        current = joined
    if current:
        pieces.append(current)
    if block.code:
        return [_Block(_fence(p, lang), names_in_code(p), code=True) for p in pieces]
    return [_Block(p, [n for n in block.names if n in p]) for p in pieces]


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _finish(
    sections: list[_Section], source: str, max_chars: int, *, default_title: str = ""
) -> list[DocSection]:
    """Heading paths for the parsed sections, empty ones dropped, long ones split in parts."""
    out: list[DocSection] = []
    stack: list[tuple[int, str]] = []
    for section in sections:
        while stack and stack[-1][0] >= section.level:
            stack.pop()
        title = section.title.strip()
        if section.level and title:
            stack.append((section.level, title))
        blocks = [b for b in section.blocks if b.text.strip()]
        if not blocks:
            continue
        headings = tuple(t for _, t in stack) or ((default_title,) if default_title else ())
        parts: list[list[_Block]] = [[]]
        size = 0
        for block in (piece for b in blocks for piece in _split_block(b, max_chars)):
            if parts[-1] and size + 2 + len(block.text) > max_chars:
                parts.append([])
                size = 0
            parts[-1].append(block)
            size += len(block.text) + 2
        for number, part in enumerate(parts, 1):
            path = headings
            if len(parts) > 1 and headings:
                path = (*headings[:-1], f"{headings[-1]} (part {number})")
            text = "\n\n".join(b.text.strip("\n") for b in part)
            out.append(DocSection(source, path, text, _unique(n for b in part for n in b.names)))
    return out


# -- Markdown -----------------------------------------------------------------------------------

_MD_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})\s*([^`\s]*)[^`]*$")
_MD_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_MD_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_MD_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
_MD_BREAK = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_MD_STOP = re.compile(r"^ {0,3}(?:[-*+] |\d+[.)] |>|#|\||```|~~~|<)")


def _md_inline(text: str) -> _Block:
    return _Block(text, [n for m in _MD_SPAN.finditer(text) for n in names_in_span(m.group(2))])


def _md_heading_text(text: str) -> str:
    return _MD_SPAN.sub(lambda m: m.group(2).strip(), text).strip()


def _skip_front_matter(lines: list[str]) -> int:
    if lines and lines[0].strip() in ("---", "+++"):
        closer = ("---", "...") if lines[0].strip() == "---" else ("+++",)
        for row in range(1, len(lines)):
            if lines[row].strip() in closer:
                return row + 1
    return 0


def _parse_markdown(text: str) -> list[_Section]:
    lines = text.splitlines()
    sections = [_Section(0, "")]
    para: list[str] = []

    def flush() -> None:
        if para:
            sections[-1].blocks.append(_md_inline("\n".join(para)))
            para.clear()

    row = _skip_front_matter(lines)
    while row < len(lines):
        line = lines[row]
        fence = _MD_FENCE.match(line)
        if fence:
            flush()
            indent, marker, lang = fence.groups()
            body: list[str] = []
            row += 1
            while row < len(lines):
                close = lines[row].strip()
                if close.startswith(marker[0] * len(marker)) and not close.strip(marker[0]):
                    break
                body.append(
                    lines[row][len(indent) :] if lines[row].startswith(indent) else lines[row]
                )
                row += 1
            sections[-1].blocks.append(_code_block("\n".join(body), lang))
            row += 1
            continue
        atx = _MD_ATX.match(line)
        if atx:
            flush()
            sections.append(_Section(len(atx.group(1)), _md_heading_text(atx.group(2) or "")))
            row += 1
            continue
        if not para and _MD_BREAK.match(line):
            row += 1
            continue
        setext = _MD_SETEXT.match(line)
        if setext and para and not _MD_STOP.match(para[0]):
            title = " ".join(p.strip() for p in para)
            para.clear()
            sections.append(
                _Section(1 if setext.group(1)[0] == "=" else 2, _md_heading_text(title))
            )
            row += 1
            continue
        if not line.strip():
            flush()
        else:
            para.append(line.rstrip())
        row += 1
    flush()
    return sections


# -- reStructuredText ---------------------------------------------------------------------------

_RST_ADORN = re.compile(r"^([!-/:-@\[-`{-~])\1{2,}\s*$")
_RST_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+([\w:.-]+)::\s*(.*)$")
_RST_INLINE = re.compile(r"``(.+?)``|(?::([\w:.-]+):)?`([^`]+)`(?::([\w:.-]+):)?(__?)?")
_RST_COMMENT = re.compile(r"^\s*\.\.(?:\s|$)")
_RST_CODE_DIRECTIVES = {"code-block", "code", "sourcecode", "doctest", "testcode", "ipython"}
_RST_DROP_DIRECTIVES = {
    "toctree", "image", "figure", "include", "raw", "meta", "index", "contents", "only",
    "highlight", "literalinclude", "autosummary", "tabularcolumns", "rubric", "sectionauthor",
    "moduleauthor", "spelling:word-list", "graphviz", "plot",
}  # fmt: skip
_RST_API = re.compile(
    r"^(?:py:|auto)?(function|class|method|attribute|module|currentmodule|data|exception"
    r"|decorator|property|classmethod|staticmethod|exception|data)$"
)
_RST_CODE_ROLES = re.compile(
    r"^(?:py:)?(?:func|meth|class|mod|attr|exc|data|obj|const|any|type|deco|property)$"
)
_API_SIG_NAME = re.compile(rf"^\s*(?:async\s+|class\s+|def\s+)?({_DOTTED})")


def _rst_role_target(text: str) -> str:
    target = text.rsplit("<", 1)[1].rstrip(">").strip() if text.endswith(">") else text
    return target.lstrip("~!.").removesuffix("()").strip()


def _rst_inline(text: str) -> _Block:
    """rST inline markup → Markdown-ish text: literals and code roles as backticks."""
    names: list[str] = []

    def literal(m: re.Match[str]) -> str:
        names.extend(names_in_span(m.group(1)))
        return f"`{m.group(1)}`"

    def role(m: re.Match[str]) -> str:
        name = m.group(2) or m.group(4) or ""
        body = m.group(3)
        if m.group(5):  # `link text <url>`_
            return body.rsplit("<", 1)[0].strip() if body.endswith(">") else body
        if _RST_CODE_ROLES.match(name):
            target = _rst_role_target(body)
            if _ok_name(target):
                names.append(target)
            shown = body.rsplit("<", 1)[0].strip() if body.endswith(">") else body.lstrip("~!")
            return f"`{shown}`"
        if name in ("", "code", "samp", "file", "program", "command", "envvar"):
            names.extend(names_in_span(body) if name in ("", "code") else [])
            return f"`{body}`"
        return body.rsplit("<", 1)[0].strip() if body.endswith(">") else body  # :ref:, :doc:…

    def either(m: re.Match[str]) -> str:
        return literal(m) if m.group(1) is not None else role(m)

    return _Block(_RST_INLINE.sub(either, text), names)


def _indented_block(lines: list[str], row: int, indent: int) -> tuple[list[str], int]:
    """Lines from ``row`` indented more than ``indent`` (blank lines included); next row."""
    body: list[str] = []
    while row < len(lines):
        line = lines[row]
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        body.append(line)
        row += 1
    while body and not body[-1].strip():
        body.pop()
    return body, row


def _parse_rst(text: str) -> list[_Section]:
    lines = text.expandtabs(8).splitlines()
    sections = [_Section(0, "")]
    styles: list[tuple[str, bool]] = []
    para: list[str] = []

    def flush() -> None:
        if not para:
            return
        joined = "\n".join(para)
        para.clear()
        if joined.strip() == "::":
            return
        if joined.lstrip().startswith(">>> "):  # a doctest block
            sections[-1].blocks.append(_code_block(joined, "pycon"))
            return
        if joined.endswith("::"):
            joined = joined[:-2].rstrip() + (":" if not joined[:-2].endswith(" ") else "")
        sections[-1].blocks.append(_rst_inline(joined))

    def heading(title: str, style: tuple[str, bool]) -> None:
        flush()
        if style not in styles:
            styles.append(style)
        sections.append(_Section(styles.index(style) + 1, _rst_inline(title.strip()).text))

    row = 0
    prev_blank = True
    while row < len(lines):
        line = lines[row]
        nxt = lines[row + 1] if row + 1 < len(lines) else ""
        after = lines[row + 2] if row + 2 < len(lines) else ""
        # overlined title
        adorn = _RST_ADORN.match(line)
        if (
            adorn
            and prev_blank
            and nxt.strip()
            and _RST_ADORN.match(after)
            and after.strip() == line.strip()
        ):
            heading(nxt, (adorn.group(1), True))
            row += 3
            prev_blank = True
            continue
        if adorn and prev_blank and not nxt.strip():  # a transition
            row += 1
            continue
        under = _RST_ADORN.match(nxt)
        if (
            under
            and prev_blank
            and not para
            and line.strip()
            and not line[0].isspace()
            and len(nxt.rstrip()) >= len(line.rstrip())
        ):
            heading(line, (under.group(1), False))
            row += 2
            prev_blank = True
            continue
        directive = _RST_DIRECTIVE.match(line)
        if directive and not para:
            indent, name, argument = len(directive.group(1)), directive.group(2), directive.group(3)
            body, row = _indented_block(lines, row + 1, indent)
            options = 0
            while options < len(body) and re.match(r"^\s+:[\w-]+:", body[options]):
                options += 1
            content = textwrap.dedent("\n".join(body[options:])).strip("\n")
            lowered = name.lower()
            if lowered in _RST_CODE_DIRECTIVES:
                sections[-1].blocks.append(_code_block(content, argument.strip()))
            elif lowered in _RST_DROP_DIRECTIVES:
                pass
            elif _RST_API.match(lowered):
                api = _API_SIG_NAME.match(argument)
                if api and lowered not in ("module", "currentmodule", "automodule", "py:module"):
                    sections[-1].blocks.append(_Block(f"`{argument.strip()}`", [api.group(1)]))
                elif api:
                    sections[-1].blocks.append(_Block("", [api.group(1)]))
                if content:
                    sections[-1].blocks.extend(_parse_rst_body(content))
            elif content or argument:
                title = name.split(":")[-1].capitalize()
                lead = f"{title}: {argument}".strip() if argument else f"{title}:"
                inner = _parse_rst_body(content)
                sections[-1].blocks.append(_rst_inline(lead))
                sections[-1].blocks.extend(inner)
            prev_blank = True
            continue
        if _RST_COMMENT.match(line) and not para and not directive:  # comment/target
            _, row = _indented_block(lines, row + 1, len(line) - len(line.lstrip()))
            prev_blank = True
            continue
        if not line.strip():
            literal = bool(para) and para[-1].rstrip().endswith("::")
            indent = len(para[-1]) - len(para[-1].lstrip()) if para else 0
            flush()
            row += 1
            if literal:  # an indented literal block follows
                while row < len(lines) and not lines[row].strip():
                    row += 1
                body, row = _indented_block(lines, row, indent)
                if body:
                    sections[-1].blocks.append(_code_block("\n".join(body)))
            prev_blank = True
            continue
        para.append(line.rstrip())
        prev_blank = False
        row += 1
    flush()
    return sections


def _parse_rst_body(content: str) -> list[_Block]:
    """The blocks of directive content (no titles inside directives)."""
    return [b for s in _parse_rst(content) for b in s.blocks]


# -- HTML ---------------------------------------------------------------------------------------

_VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr",
}  # fmt: skip
_AUTO_CLOSE = {"p", "li", "dt", "dd", "tr", "td", "th", "option"}
_DROP_TAGS = {
    "nav", "header", "footer", "aside", "script", "style", "noscript", "template", "form",
    "button", "svg", "iframe", "select", "input", "label", "head", "title",
}  # fmt: skip
_DROP_CLASSES = re.compile(
    r"(?:^|\s)(?:headerlink|sphinxsidebar[\w-]*|related|footer|md-sidebar[\w-]*|md-header[\w-]*"
    r"|md-footer[\w-]*|md-nav[\w-]*|md-search[\w-]*|md-source[\w-]*|md-content__button|md-top"
    r"|md-tabs|md-skip|searchbox|search|wy-nav-side|rst-versions|sidebar|breadcrumbs?|toc"
    r"|headerlink-anchor|navigation|prev-next-area|bd-sidebar[\w-]*|bd-header[\w-]*)(?:\s|$)"
)
_BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "ul", "ol", "li", "dl", "dt", "dd", "table",
    "tr", "blockquote", "figure", "figcaption", "details", "summary", "body", "hr", "caption",
}  # fmt: skip
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_LANG_CLASS = re.compile(r"(?:language|lang|highlight)-([\w+-]+)")
_ID_NAME = re.compile(rf"^(?:[\w-]+-)?({_DOTTED})$")


@dataclass
class _Node:
    tag: str
    attrs: dict[str, str]
    children: list[_Node | str] = field(default_factory=list)

    @property
    def classes(self) -> str:
        return self.attrs.get("class", "")

    def walk(self) -> Iterator[_Node]:
        yield self
        for child in self.children:
            if isinstance(child, _Node):
                yield from child.walk()

    def text(self, *, keep: Callable[[_Node], bool] | None = None) -> str:
        parts: list[str] = []
        for child in self.children:
            if isinstance(child, str):
                parts.append(child)
            elif keep is None or keep(child):
                parts.append(child.text(keep=keep))
        return "".join(parts)


class _TreeBuilder(HTMLParser):
    """A forgiving HTML → :class:`_Node` tree (void elements, implied end tags)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _AUTO_CLOSE and self.stack[-1].tag == tag:
            self.stack.pop()
        node = _Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(_Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def _parse_html_tree(html: str) -> _Node:
    builder = _TreeBuilder()
    try:
        builder.feed(html)
        builder.close()
    except Exception as exc:  # html.parser is forgiving; keep what was built
        log.debug("html parse error: %s", exc)
    return builder.root


def _dropped(node: _Node) -> bool:
    return (
        node.tag in _DROP_TAGS
        or node.attrs.get("role") in ("navigation", "search", "banner", "contentinfo")
        or bool(_DROP_CLASSES.search(node.classes))
    )


def _main_content(root: _Node) -> _Node:
    tests: list[Callable[[_Node], bool]] = [
        lambda n: n.attrs.get("role") == "main",
        lambda n: n.tag == "article",
        lambda n: n.tag == "div" and "body" in n.classes.split(),
        lambda n: n.tag == "main",
        lambda n: n.tag == "body",
    ]
    nodes = list(root.walk())
    for test in tests:
        found = next((n for n in nodes if test(n) and not _dropped(n)), None)
        if found is not None:
            return found
    return root


class _HtmlRenderer:
    """Walks the main content, producing sections of Markdown-ish blocks."""

    def __init__(self) -> None:
        self.sections = [_Section(0, "")]
        self.inline: list[str] = []
        self.names: list[str] = []
        self.langs: list[str] = []

    def flush(self, prefix: str = "") -> None:
        text = re.sub(r"[ \t\r\n]+", " ", "".join(self.inline)).strip()
        if text:
            self.sections[-1].blocks.append(_Block(prefix + text, list(self.names)))
        elif self.names:  # names without text (anchors): keep them on the section
            self.sections[-1].blocks.append(_Block("", list(self.names)))
        self.inline.clear()
        self.names.clear()

    def render(self, node: _Node) -> None:
        for child in node.children:
            if isinstance(child, str):
                self.inline.append(child)
                continue
            if _dropped(child):
                continue
            tag = child.tag
            if tag in _HEADINGS:
                self.flush()
                title = re.sub(r"\s+", " ", child.text(keep=lambda n: not _dropped(n)))
                self.sections.append(_Section(_HEADINGS[tag], title.strip().rstrip("¶").strip()))
                self._anchor_name(child)
            elif tag == "pre":
                self.flush()
                lang = self._lang(child) or (self.langs[-1] if self.langs else "")
                self.sections[-1].blocks.append(_code_block(child.text(), lang))
            elif tag in ("code", "tt", "kbd", "samp"):
                code = re.sub(r"\s+", " ", child.text()).strip()
                if code:
                    self.inline.append(f"`{code}`" if tag != "kbd" else code)
                    if tag != "kbd":
                        self.names.extend(names_in_span(code))
            elif tag == "dt":
                self.flush()
                self._anchor_name(child)
                sig = re.sub(r"\s+", " ", child.text(keep=lambda n: not _dropped(n))).strip()
                if sig:
                    self.inline.append(f"`{sig}`")
                self.flush()
            elif tag == "a":
                href = child.attrs.get("href", "")
                if "reference internal" in child.classes and "#" in href:
                    anchor = href.rsplit("#", 1)[1]
                    match = _ID_NAME.match(anchor)
                    if match and "." in match.group(1) and _ok_name(match.group(1)):
                        self.names.append(match.group(1))
                self.render(child)
            elif tag == "br":
                self.inline.append("\n")
            elif _LANG_CLASS.search(child.classes) and tag != "code":
                self.langs.append(self._lang(child))
                self.render(child)
                self.langs.pop()
            elif tag in _BLOCK_TAGS or tag in ("td", "th"):
                if tag in ("td", "th"):
                    self.inline.append(" | ")
                    self.render(child)
                    continue
                self.flush()
                if tag == "li":
                    self.inline.append("- ")
                self.render(child)
                self.flush()
            else:
                self.render(child)

    def _anchor_name(self, node: _Node) -> None:
        ident = node.attrs.get("id", "")
        match = _ID_NAME.match(ident)
        if node.tag == "dt" and match and _ok_name(match.group(1)):
            self.names.append(match.group(1))

    @staticmethod
    def _lang(pre: _Node) -> str:
        classes = pre.classes
        for node in pre.walk():
            classes += " " + node.classes
        match = _LANG_CLASS.search(classes)
        if match and match.group(1) not in ("default", "none"):
            return match.group(1)
        return ""


def _html_title(root: _Node) -> str:
    title = next((n for n in root.walk() if n.tag == "title"), None)
    text = re.sub(r"\s+", " ", title.text()).strip() if title is not None else ""
    return re.split(r"\s+[—|–]\s+|\s+-\s+", text, maxsplit=1)[0] if text else ""


def _parse_html(html: str) -> tuple[list[_Section], str, _Node]:
    root = _parse_html_tree(html)
    renderer = _HtmlRenderer()
    main = _main_content(root)
    renderer.render(main)
    renderer.flush()
    return renderer.sections, _html_title(root), root


# -- plain text and the public entry ------------------------------------------------------------


def _parse_text(text: str, title: str) -> list[_Section]:
    section = _Section(1, title)
    for para in re.split(r"\n\s*\n", text):
        if para.strip():
            section.blocks.append(_md_inline(para.strip("\n").rstrip()))
    return [section]


def chunk_text(
    text: str, fmt: DocFormat, source: str, *, max_chars: int = 2000
) -> list[DocSection]:
    """The sections of one document (``source`` labels them: a relative path or a URL)."""
    name = PurePosixPath(source.split("?", 1)[0].rstrip("/")).name or source
    stem = name.rsplit(".", 1)[0] if "." in name else name
    if fmt == "markdown":
        return _finish(_parse_markdown(text), source, max_chars, default_title=stem)
    if fmt == "rst":
        return _finish(_parse_rst(text), source, max_chars, default_title=stem)
    if fmt == "html":
        sections, title, _ = _parse_html(text)
        return _finish(sections, source, max_chars, default_title=title or stem)
    if fmt == "text":
        return _finish(_parse_text(text, name), source, max_chars)
    raise DocsError(f"unknown docs format {fmt!r}: use markdown, rst, html or text")


def _read_text(path: Path, max_bytes: int) -> str | None:
    """A docs file's text, or None (too big, binary, undecodable, unreadable)."""
    try:
        if path.stat().st_size > max_bytes:
            log.info("skipping %s: larger than %d bytes", path, max_bytes)
            return None
        data = path.read_bytes()
    except OSError as exc:
        log.info("skipping %s: %s", path, exc)
        return None
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.info("skipping %s: not UTF-8 text", path)
        return None


def _doc_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        has_html = any(f.lower().endswith((".html", ".htm")) for f in files)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and d not in _SKIP_DIRS and not (d == "_sources" and has_html)
        )
        for name in files:
            lowered = name.lower()
            if (
                lowered in _SKIP_FILES
                or lowered.startswith("requirements")
                or PurePosixPath(lowered).suffix not in _SUFFIXES
                or name.startswith(".")
            ):
                continue
            found.append(Path(folder) / name)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def scrape_folder(
    root: Path,
    *,
    max_files: int = 5000,
    max_file_bytes: int = 2_000_000,
    progress: Progress | None = None,
    max_chars: int = 2000,
) -> list[DocSection]:
    """The sections of every docs file under ``root`` (sources relative to it, posix).

    Hidden folders, ``_static``, ``_modules``, ``_build``, Sphinx's ``_sources`` next to built
    HTML, search/index/404 pages and binary, undecodable or oversized files are skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise DocsError(f"docs folder not found: {root}")
    files = _doc_files(root)
    if len(files) > max_files:
        log.warning("%s has %d docs files: reading the first %d", root, len(files), max_files)
        files = files[:max_files]
    out: list[DocSection] = []
    for done, path in enumerate(files, 1):
        text = _read_text(path, max_file_bytes)
        if text is not None:
            rel = path.relative_to(root).as_posix()
            out.extend(chunk_text(text, format_for(path), rel, max_chars=max_chars))
        if progress is not None:
            progress(done, len(files))
    return out


def find_docs(root: Path) -> list[Path]:
    """The documentation of a repository: its root README files, and its docs folder — the
    built HTML (``docs/_build/html``, ``site/``) when there is one, else the sources."""
    root = Path(root)
    out = (
        sorted(
            p
            for p in root.iterdir()
            if p.name.lower().startswith("readme")
            and p.is_file()
            and (p.suffix.lower() in _SUFFIXES or p.name.lower() == "readme")
        )
        if root.is_dir()
        else []
    )
    built = [
        path
        for path in (
            *(root / d / "_build" / "html" for d in _DOC_DIRS),
            *(root / d / "build" / "html" for d in _DOC_DIRS),
            root / "site",
        )
        if (path / "index.html").is_file()
    ]
    if built:
        return out + built
    return out + [root / d for d in _DOC_DIRS if (root / d).is_dir()]


# -- crawling -----------------------------------------------------------------------------------

_NOT_HTML = re.compile(
    r"\.(?:png|jpe?g|gif|svg|webp|ico|bmp|pdf|zip|gz|tgz|bz2|xz|whl|egg|tar|css|js|mjs|map"
    r"|json|xml|txt|woff2?|ttf|eot|otf|mp4|webm|mp3|wav|ogg|inv|py|ipynb|csv|exe|dmg)$",
    re.IGNORECASE,
)
_MAX_PAGE_BYTES = 5_000_000
_MAX_REDIRECTS = 10


def _normalise(url: str) -> str:
    """Fragment stripped, scheme and host lowercased, default port dropped, query sorted."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = (
        host
        if port is None or (scheme, port) in (("http", 80), ("https", 443))
        else f"{host}:{port}"
    )
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


@dataclass(frozen=True)
class _Scope:
    scheme: str
    netloc: str
    prefix: str

    @classmethod
    def of(cls, url: str) -> _Scope:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        return cls(parts.scheme, parts.netloc, parts.path.rsplit("/", 1)[0] + "/")

    def __contains__(self, url: object) -> bool:
        from urllib.parse import urlsplit

        parts = urlsplit(str(url))
        return (
            parts.scheme == self.scheme
            and parts.netloc == self.netloc
            and (parts.path or "/").startswith(self.prefix)
        )


def _links(root: _Node, base: str) -> list[str]:
    from urllib.parse import urljoin

    out: list[str] = []
    base_tag = next((n for n in root.walk() if n.tag == "base" and n.attrs.get("href")), None)
    if base_tag is not None:
        base = urljoin(base, base_tag.attrs["href"])
    for node in root.walk():
        href = node.attrs.get("href", "").strip() if node.tag in ("a", "area") else ""
        if not href or href.startswith(("#", "mailto:", "javascript:", "tel:", "data:")):
            continue
        if "nofollow" in node.attrs.get("rel", "").split():
            continue
        out.append(_normalise(urljoin(base, href)))
    return out


def _meta_robots(root: _Node) -> set[str]:
    values: set[str] = set()
    for node in root.walk():
        if node.tag == "meta" and node.attrs.get("name", "").lower() == "robots":
            values |= {v.strip().lower() for v in node.attrs.get("content", "").split(",")}
    return values


class _Robots:
    """robots.txt per RFC 9309: 4xx allows all, 5xx or unreachable disallows all."""

    def __init__(self, client: httpx.Client, url: str, user_agent: str, timeout: float) -> None:
        from urllib.parse import urlsplit, urlunsplit
        from urllib.robotparser import RobotFileParser

        import httpx

        parts = urlsplit(url)
        robots_url = urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", ""))
        self.user_agent = user_agent
        self.parser = RobotFileParser(robots_url)
        self.allow_all = self.disallow_all = self.unreachable = False
        self.error = ""
        try:
            response = client.get(
                robots_url,
                headers={"User-Agent": user_agent},
                timeout=timeout,
                follow_redirects=True,
            )
        except httpx.HTTPError as exc:
            self.disallow_all = self.unreachable = True
            self.error = f"{type(exc).__name__}: {exc}"
            return
        if response.status_code >= 500:
            self.disallow_all, self.error = True, f"HTTP {response.status_code}"
        elif response.status_code >= 400:
            self.allow_all = True
        elif response.status_code >= 300:
            self.allow_all = True  # too many redirects: treat as unavailable (4xx)
        else:
            self.parser.parse(response.text.splitlines())

    def allowed(self, url: str) -> bool:
        if self.allow_all or self.disallow_all:
            return self.allow_all
        return self.parser.can_fetch(self.user_agent, url)

    def delay(self) -> float:
        if self.allow_all or self.disallow_all:
            return 0.0
        value = self.parser.crawl_delay(self.user_agent)
        return min(float(value), 30.0) if value is not None else 0.0


def _fetch(
    client: httpx.Client,
    url: str,
    *,
    user_agent: str,
    timeout: float,
    stay: Callable[[str], bool],
    seen: set[str] | None = None,
) -> tuple[str, str | None, str]:
    """GET a page following redirects only where ``stay`` allows: (final url, html or None,
    why not). A redirect to a page in ``seen`` is not followed. Raises httpx.HTTPError on
    transport errors."""
    from urllib.parse import urljoin

    for _ in range(_MAX_REDIRECTS):
        with client.stream(
            "GET",
            url,
            headers={"User-Agent": user_agent, "Accept": "text/html,application/xhtml+xml"},
            timeout=timeout,
            follow_redirects=False,
        ) as response:
            if response.is_redirect and "location" in response.headers:
                target = _normalise(urljoin(url, response.headers["location"]))
                if not stay(target):
                    return url, None, f"redirect off site to {target}"
                if seen is not None and target in seen:
                    return url, None, f"redirect to {target}, already crawled"
                url = target
                continue
            if response.status_code >= 400:
                return url, None, f"HTTP {response.status_code}"
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind not in ("text/html", "application/xhtml+xml", ""):
                return url, None, f"not HTML ({kind})"
            body = b""
            for piece in response.iter_bytes():
                body += piece
                if len(body) > _MAX_PAGE_BYTES:
                    return url, None, "page too large"
            if not kind and b"<html" not in body[:2048].lower():
                return url, None, "not HTML"
            encoding = response.encoding or "utf-8"
            return url, body.decode(encoding, errors="replace"), ""
    return url, None, "too many redirects"


def _stay(scope: _Scope | None, robots: _Robots) -> Callable[[str], bool]:
    """Where a redirect may go: anywhere allowed (the start URL: ``scope`` None) or in scope."""

    def allowed(url: str) -> bool:
        inside = url.startswith(("http://", "https://")) if scope is None else url in scope
        return inside and robots.allowed(url)

    return allowed


def crawl_site(
    url: str,
    *,
    max_pages: int = 200,
    max_depth: int = 4,
    timeout: float = 10.0,
    delay: float = 0.0,
    user_agent: str = "remora-train",
    client: httpx.Client | None = None,
    progress: Progress | None = None,
    max_chars: int = 2000,
) -> list[DocSection]:
    """The sections of a documentation site, crawled breadth-first from ``url``.

    Only pages on the same scheme, host and port and under the start URL's folder are
    followed, at most ``max_depth`` links away and ``max_pages`` pages in all; robots.txt is
    honoured (a 5xx or unreachable robots.txt means nothing is fetched). Page errors are logged
    and skipped; an unreachable start URL raises :class:`DocsError`.
    """
    import httpx

    own = client is None
    http = client if client is not None else httpx.Client(timeout=timeout)
    try:
        return _crawl(
            http, url, max_pages, max_depth, timeout, delay, user_agent, progress, max_chars
        )
    finally:
        if own:
            http.close()


def _crawl(
    client: httpx.Client,
    url: str,
    max_pages: int,
    max_depth: int,
    timeout: float,
    delay: float,
    user_agent: str,
    progress: Progress | None,
    max_chars: int,
) -> list[DocSection]:
    import httpx

    start = _normalise(url)
    if not start.startswith(("http://", "https://")):
        raise DocsError(f"not an http(s) URL: {url}")
    unreachable = (
        "cannot fetch URL: {url} ({why}); check the URL or the network, or pass a local docs folder"
    )
    robots = _Robots(client, start, user_agent, timeout)
    if robots.unreachable:
        raise DocsError(unreachable.format(url=url, why=robots.error))
    if robots.disallow_all:
        log.warning("robots.txt of %s unavailable (%s): not crawling", start, robots.error)
        return []
    wait = max(delay, robots.delay())
    scope = _Scope.of(start)
    seen = {start}
    queue: deque[tuple[str, int]] = deque([(start, 0)])
    sections: list[DocSection] = []
    pages = 0
    first = True
    digests: set[str] = set()  # the same page under two URLs (`docs/`, `docs/index.html`)
    while queue and pages < max_pages:
        page_url, depth = queue.popleft()
        if not robots.allowed(page_url):
            log.info("robots.txt disallows %s", page_url)
            if first:
                log.warning("robots.txt disallows the start URL %s: not crawling", page_url)
            first = False
            continue
        if not first and wait:
            time.sleep(wait)
        try:
            final, html, why = _fetch(
                client,
                page_url,
                user_agent=user_agent,
                timeout=timeout,
                stay=_stay(None if first else scope, robots),
                seen=seen,
            )
        except httpx.HTTPError as exc:
            if first:
                raise DocsError(unreachable.format(url=url, why=exc)) from exc
            log.warning("skipping %s: %s", page_url, exc)
            continue
        if first:
            if html is None:
                raise DocsError(unreachable.format(url=url, why=why))
            scope = _Scope.of(final)
            first = False
        if html is None:
            log.info("skipping %s: %s", page_url, why)
            continue
        if final != page_url:
            if final in seen:
                continue
            seen.add(final)
        digest = hashlib.sha1(html.encode("utf-8", "replace")).hexdigest()
        if digest in digests:
            log.info("skipping %s: same page as one already crawled", final)
            continue
        digests.add(digest)
        pages += 1
        root = _parse_html_tree(html)
        meta = _meta_robots(root)
        if "noindex" not in meta and "none" not in meta:
            sections.extend(chunk_text(html, "html", final, max_chars=max_chars))
        if depth < max_depth and not meta & {"nofollow", "none"}:
            for link in _links(root, final):
                if link in seen or link not in scope or _NOT_HTML.search(link.split("?")[0]):
                    continue
                seen.add(link)
                queue.append((link, depth + 1))
        if progress is not None:
            progress(pages, min(max_pages, pages + len(queue)))
    return sections


def scrape_docs(spec: str | Path, **kwargs: Any) -> list[DocSection]:
    """Documentation from a spec: an http(s) URL is crawled, a file chunked, a folder
    scraped. Keyword arguments of :func:`crawl_site` and :func:`scrape_folder` may be mixed:
    each gets the ones it takes (``max_chars`` also goes to a single file)."""
    import inspect

    known = {
        *inspect.signature(crawl_site).parameters,
        *inspect.signature(scrape_folder).parameters,
    }
    unknown = set(kwargs) - known
    if unknown:
        raise TypeError(f"scrape_docs() got unexpected keyword arguments: {sorted(unknown)}")

    def accepted(target: Callable[..., Any]) -> dict[str, Any]:
        names = inspect.signature(target).parameters
        return {k: v for k, v in kwargs.items() if k in names}

    text = str(spec)
    if isinstance(spec, str) and text.lower().startswith(("http://", "https://")):
        return crawl_site(text, **accepted(crawl_site))
    path = Path(spec)
    if path.is_file():
        content = _read_text(path, kwargs.get("max_file_bytes", 2_000_000))
        if content is None:
            raise DocsError(f"cannot read docs file {path}: binary, not UTF-8 or too large")
        return chunk_text(
            content, format_for(path), path.name, max_chars=kwargs.get("max_chars", 2000)
        )
    if path.is_dir():
        return scrape_folder(path, **accepted(scrape_folder))
    raise DocsError(
        f"docs not found: {text!r} is neither an http(s) URL nor an existing file or folder"
    )
