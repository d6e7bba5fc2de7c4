"""The DocScraper: Markdown, rST, built HTML and text into sections; folders; a polite crawl."""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from remora_lsp.training.docscraper import (
    chunk_text,
    crawl_site,
    find_docs,
    format_for,
    scrape_docs,
    scrape_folder,
)
from remora_lsp.training.errors import DocsError
from remora_lsp.training.types import DocSection

DATA = Path(__file__).parent.parent / "data" / "train_docs"
SITE = DATA / "site"


def sections_of(name: str, **kwargs: Any) -> list[DocSection]:
    path = DATA / name
    return chunk_text(path.read_text(), format_for(path), name, **kwargs)


def by_title(sections: list[DocSection]) -> dict[tuple[str, ...], DocSection]:
    return {s.headings: s for s in sections}


# -- Markdown -----------------------------------------------------------------------------------


def test_markdown_heading_paths_fences_and_setext() -> None:
    sections = sections_of("guide.md")
    assert [s.headings for s in sections] == [
        ("User Guide",),
        ("User Guide", "First Steps"),
        ("User Guide", "First Steps", "Path Parameters"),
        ("User Guide", "Query Parameters"),
        ("Advanced Topics",),
        ("Advanced Topics", "Deep heading"),
    ]
    assert all(s.source == "guide.md" for s in sections)
    first = by_title(sections)[("User Guide",)]
    assert "title: User Guide" not in first.text  # front matter skipped
    steps = by_title(sections)[("User Guide", "First Steps")]
    assert "# this is a comment, not a heading" in steps.text
    assert "```python\n" in steps.text and steps.text.endswith("```")
    for name in ("app.get", "fastapi", "fastapi.Depends", "Depends", "FastAPI", "fastapi.routing"):
        assert name in steps.code_names
    assert "read_items" not in steps.code_names  # defined, not called
    assert "not_a_name" not in steps.code_names  # inside a string
    path_params = by_title(sections)[("User Guide", "First Steps", "Path Parameters")]
    assert "## still code, not a heading" in path_params.text
    assert path_params.code_names == ("Path",)


def test_markdown_inline_code_names_skip_commands() -> None:
    (first,) = chunk_text(
        "# T\n\nUse `pip install x`, `Router.add()` and `None`.\n", "markdown", "t.md"
    )
    assert first.code_names == ("Router.add",)


def test_text_before_the_first_heading_is_titled_by_the_file() -> None:
    sections = chunk_text("Intro text.\n\n# Title\n\nBody.\n", "markdown", "docs/intro.md")
    assert [s.headings for s in sections] == [("intro",), ("Title",)]


# -- reStructuredText ---------------------------------------------------------------------------


def test_rst_levels_roles_and_literal_blocks() -> None:
    sections = sections_of("api.rst")
    assert [s.headings for s in sections] == [
        ("API Reference",),
        ("API Reference", "Routing"),
        ("API Reference", "Routing", "Responses"),
        ("API Reference", "Errors"),
    ]
    top, routing, responses, errors = sections
    assert top.code_names == (
        "fastapi_lite",
        "fastapi_lite.routing.get",
        "fastapi_lite.App",
        "Depends",
    )
    assert ":func:" not in top.text and "`fastapi_lite.routing.get`" in top.text
    assert "See the guide." in top.text and ".. _api:" not in top.text
    assert '```python\nfrom fastapi_lite import App\n\napp = App()\napp.route("/")\n```' in (
        routing.text
    )
    assert ":linenos:" not in routing.text
    assert "app.route" in routing.code_names and "fastapi_lite.App" in routing.code_names
    assert "A literal block follows:\n\n```\nresponse = make_response(data)" in responses.text
    assert "make_response" in responses.code_names
    assert "fastapi_lite.App.cache" in responses.code_names  # :meth:`title <target>`
    assert "fastapi_lite.json_response" in responses.code_names  # .. function::
    assert "Responses are cached by `App.cache`." in responses.text
    assert errors.code_names == ("fastapi_lite.HTTPError",)


# -- HTML ---------------------------------------------------------------------------------------


def test_sphinx_html_keeps_main_content_only() -> None:
    sections = sections_of("sphinx_page.html")
    assert [s.headings for s in sections] == [
        ("Routing",),
        ("Routing", "Declaring routes"),
        ("Routing", "Mounting"),
    ]
    text = "\n".join(s.with_context() for s in sections)
    for absent in ("RELATED NAV", "SIDEBAR TITLE", "FOOTER TEXT", "¶", "doctools", "color:"):
        assert absent not in text
    declaring = sections[1]
    assert '```python\nfrom fastapi_lite import App\napp = App()\napp.route("/")\n```' in (
        declaring.text
    )
    assert "`App.route(path)`" in declaring.text  # the dt signature, permalink dropped
    assert "fastapi_lite.App.route" in declaring.code_names  # dt id
    assert "fastapi_lite.App.route" in sections[0].code_names  # internal API reference
    assert sections[0].text == "Routes are declared with `App.route()`."
    assert sections[2].code_names == ("app.mount",)


def test_mkdocs_material_html() -> None:
    sections = sections_of("mkdocs_page.html")
    assert [s.headings for s in sections] == [
        ("Dependencies",),
        ("Dependencies", "First steps"),
        ("Dependencies", "First steps", "Sub-dependencies"),
        ("Dependencies", "Classes as dependencies"),  # "Empty section" dropped
    ]
    text = "\n".join(s.with_context() for s in sections)
    for absent in ("HEADER NAV", "TABS NAV", "SIDEBAR", "FOOTER", "EDIT BUTTON", "¶", "bundle"):
        assert absent not in text
    steps = sections[1]
    assert steps.text.startswith("```python\nfrom fastapi import Depends\n")
    assert steps.code_names == ("fastapi", "fastapi.Depends", "Depends", "app.get")
    assert sections[2].text == (
        "- Dependencies can depend on `other_dependency()`.\n\n- They are cached per request."
    )


def test_html_without_headings_is_titled_by_the_page_title() -> None:
    html = "<html><head><title>Intro | Docs</title></head><body><p>Hello.</p></body></html>"
    assert chunk_text(html, "html", "intro.html") == [
        DocSection("intro.html", ("Intro",), "Hello.", ())
    ]


# -- text and long sections ---------------------------------------------------------------------


def test_plain_text_is_one_section_titled_by_file_name() -> None:
    (section,) = sections_of("notes.txt")
    assert section.headings == ("notes.txt",)
    assert section.text == "Release notes for fastapi-lite.\n\nVersion 1.0 adds `App.route`."
    assert section.code_names == ("App.route",)


def test_long_sections_split_at_paragraphs_not_in_fences() -> None:
    paragraphs = [f"Paragraph {i} " + "word " * 30 for i in range(8)]
    code = "```python\n" + "\n".join(f"call_{i}()" for i in range(20)) + "\n```"
    doc = "# Top\n\n## Long\n\n" + "\n\n".join(paragraphs[:4]) + f"\n\n{code}\n\n"
    doc += "\n\n".join(paragraphs[4:]) + "\n"
    sections = chunk_text(doc, "markdown", "long.md", max_chars=500)
    assert len(sections) > 2
    assert all(len(s.text) <= 500 for s in sections)
    assert [s.headings for s in sections] == [
        ("Top", f"Long (part {n})") for n in range(1, len(sections) + 1)
    ]
    for section in sections:
        assert section.text.count("```") % 2 == 0  # fences never cut
        assert not section.text.startswith("word")  # cut at paragraph starts
    fenced = next(s for s in sections if "```python" in s.text)
    assert fenced.code_names == tuple(f"call_{i}" for i in range(20))
    joined = "\n\n".join(s.text for s in sections)
    assert all(p.strip() in joined for p in paragraphs)


def test_a_code_block_longer_than_a_part_is_cut_between_lines() -> None:
    code = "\n".join(f"value_{i} = compute_{i}(1)" for i in range(60))
    sections = chunk_text(f"# Code\n\n```py\n{code}\n```\n", "markdown", "c.md", max_chars=300)
    assert len(sections) > 1
    for section in sections:
        assert section.text.startswith("```py\n") and section.text.endswith("\n```")
        assert len(section.text) <= 300


# -- folders and repositories -------------------------------------------------------------------


def test_scrape_folder_skips_build_noise(tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text((DATA / "guide.md").read_text())
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "routing.html").write_text((DATA / "sphinx_page.html").read_text())
    noise = {
        "search.html": "<h1>Search</h1><p>x</p>",
        "genindex.html": "<h1>Index</h1><p>x</p>",
        "py-modindex.html": "<h1>Modules</h1><p>x</p>",
        "404.html": "<h1>Lost</h1><p>x</p>",
        "_static/theme.html": "<h1>Static</h1><p>x</p>",
        "_sources/guide.rst.txt": "Source copy\n===========\n\nx\n",
        "_modules/pkg.html": "<h1>Source</h1><p>x</p>",
        ".hidden/page.md": "# Hidden\n\nx\n",
    }
    for name, text in noise.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "binary.md").write_bytes(b"\x00\x01\x02# not text")
    (tmp_path / "latin.rst").write_bytes("Caf\xe9\n====\n\nx\n".encode("latin-1"))
    (tmp_path / "huge.md").write_text("# Huge\n\n" + "x" * 5000)
    calls: list[tuple[int, int]] = []
    sections = scrape_folder(
        tmp_path, max_file_bytes=4000, progress=lambda d, t: calls.append((d, t))
    )
    assert sorted({s.source for s in sections}) == ["api/routing.html", "guide.md"]
    assert [s.source for s in sections] == sorted(s.source for s in sections)  # deterministic
    assert calls[-1] == (5, 5)  # binary, latin, huge, guide, routing were read (or tried)
    assert scrape_folder(tmp_path, max_file_bytes=4000) == sections


def test_scrape_folder_max_files_and_missing(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"p{i}.md").write_text(f"# Page {i}\n\nText {i}.\n")
    assert [s.source for s in scrape_folder(tmp_path, max_files=2)] == ["p0.md", "p1.md"]
    with pytest.raises(DocsError):
        scrape_folder(tmp_path / "nope")


def test_find_docs_prefers_built_html(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# Readme\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.rst").write_text("Index\n=====\n")
    assert find_docs(tmp_path) == [tmp_path / "README.md", tmp_path / "docs"]
    built = tmp_path / "docs" / "_build" / "html"
    built.mkdir(parents=True)
    (built / "index.html").write_text("<h1>Index</h1>")
    assert find_docs(tmp_path) == [tmp_path / "README.md", built]


def test_scrape_docs_dispatch(tmp_path: Path) -> None:
    assert scrape_docs(DATA / "notes.txt")[0].headings == ("notes.txt",)
    assert scrape_docs(str(DATA / "api.rst"))[0].headings == ("API Reference",)
    (tmp_path / "a.md").write_text("# A\n\nText.\n")
    assert scrape_docs(tmp_path) == [DocSection("a.md", ("A",), "Text.", ())]
    with pytest.raises(DocsError, match="no-such-thing"):
        scrape_docs(tmp_path / "no-such-thing")


# -- crawling -----------------------------------------------------------------------------------


class _Handler(SimpleHTTPRequestHandler):
    requests: list[str]
    robots_status: int = 200

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.path == "/robots.txt" and self.robots_status != 200:
            self.send_error(self.robots_status)
        elif self.path == "/docs/moved.html":
            self._redirect("/docs/guide.html")
        elif self.path == "/docs/away.html":
            self._redirect("http://example.com/docs/away.html")
        else:
            super().do_GET()

    def _redirect(self, location: str) -> None:
        self.send_response(301)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def site() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(SITE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as http:
        yield http


def test_crawl_scrapes_exactly_the_pages_in_scope(
    site: tuple[str, type[_Handler]], client: httpx.Client
) -> None:
    base, handler = site
    sections = crawl_site(f"{base}/docs/index.html#top", max_depth=2, client=client)
    assert sorted({s.source for s in sections}) == sorted(
        f"{base}/docs/{page}"
        for page in (
            "index.html",
            "guide.html",
            "deep/level1.html",
            "deep/level2.html",
        )
    )
    assert "NAVIGATION" not in "".join(s.text for s in sections)
    home = next(s for s in sections if s.source.endswith("index.html"))
    assert home.headings == ("Home",) and "app.run" in home.code_names
    fetched = handler.requests
    assert fetched.count("/robots.txt") == 1
    assert fetched.count("/docs/guide.html") == 1  # loop and redirect target fetched once
    for never in ("/docs/private/secret.html", "/docs/logo.png", "/outside.html"):
        assert never not in fetched
    assert "/docs/deep/level3.html" not in fetched  # deeper than max_depth
    assert {"/docs/missing.html", "/docs/download", "/docs/moved.html"} <= set(fetched)
    # the same page under another URL is fetched once but not scraped twice
    assert "/docs/" in fetched
    assert fetched.count("/docs/guide.html?lang=en&v=2") == 1  # query kept, order normalised
    assert "/docs/guide.html?v=2&lang=en" not in fetched


def test_crawl_max_pages(site: tuple[str, type[_Handler]], client: httpx.Client) -> None:
    base, _ = site
    sections = crawl_site(f"{base}/docs/index.html", max_pages=2, client=client)
    assert len({s.source for s in sections}) == 2


def test_crawl_robots_5xx_fetches_nothing(
    site: tuple[str, type[_Handler]], client: httpx.Client
) -> None:
    base, handler = site
    handler.robots_status = 503
    assert crawl_site(f"{base}/docs/index.html", client=client) == []
    assert handler.requests == ["/robots.txt"]


def test_crawl_robots_404_allows_all(
    site: tuple[str, type[_Handler]], client: httpx.Client
) -> None:
    base, handler = site
    handler.robots_status = 404
    sections = crawl_site(f"{base}/docs/private/secret.html", client=client, max_depth=0)
    assert [s.headings for s in sections] == [("Secret",)]


def test_crawl_unreachable_start_url(
    site: tuple[str, type[_Handler]], client: httpx.Client
) -> None:
    base, _ = site
    with pytest.raises(DocsError, match="cannot fetch URL"):
        crawl_site(f"{base}/docs/missing.html", client=client)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DocsError, match="local docs folder"):
        crawl_site(f"http://127.0.0.1:{port}/docs/", client=client, timeout=2)


# -- details ------------------------------------------------------------------------------------


def test_rst_overlines_transitions_comments_and_doctests() -> None:
    doc = """\
.. comment that is dropped
   over two lines

#######
 Title
#######

Intro.

----------

Section
=======

>>> import pkg.sub
>>> pkg.sub.run(1)
1

Sub
---

...and an ellipsis line stays text.

Other
=====

Text.
"""
    sections = chunk_text(doc, "rst", "page.rst")
    assert [s.headings for s in sections] == [
        ("Title",),
        ("Title", "Section"),
        ("Title", "Section", "Sub"),
        ("Title", "Other"),
    ]
    assert sections[0].text == "Intro."
    assert sections[1].text.startswith("```pycon\n>>> import pkg.sub")
    assert sections[1].code_names == ("pkg.sub", "pkg.sub.run")
    assert sections[2].text == "...and an ellipsis line stays text."


def test_markdown_thematic_breaks_and_file_names() -> None:
    doc = "# T\n\nSee `setup.py` and `pkg.run()`.\n\n---\n\n***\n\nMore.\n"
    (section,) = chunk_text(doc, "markdown", "t.md")
    assert section.text == "See `setup.py` and `pkg.run()`.\n\nMore."
    assert section.code_names == ("pkg.run",)


def test_scrape_docs_passes_each_its_own_keywords(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\n" + "Words here. " * 40 + "\n")
    sections = scrape_docs(tmp_path, max_pages=3, max_chars=200, max_files=10)
    assert len(sections) > 1 and all(len(s.text) <= 200 for s in sections)
    with pytest.raises(TypeError, match="bogus"):
        scrape_docs(tmp_path, bogus=1)
