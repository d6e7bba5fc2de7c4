"""ActivationManager as a table of events: triggers, grace period, LRU cap, manual overrides."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from remora_lsp.packs.activation import ActivationManager, matches_trigger
from remora_lsp.packs.manifest import Triggers


@dataclass(frozen=True)
class Ref:
    module: str
    names: tuple[str, ...] = ()
    ecosystem: str = "python"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


CATALOG = {
    "fastapi": Triggers(python_imports=("fastapi",)),
    "pydantic": Triggers(python_imports=("pydantic",)),
    "pandas": Triggers(python_imports=("pandas",)),
    "react": Triggers(js_imports=("react",)),
    "mui": Triggers(js_imports=("@mui/material",)),
    "sklearn-lm": Triggers(python_imports=("sklearn.linear_model",)),
}


def manager(max_active: int = 8, grace: float = 10.0) -> tuple[ActivationManager, Clock]:
    clock = Clock()
    m = ActivationManager(max_active=max_active, grace_seconds=grace, clock=clock)
    m.set_catalog(CATALOG)
    return m, clock


def active(m: ActivationManager) -> set[str]:
    return {n for n, w in m.decide().items() if w.active}


@pytest.mark.parametrize(
    ("ref", "triggers", "expected"),
    [
        (Ref("fastapi"), ("fastapi",), True),
        (Ref("fastapi.routing"), ("fastapi",), True),
        (Ref("fastapiX"), ("fastapi",), False),
        (Ref("fast"), ("fastapi",), False),
        (Ref("sklearn", ("linear_model",)), ("sklearn.linear_model",), True),
        (Ref("sklearn", ("svm",)), ("sklearn.linear_model",), False),
        (Ref("sklearn.linear_model._base"), ("sklearn.linear_model",), True),
        (Ref("x", ("*",)), ("x.y",), False),
    ],
)
def test_python_trigger_matching(ref: Ref, triggers: tuple[str, ...], expected: bool) -> None:
    assert (
        matches_trigger("python", ref.module, ref.names, Triggers(python_imports=triggers))
        is expected
    )


def test_js_triggers_match_package_exactly() -> None:
    t = Triggers(js_imports=("react", "@mui/material"))
    assert matches_trigger("js", "react", (), t)
    assert matches_trigger("js", "@mui/material", (), t)
    assert not matches_trigger("js", "react-dom", (), t)
    assert not matches_trigger("python", "react", (), t)


def test_import_activates_and_close_starts_grace() -> None:
    m, clock = manager(grace=10)
    m.update_document("file:///a.py", [Ref("fastapi"), Ref("os")])
    assert active(m) == {"fastapi"}
    assert m.decide()["fastapi"].triggered_by == ("file:///a.py",)
    m.close_document("file:///a.py")
    clock.now += 9.9
    assert active(m) == {"fastapi"}
    assert m.next_deadline() == pytest.approx(110.0)
    clock.now += 0.2
    assert active(m) == set()
    assert m.next_deadline() is None


def test_pack_stays_while_any_document_imports_it() -> None:
    m, clock = manager(grace=5)
    m.update_document("a", [Ref("pandas")])
    m.update_document("b", [Ref("pandas"), Ref("pydantic")])
    m.close_document("a")
    clock.now += 100
    assert active(m) == {"pandas", "pydantic"}
    m.update_document("b", [Ref("pydantic")])  # the import was deleted
    clock.now += 4
    assert active(m) == {"pandas", "pydantic"}
    clock.now += 2
    assert active(m) == {"pydantic"}


def test_reimport_within_grace_cancels_it() -> None:
    m, clock = manager(grace=5)
    m.update_document("a", [Ref("pandas")])
    m.update_document("a", [])
    clock.now += 3
    m.update_document("a", [Ref("pandas")])
    clock.now += 100
    assert active(m) == {"pandas"}


def test_lru_cap_leaves_out_least_recently_used() -> None:
    m, clock = manager(max_active=2)
    m.update_document("a", [Ref("fastapi")])
    clock.now += 1
    m.update_document("b", [Ref("pydantic")])
    clock.now += 1
    m.update_document("c", [Ref("pandas")])
    wants = m.decide()
    assert active(m) == {"pydantic", "pandas"}
    assert "max_active_packs=2" in wants["fastapi"].reason
    clock.now += 1
    m.update_document("a", [Ref("fastapi")])  # editing a uses fastapi again
    assert active(m) == {"fastapi", "pandas"}


def test_manual_overrides_stick_until_reversed() -> None:
    m, clock = manager()
    m.force("react", True)
    assert active(m) == {"react"}
    m.update_document("a", [Ref("fastapi")])
    m.force("fastapi", False)
    assert active(m) == {"react"}
    assert m.decide()["fastapi"].reason == "deactivated manually"
    clock.now += 1000
    m.update_document("a", [Ref("fastapi")])
    assert "fastapi" not in active(m)
    m.force("fastapi", None)
    assert "fastapi" in active(m)


def test_js_imports_and_catalog_changes() -> None:
    m, _ = manager()
    m.update_document("x.tsx", [Ref("@mui/material", ecosystem="js"), Ref("react", ecosystem="js")])
    assert active(m) == {"react", "mui"}
    m.set_catalog({"react": CATALOG["react"]})
    assert active(m) == {"react"}
    m.set_catalog(CATALOG)
    assert active(m) == {"react", "mui"}
