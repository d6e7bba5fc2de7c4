"""Runs pack template code in a separate, restricted Python process and returns JSON.

Everything that executes pack-supplied code — a ``.pym`` module, or a Jinja2 template compiled
to Python — goes through :func:`run_job`. The parent reads the pack files itself and sends them
to the child on stdin, so the child never needs to open a file. The child is
``sys.executable -I -B -S`` (isolated: no environment variables, no user site, no ``site``, no
bytecode written), started with an empty environment in a fresh empty temporary directory, in
its own process group. Before it touches pack code it imports the few modules it allows, then
locks itself down: resource limits (CPU seconds, address space, no file growth, no new file
descriptors, no new processes), ``socket``/``ssl``/``ctypes``/``subprocess`` replaced in
``sys.modules`` by refusing stubs, and an audit hook that refuses every event outside a short
allow-list — ``open`` (read or write), ``socket.*``, ``subprocess.Popen``, ``os.system``,
``os.exec*``, ``os.fork``, ``ctypes.*`` and imports of modules that are not already loaded or
allow-listed. The parent enforces a wall-clock timeout, caps the bytes it reads, kills the whole
process group when anything is exceeded, and treats the child's JSON answer as untrusted data.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remora_lsp.templates.errors import (
    TemplateError,
    TemplateLimitError,
    TemplateLoadError,
    TemplateSecurityError,
)

__all__ = ["MIN_JINJA2", "SandboxLimits", "child_command", "run_job"]

MIN_JINJA2 = (3, 1, 6)


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed job. Defaults suit a template: small, fast, no I/O."""

    cpu_seconds: int = 5
    wall_seconds: float = 10.0
    memory_bytes: int = 512 * 1024 * 1024
    max_output_bytes: int = 8 * 1024 * 1024


# The child program. It is a constant string run with ``-c``: nothing from the pack is part of
# it; pack code arrives as data on stdin and is compiled only after the lock-down.
_CHILD = r"""
import sys, json, io, resource, builtins
_real_out = sys.stdout
job = json.loads(sys.stdin.buffer.read().decode("utf-8"))
sys.path[:0] = list(job.get("paths", ()))
import re, string, textwrap, keyword, collections, itertools, functools, math, enum
import dataclasses, typing, encodings.unicode_escape, encodings.ascii, encodings.latin_1
if job["kind"] == "render":
    import jinja2, jinja2.sandbox, jinja2.debug, markupsafe
    from jinja2 import StrictUndefined
    from jinja2.exceptions import SecurityError, TemplateError as JinjaError


def _emit(data):
    text = json.dumps(data, ensure_ascii=True, allow_nan=False)
    _real_out.write(text)
    _real_out.flush()


class _Refused(PermissionError):
    pass


class _Stub(type(sys)):
    def __getattr__(self, name):
        raise _Refused("remora sandbox: module " + self.__name__ + " is not available")


for _name in ("socket", "_socket", "ssl", "_ssl", "select", "selectors"):
    sys.modules[_name] = _Stub(_name)
for _name in ("ctypes", "_ctypes", "subprocess", "_posixsubprocess", "multiprocessing",
              "_multiprocessing", "pty", "fcntl", "mmap", "gc", "importlib", "runpy", "pickle",
              "_pickle", "marshal", "shutil", "pathlib", "tempfile", "urllib", "http"):
    sys.modules[_name] = None

lim = job["limits"]
resource.setrlimit(resource.RLIMIT_CPU, (lim["cpu"], lim["cpu"] + 1))
resource.setrlimit(resource.RLIMIT_AS, (lim["mem"], lim["mem"]))
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
resource.setrlimit(resource.RLIMIT_NOFILE, (3, 3))
try:
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
except (ValueError, OSError):
    pass
try:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
except (ValueError, OSError):
    pass


def _audit(event, args):
    # The allow-lists are constants of this code object; the function is unreachable from pack
    # code (its name is deleted below) and replacing any function's code, defaults or globals
    # is refused, so pack code cannot swap the hook's logic for its own.
    if event in {"exec", "compile", "object.__getattr__", "builtins.id", "sys._getframe",
                 "code.__new__"}:
        return
    if event in {"object.__setattr__", "object.__delattr__"}:
        if args[1] in {"__code__", "__defaults__", "__kwdefaults__", "__closure__",
                       "__globals__", "__builtins__", "__class__", "__dict__"}:
            raise _Refused("remora sandbox: changing " + args[1] + " is refused")
        return
    if event == "import":
        top = args[0].partition(".")[0]
        if top in {"re", "string", "textwrap", "keyword", "collections", "itertools",
                   "functools", "math", "enum", "dataclasses", "typing", "json", "jinja2",
                   "markupsafe", "encodings", "_sre", "_json", "_collections",
                   "_functools", "_string"}:
            return
        raise _Refused("remora sandbox: import of " + repr(args[0]) + " is refused")
    if event == "open" and args:
        raise _Refused("remora sandbox: open(" + repr(args[0])[:200] + ") is refused")
    raise _Refused("remora sandbox: " + event + " is refused")


sys.addaudithook(_audit)
del _audit
del resource


def _plain(value, depth=0):
    if depth > 20:
        raise ValueError("nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    raise ValueError("holds a " + type(value).__name__ + "; only plain data is allowed")


_NAMES = ("TEMPLATE", "FILES", "OUTPUT", "PARAMS", "INTENTS", "KEYWORDS", "DESCRIPTION")


def _load(files):
    out = {}
    for item in files:
        ns = {"__name__": "pym", "__builtins__": builtins}
        try:
            code = compile(item["source"], item["name"], "exec", dont_inherit=True)
            exec(code, ns)
            data = {k: _plain(ns[k]) for k in _NAMES if k in ns}
            if "DESCRIPTION" not in data and isinstance(ns.get("__doc__"), str):
                data["DESCRIPTION"] = ns["__doc__"]
            out[item["name"]] = {"ok": True, "data": data}
        except MemoryError:
            out[item["name"]] = {"ok": False, "kind": "limit", "error": "memory limit reached"}
        except _Refused as exc:
            out[item["name"]] = {"ok": False, "kind": "security", "error": str(exc)}
        except BaseException as exc:
            out[item["name"]] = {"ok": False, "kind": "load",
                                 "error": type(exc).__name__ + ": " + str(exc)[:500]}
    return out


def _pascal(value):
    parts = re.split(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])", str(value))
    return "".join(p[:1].upper() + p[1:] for p in parts if p)


def _snake(value):
    value = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(value))
    return re.sub(r"[^A-Za-z0-9]+", "_", value).strip("_").lower()


def _plural(value):
    value = str(value)
    if re.search(r"(s|x|z|ch|sh)$", value):
        return value + "es"
    if re.search(r"[^aeiou]y$", value):
        return value[:-1] + "ies"
    return value + "s"


def _fields(value):
    result = []
    for item in value:
        name, _, kind = str(item).partition(":")
        result.append((name.strip(), kind.strip() or "str"))
    return result


def _render(files, args):
    env = jinja2.sandbox.SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True,
        trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pascal=_pascal, snake=_snake, plural=_plural, fields=_fields)
    rendered = []
    for path_src, body_src in files:
        path = env.from_string(path_src).render(**args)
        body = env.from_string(body_src).render(**args)
        rendered.append([path, body])
    return rendered


sys.stdout = io.StringIO()
sys.stderr = io.StringIO()
try:
    if job["kind"] == "load":
        _emit({"ok": True, "result": _load(job["files"])})
    else:
        try:
            _emit({"ok": True, "result": _render(job["files"], job["args"])})
        except SecurityError as exc:
            _emit({"ok": False, "kind": "security", "error": "Jinja2 sandbox: " + str(exc)[:500]})
        except _Refused as exc:
            _emit({"ok": False, "kind": "security", "error": str(exc)[:500]})
        except MemoryError:
            _emit({"ok": False, "kind": "limit", "error": "memory limit reached"})
        except OverflowError as exc:
            _emit({"ok": False, "kind": "limit", "error": "Jinja2 sandbox: " + str(exc)[:500]})
        except Exception as exc:
            _emit({"ok": False, "kind": "render",
                   "error": type(exc).__name__ + ": " + str(exc)[:500]})
except MemoryError:
    _emit({"ok": False, "kind": "limit", "error": "memory limit reached"})
"""


def child_command() -> list[str]:
    """The command line of the sandboxed child (isolated mode, no site, no bytecode)."""
    return [sys.executable, "-I", "-B", "-S", "-c", _CHILD]


def _render_paths() -> list[str]:
    """Folders holding jinja2 and markupsafe, which the child cannot find without ``site``."""
    import jinja2
    import markupsafe

    version = tuple(int(p) for p in jinja2.__version__.split(".")[:3] if p.isdigit())
    if version < MIN_JINJA2:
        raise TemplateSecurityError(
            f"Jinja2 {jinja2.__version__} has known sandbox escapes (CVE-2025-27516); "
            "templates need Jinja2 >= 3.1.6: pip install -U 'jinja2>=3.1.6'"
        )

    paths = {str(Path(str(m.__file__)).resolve().parent.parent) for m in (jinja2, markupsafe)}
    return sorted(paths)


def _reader(stream: Any, sink: bytearray, cap: int, overflow: threading.Event) -> None:
    while True:
        block = stream.read(65536)
        if not block:
            return
        if len(sink) + len(block) > cap:
            overflow.set()
            return
        sink.extend(block)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def run_job(job: dict[str, Any], limits: SandboxLimits | None = None) -> Any:
    """Run one ``load`` or ``render`` job in a fresh sandboxed child; return its result.

    Raises :class:`TemplateLimitError` when a limit stopped the child,
    :class:`TemplateSecurityError` when the sandbox refused something, and
    :class:`TemplateError` subclasses for other failures.
    """
    limits = limits or SandboxLimits()
    payload = dict(job)
    payload["limits"] = {"cpu": limits.cpu_seconds, "mem": limits.memory_bytes}
    if job["kind"] == "render":
        payload["paths"] = _render_paths()
    data = json.dumps(payload).encode("utf-8")
    with tempfile.TemporaryDirectory(prefix="remora-tpl-") as cwd:
        proc = subprocess.Popen(
            child_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env={"PYTHONDONTWRITEBYTECODE": "1", "LC_ALL": "C.UTF-8"},
            start_new_session=True,
            close_fds=True,
        )
        assert proc.stdin and proc.stdout and proc.stderr
        out, err = bytearray(), bytearray()
        overflow = threading.Event()
        readers = [
            threading.Thread(
                target=_reader, args=(proc.stdout, out, limits.max_output_bytes, overflow)
            ),
            threading.Thread(target=_reader, args=(proc.stderr, err, 65536, threading.Event())),
        ]
        for thread in readers:
            thread.daemon = True
            thread.start()
        try:
            proc.stdin.write(data)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        deadline = time.monotonic() + limits.wall_seconds
        timed_out = False
        while proc.poll() is None:
            if overflow.is_set():
                break
            if time.monotonic() > deadline:
                timed_out = True
                break
            time.sleep(0.005)
        if proc.poll() is None:
            _kill(proc)
        proc.wait()
        for thread in readers:
            thread.join(timeout=1.0)
        proc.stdout.close()
        proc.stderr.close()
    if timed_out:
        raise TemplateLimitError(
            f"stopped after the {limits.wall_seconds:g} s wall-clock limit (looping template?)"
        )
    if overflow.is_set():
        raise TemplateLimitError(f"output exceeded {limits.max_output_bytes} bytes")
    code = proc.returncode
    if code in (-signal.SIGXCPU, -signal.SIGKILL) or code == 128 + signal.SIGXCPU:
        raise TemplateLimitError(
            f"stopped by the {limits.cpu_seconds} s CPU-time limit (looping template?)"
        )
    try:
        answer = json.loads(bytes(out).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        tail = bytes(err).decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        if "MemoryError" in tail[0]:
            raise TemplateLimitError("memory limit reached") from exc
        raise TemplateError(
            f"the template sandbox ended without an answer (exit {code}): {tail[0][:300]}"
        ) from exc
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise TemplateError("the template sandbox answered malformed data")
    if answer["ok"]:
        return answer.get("result")
    _raise_for(answer)


def _raise_for(answer: dict[str, Any]) -> None:
    message = str(answer.get("error", "unknown error"))
    kind = answer.get("kind")
    if kind == "security":
        raise TemplateSecurityError(message)
    if kind == "limit":
        raise TemplateLimitError(message)
    if kind == "load":
        raise TemplateLoadError(message)
    raise TemplateError(message)
