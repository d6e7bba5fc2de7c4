"""Facts about this machine the engines need: memory in use, the device, installed backends.

Everything here is cheap except :func:`detect_device`, which imports torch (inside the
function, so importing this module stays instant).
"""

from __future__ import annotations

import importlib.util
import os
import resource
import sys
from pathlib import Path

__all__ = ["backend_installed", "detect_device", "rss_bytes", "set_offline_environment"]


def rss_bytes(pid: int | None = None) -> int | None:
    """Resident set size of a process (this one by default) in bytes, if it can be read."""
    status = Path(f"/proc/{pid or 'self'}/status")
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if pid is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    return None


def detect_device() -> str:
    """``"cuda"`` when torch sees a GPU, else ``"cpu"`` (also when torch is missing)."""
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def backend_installed(module: str) -> bool:
    """Whether a backend's top-level package (``vllm``, ``transformers``, ``httpx``) is present."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def set_offline_environment() -> None:
    """Never reach a model hub: weights and tokenizers come from local folders only."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
