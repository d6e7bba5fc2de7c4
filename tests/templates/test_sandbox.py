"""The process and Jinja2 sandboxes refuse escapes, file and network access, and stop loops."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from remora_lsp.templates.errors import (
    TemplateError,
    TemplateLimitError,
    TemplateSecurityError,
)
from remora_lsp.templates.pym import TemplateSpec, load_pym_sources, spec_from_data
from remora_lsp.templates.render import render_spec
from remora_lsp.templates.sandbox import SandboxLimits, child_command

FAST = SandboxLimits(cpu_seconds=1, wall_seconds=4.0, memory_bytes=256 * 1024 * 1024)


def one_file(body: str, output: str = "out.py", params=None) -> TemplateSpec:
    data = {"TEMPLATE": body, "OUTPUT": output, "PARAMS": params or []}
    return spec_from_data(data, name="t/x", pack="t", source="t:x.pym")


def load_one(source: str, limits: SandboxLimits | None = None) -> str:
    """Load a single .pym; return 'ok' or the error message."""
    specs, errors = load_pym_sources({"templates/x.pym": source}, pack="t", limits=limits)
    return "ok" if specs else str(errors[0])


def test_child_runs_isolated_without_site_or_bytecode() -> None:
    assert child_command()[1:4] == ["-I", "-B", "-S"]


# -- Jinja2 sandbox escapes ---------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''|attr('__class__') }}",  # CVE-2025-27516 goes through |attr
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{{ range.__globals__ }}",
    "{{ '{0.__class__}'.format(x) }}",
    "{{ '{a.__class__.__base__}'.format_map({'a': x}) }}",
    "{{ x.__class__.__base__.__subclasses__() }}",
    "{{ namespace.__init__.__globals__ }}",
]


@pytest.mark.parametrize("body", ESCAPES)
def test_known_jinja2_escapes_are_refused(body: str) -> None:
    spec = one_file(body, params=[{"name": "x", "type": "str"}])
    with pytest.raises(TemplateSecurityError, match=r"unsafe|sandbox"):
        render_spec(spec, {"x": "a"}, limits=FAST)


def test_chained_attr_filter_never_reaches_a_class() -> None:
    spec = one_file("{{ (''|attr('__class__'))|attr('__mro__') }}")
    with pytest.raises(TemplateError, match="__mro__") as caught:
        render_spec(spec, {}, limits=FAST)
    assert "<class" not in str(caught.value)


def test_huge_range_is_refused_by_the_jinja2_sandbox() -> None:
    with pytest.raises(TemplateLimitError, match="Range too big"):
        render_spec(one_file("{% for i in range(10**9) %}{% endfor %}"), {}, limits=FAST)


def test_looping_template_is_stopped_by_the_cpu_limit() -> None:
    body = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(TemplateLimitError, match="limit"):
        render_spec(one_file(body), {}, limits=FAST)
    assert time.monotonic() - started < 6


def test_output_flood_is_capped() -> None:
    body = "{% for i in range(99999) %}{{ 'x' * 1000 }}{% endfor %}"
    limits = SandboxLimits(cpu_seconds=2, wall_seconds=5, max_output_bytes=1 << 20)
    with pytest.raises(TemplateLimitError, match=r"output|memory"):
        render_spec(one_file(body), {}, limits=limits)


def test_output_path_cannot_leave_the_workspace() -> None:
    for output in ("../evil.py", "/etc/evil.py", "a/../../b.py"):
        with pytest.raises(TemplateSecurityError, match="safe relative path"):
            render_spec(one_file("x = 1\n", output=output), {}, limits=FAST)


# -- .pym code in the process sandbox -----------------------------------------------------------


def test_pym_cannot_read_files() -> None:
    assert "open('/etc/passwd') is refused" in load_one("DATA = open('/etc/passwd').read()\n")


def test_pym_cannot_write_files(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    message = load_one(f"open({str(marker)!r}, 'w').write('pwned')\nTEMPLATE = ''\n")
    assert "is refused" in message
    assert not marker.exists()


@pytest.mark.parametrize(
    ("source", "refused"),
    [
        ("import os\nos.listdir('/')\n", "os.listdir"),
        ("import os\nos.system('true')\n", "os.system"),
        ("import os\nos.execv('/bin/true', ['true'])\n", "os.exec"),
        ("import os\nos.remove('/tmp/x')\n", "os.remove"),
        ("import os\nos.fork()\n", "os.fork"),
        ("import subprocess\n", "subprocess"),
        ("import ctypes\n", "ctypes"),
        ("import socket\nsocket.create_connection(('127.0.0.1', 9))\n", "socket"),
        ("import urllib.request\n", "urllib"),
        ("import importlib\n", "importlib"),
        ("import sqlite3\n", "sqlite3"),
        ("import io\nio.open_code('/etc/hostname')\n", "open"),
        ("import os\nos.kill(os.getppid(), 9)\n", "os.kill"),
        ("import resource\nresource.setrlimit(resource.RLIMIT_CPU, (-1, -1))\n", "resource"),
        ("import os\nos.chdir('/')\n", "os.chdir"),
    ],
)
def test_pym_dangerous_operations_are_refused(source: str, refused: str) -> None:
    message = load_one(source + "TEMPLATE = ''\nOUTPUT = 'x.py'\n")
    assert message != "ok"
    assert refused in message


def test_pym_cannot_reach_or_rewrite_the_audit_hook() -> None:
    assert (
        load_one(
            "import sys\nassert not hasattr(sys.modules['__main__'], '_audit')\n"
            "TEMPLATE = ''\nOUTPUT = 'x.py'\n"
        )
        == "ok"
    )
    source = (
        "import sys\n"
        "main = sys.modules['__main__']\n"
        "main._emit.__code__ = (lambda data: None).__code__\n"
    )
    assert "changing __code__ is refused" in load_one(source)


def test_pym_sees_no_environment_and_an_empty_cwd() -> None:
    source = (
        "import os\n"
        "assert 'HOME' not in os.environ and 'PATH' not in os.environ, dict(os.environ)\n"
        "TEMPLATE = ''\nOUTPUT = 'x.py'\n"
    )
    assert load_one(source) == "ok"


def test_looping_pym_is_killed_by_the_cpu_limit() -> None:
    started = time.monotonic()
    with pytest.raises(TemplateLimitError, match="CPU-time limit"):
        load_one("while True:\n    pass\n", limits=FAST)
    assert time.monotonic() - started < 6


def test_sleeping_pym_is_killed_by_the_wall_clock_limit() -> None:
    limits = SandboxLimits(cpu_seconds=5, wall_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(TemplateLimitError, match="wall-clock"):
        load_one("import time\ntime.sleep(60)\n", limits=limits)
    assert time.monotonic() - started < 4


def test_memory_hungry_pym_hits_the_memory_limit() -> None:
    message = load_one("x = bytearray(2 * 1024 ** 3)\n", limits=FAST)
    assert "memory limit" in message


def test_pym_output_must_be_plain_data() -> None:
    assert "only plain data" in load_one("TEMPLATE = object()\nOUTPUT = 'x.py'\n")
