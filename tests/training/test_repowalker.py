"""walk_repo on tests/data/train_repo: units, golden snippets from real coverage and the proxy."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from remora_lsp.training.errors import SourceError
from remora_lsp.training.repowalker import is_test_file, walk_repo
from remora_lsp.training.source import resolve_source
from remora_lsp.training.types import RepoScan, Source, to_data

TRAIN_REPO = Path(__file__).parents[1] / "data" / "train_repo"

# Every unit outside the tests, and why it is (not) golden when the tests' coverage is known.
COVERAGE_REASONS = {
    "tinyledger.ledger.LedgerError": "too short",
    "tinyledger.ledger.Ledger": "golden",
    "tinyledger.ledger.Ledger.add_entry": "golden",
    "tinyledger.ledger.Ledger.balance": "golden",
    "tinyledger.ledger.Ledger.__len__": "undocumented",
    "tinyledger.ledger.Ledger.labels": "not covered",
    "tinyledger.money._clean": "golden",  # private, but the tests run it
    "tinyledger.money.parse_amount": "golden",
    "tinyledger.money.format_amount": "golden",
    "tinyledger.money.round_half_even": "not covered",  # named in a test, never run
    "tinyledger.money.clamp": "golden",
    "tinyledger.money.negate": "undocumented",
    "tinyledger.rates_gen.rate_for": "generated",
    "tinyledger.report.clamp": "duplicate",  # same text as money.clamp, which comes first
    "tinyledger.report.summarize": "golden",
    "tinyledger.report.render_table": "not covered",
    "tinyledger.report.legacy_account_name": "too long",
}
# Without coverage: documented public units whose name appears in the test files.
PROXY_CHANGES = {
    "tinyledger.ledger.Ledger.labels": "not named in tests",
    "tinyledger.money._clean": "private",
    "tinyledger.money.round_half_even": "golden",
    "tinyledger.report.render_table": "not named in tests",
}
TEST_FILES = ("tests/conftest.py", "tests/test_ledger.py", "tests/test_money.py")


def _copy(dest: Path) -> Source:
    shutil.copytree(TRAIN_REPO, dest)
    return resolve_source(str(dest), work_dir=dest.parent / "work")


def _reasons(scan: RepoScan) -> dict[str, str]:
    return {u.qualname: u.reason for u in scan.units if u.path not in scan.test_files}


@pytest.fixture(scope="module")
def covered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Source, RepoScan, Path]:
    """The tests of a copy of train_repo run under coverage once for the whole module."""
    base = tmp_path_factory.mktemp("covered")
    source = _copy(base / "train_repo")
    scan = walk_repo(source, run_tests=True, work_dir=base / "work")
    return source, scan, base / "work"


def test_golden_snippets_from_running_the_tests(
    covered: tuple[Source, RepoScan, Path],
) -> None:
    source, scan, work = covered
    data_file = work / "coverage" / ".coverage"
    assert data_file.is_file()
    assert scan.golden_rule.startswith(f"coverage: {data_file}")
    assert _reasons(scan) == COVERAGE_REASONS
    assert {u.qualname for u in scan.golden} == {
        q for q, r in COVERAGE_REASONS.items() if r == "golden"
    }
    assert scan.test_files == TEST_FILES
    assert all(u.reason == "test code" and not u.golden for u in scan.units if u.path in TEST_FILES)
    assert scan.files == (
        *TEST_FILES,
        "tinyledger/__init__.py",
        "tinyledger/ledger.py",
        "tinyledger/money.py",
        "tinyledger/rates_gen.py",
        "tinyledger/report.py",
    )
    assert scan.stats == {
        "duplicate": 1, "generated": 1, "golden": 8, "not covered": 3, "test code": 10,
        "too long": 1, "too short": 1, "undocumented": 2,
    }  # fmt: skip
    assert (scan.license, scan.license_files) == ("MIT", ("LICENSE",))
    by_name = {u.qualname: u for u in scan.units}
    assert by_name["tinyledger.money.round_half_even"].covered is False
    assert by_name["tinyledger.money.parse_amount"].covered is True
    assert by_name["tinyledger.ledger.Ledger"].covered is True  # through its methods
    assert by_name["tinyledger.ledger.Ledger.labels"].covered is False
    assert not list(source.root.rglob("__pycache__"))  # the test run left the source clean


def test_unit_records_are_exact(covered: tuple[Source, RepoScan, Path]) -> None:
    source, scan, _ = covered
    by_name = {u.qualname: u for u in scan.units}
    parse = by_name["tinyledger.money.parse_amount"]
    lines = (source.root / parse.path).read_text().split("\n")
    assert parse.code == "\n".join(lines[parse.start_line - 1 : parse.end_line])
    assert parse.code.startswith("def parse_amount(text: str) -> int:")
    assert parse.code.endswith(
        '    return sign * (int(whole or "0") * 100 + int(frac.ljust(2, "0")))'
    )
    assert parse.signature == "def parse_amount(text: str) -> int:"
    assert parse.docstring == (
        'Parse ``"12.34"`` or ``"-3.5"`` into whole cents.\n\n'
        "Raises ValueError for more than two decimals."
    )
    assert parse.kind == "function"
    ledger = by_name["tinyledger.ledger.Ledger"]
    assert (ledger.kind, ledger.signature) == ("class", "class Ledger:")
    assert ledger.code.startswith("@dataclass\nclass Ledger:")  # decorators included
    assert by_name["tinyledger.ledger.Ledger.balance"].kind == "method"
    fixture = by_name["tests.conftest.ledger"]
    assert fixture.code.startswith("@pytest.fixture\ndef ledger()")


def test_coverage_recorded_under_another_root(
    covered: tuple[Source, RepoScan, Path], tmp_path: Path
) -> None:
    _, scan, work = covered
    elsewhere = _copy(tmp_path / "elsewhere" / "checkout")
    moved = walk_repo(elsewhere, coverage=work / "coverage" / ".coverage")
    assert moved.golden_rule == f"coverage: {work / 'coverage' / '.coverage'}"
    assert _reasons(moved) == COVERAGE_REASONS
    assert [u.covered for u in moved.units] == [u.covered for u in scan.units]


def test_failing_tests_still_give_coverage(tmp_path: Path) -> None:
    source = _copy(tmp_path / "repo")
    (source.root / "tests" / "test_aaa_fails.py").write_text(
        "def test_fails():\n    assert False\n"
    )
    scan = walk_repo(source, run_tests=True, work_dir=tmp_path / "work")
    reasons = _reasons(scan)
    assert scan.golden_rule.startswith("coverage: ")
    # -x stops at the first failure: only import-time code ran
    assert reasons["tinyledger.money.parse_amount"] == "not covered"
    assert reasons["tinyledger.ledger.LedgerError"] == "too short"


def test_no_coverage_data_from_the_test_run_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _copy(tmp_path / "repo")
    fake = tmp_path / "fake-python"
    fake.write_text("#!/bin/sh\necho 'ImportError: no pytest here'\nexit 4\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    with pytest.raises(SourceError, match=r"(?s)produced no data \(exit code 4\).*no pytest here"):
        walk_repo(source, run_tests=True, work_dir=tmp_path / "work")


def test_tests_of_a_distribution_cannot_be_run(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="ships no test suite"):
        walk_repo(resolve_source("click", work_dir=tmp_path), run_tests=True, work_dir=tmp_path)


def test_proxy_without_coverage(tmp_path: Path) -> None:
    scan = walk_repo(_copy(tmp_path / "repo"))
    assert scan.golden_rule == "proxy: no coverage data; documented public units named in the tests"
    assert _reasons(scan) == {**COVERAGE_REASONS, **PROXY_CHANGES}
    assert all(u.covered is None for u in scan.units)


def test_proxy_without_tests(tmp_path: Path) -> None:
    source = _copy(tmp_path / "repo")
    shutil.rmtree(source.root / "tests")
    scan = walk_repo(source)
    assert scan.golden_rule == "proxy: no coverage data and no tests; documented public units"
    assert scan.test_files == ()
    golden = {u.qualname for u in scan.golden}
    assert {"tinyledger.ledger.Ledger.labels", "tinyledger.report.render_table"} <= golden
    assert "tinyledger.money._clean" not in golden


def test_bad_coverage_files_are_clear_errors(tmp_path: Path) -> None:
    source = _copy(tmp_path / "repo")
    with pytest.raises(SourceError, match="does not exist"):
        walk_repo(source, coverage=tmp_path / "nothing" / ".coverage")
    garbage = tmp_path / "garbage.coverage"
    garbage.write_bytes(b"this is not a coverage database\x00\x01" * 50)
    with pytest.raises(SourceError, match="cannot read coverage data"):
        walk_repo(source, coverage=garbage)


def test_coverage_of_other_files_is_an_error(tmp_path: Path) -> None:
    from coverage import CoverageData

    data_file = tmp_path / ".coverage"
    data = CoverageData(basename=str(data_file))
    data.add_lines({"/elsewhere/unrelated/module.py": [1, 2]})
    data.write()
    with pytest.raises(SourceError, match="measured none of the files"):
        walk_repo(_copy(tmp_path / "repo"), coverage=data_file)


def test_broken_binary_huge_and_skipped_files(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "broken.py").write_text(
        "def ok(x):\n    '''Fine.'''\n    return x\n\n\ndef broken(:\n    return ((\nclass Half(\n"
    )
    (root / "pkg" / "blob.py").write_bytes(b"\x00\x01\x02 not python \xff\xfe")
    (root / "pkg" / "latin.py").write_bytes(
        b"# -*- coding: latin-1 -*-\ndef caf\xe9():\n    '''Caf\xe9.'''\n    return 1\n"
    )
    (root / "pkg" / "undecodable.py").write_bytes(b"x = '\xff\xfe\xfa'\n")
    (root / "pkg" / "huge.py").write_text("x = 1\n" * 1000)
    (root / "pkg" / "nodes.py").write_text(  # prose about generating is no marker
        '"""AST nodes generated by the parser."""\n\n\n'
        'def node():\n    """A node."""\n    return 1\n'
    )
    (root / "pkg" / "pb2.py").write_text(
        "# Generated by the protocol buffer compiler.  DO NOT EDIT!\n"
        'def message():\n    """A message."""\n    return 1\n'
    )
    for skipped in (".git", ".hidden", "node_modules", "build", "dist", "__pycache__", "my-env"):
        (root / skipped).mkdir()
        (root / skipped / "skipped.py").write_text("def skipped():\n    pass\n")
    (root / "my-env" / "pyvenv.cfg").write_text("home = /usr\n")
    scan = walk_repo(resolve_source(str(root), work_dir=tmp_path / "w"), max_file_bytes=5000)
    assert scan.files == ("pkg/broken.py", "pkg/latin.py", "pkg/nodes.py", "pkg/pb2.py")
    reasons = {u.qualname: u.reason for u in scan.units}
    assert (reasons["pkg.nodes.node"], reasons["pkg.pb2.message"]) == ("golden", "generated")
    names = {u.qualname for u in scan.units}
    assert "pkg.broken.ok" in names
    assert "pkg.latin.café" in names
    assert {u.docstring for u in scan.units if u.qualname == "pkg.latin.café"} == {"Café."}


def test_no_python_files(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("# nothing\n")
    with pytest.raises(SourceError, match=f"no Python files in {tmp_path}"):
        walk_repo(resolve_source(str(tmp_path), work_dir=tmp_path / "w"))


def test_distribution_walks_only_its_packages(tmp_path: Path) -> None:
    source = resolve_source("click", work_dir=tmp_path)
    seen: list[tuple[int, int]] = []
    scan = walk_repo(source, progress=lambda done, total: seen.append((done, total)))
    assert scan.files and all(f.startswith("click/") for f in scan.files)
    assert seen[-1] == (len(scan.files), len(scan.files))
    assert scan.golden_rule == "proxy: no coverage data and no tests; documented public units"
    assert any(u.qualname == "click.core.Command.invoke" for u in scan.golden)


def test_walks_are_deterministic(tmp_path: Path) -> None:
    source = _copy(tmp_path / "repo")
    first, second = walk_repo(source), walk_repo(source)
    assert to_data(first) == to_data(second)
    assert RepoScan.from_data(to_data(first)) == first


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("tests/test_x.py", True),
        ("pkg/test/helpers.py", True),
        ("pkg/test_io.py", True),
        ("pkg/io_test.py", True),
        ("conftest.py", True),
        ("pkg/testing.py", False),
        ("pkg/contest.py", False),
    ],
)
def test_is_test_file(path: str, expected: bool) -> None:
    assert is_test_file(path) is expected
