"""Every ```python block of the documentation site and the README runs, so they cannot drift.

Each page's blocks run in order in one namespace (a page reads like one session), in a
temporary working directory (blocks that write files write there). A block preceded by an
HTML comment ``<!-- skip: reason -->`` is not run; keep those for what needs a GPU. A page
is skipped from a block on when that block imports a library that is not installed, or is
preceded by ``<!-- needs: matplotlib -->`` (an extra it uses through numdiffx) and that
library is absent: on a core install (``pip install .``) every numpy-only example runs.
``docs/perturbation.md`` is run by ``tests/test_checks.py`` and is not run twice here.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
README = DOCS.parent / "README.md"
RUN_ELSEWHERE = {"perturbation.md": "tests/test_checks.py::test_docs_perturbation_code_blocks_run"}
_BLOCK = re.compile(r"(?P<skip><!--\s*skip:[^>]*-->\s*\n)?(?:<!--\s*needs:(?P<needs>[^>]*)-->\s*\n)?"
                    r"```python\n(?P<code>.*?)```", re.S)
_IMPORT = re.compile(r"^\s*(?:import|from)\s+([A-Za-z_]\w*)", re.M)


def python_blocks(page: Path) -> list[tuple[int, str, bool]]:
    """(line number, code, skipped) for every ```python block of a page."""
    return [(line, code, skipped) for line, code, skipped, _ in _blocks(page)]


def _blocks(page: Path) -> list[tuple[int, str, bool, list[str]]]:
    text = page.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start("code")) + 1, m.group("code"), m.group("skip") is not None,
             (m.group("needs") or "").replace(",", " ").split())
            for m in _BLOCK.finditer(text)]


PAGES = sorted(p for p in DOCS.glob("*.md") if p.name not in RUN_ELSEWHERE) + [README]


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for line, code, skipped, needs in _blocks(page):
        if skipped:
            continue
        for name in [*_IMPORT.findall(code), *needs]:
            if importlib.util.find_spec(name) is None:
                pytest.skip(f"{page.name}:{line} needs {name}, which is not installed")
        exec(compile(code, f"{page}:{line}", "exec"), namespace)  # noqa: S102 - our own docs


def test_examples_are_found_and_rarely_skipped() -> None:
    blocks = {p.name: python_blocks(p) for p in DOCS.glob("*.md")}
    assert sum(len(b) for b in blocks.values()) >= 20
    skipped = [(name, line) for name, bs in blocks.items() for line, _, skip in bs if skip]
    assert len(skipped) <= 2, f"too many skipped doc examples: {skipped}"
    for name in RUN_ELSEWHERE:
        assert blocks.get(name), f"{name} has no python blocks; drop it from RUN_ELSEWHERE"


def test_every_page_is_in_the_nav() -> None:
    nav = (DOCS.parent / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [p.name for p in DOCS.glob("*.md") if f" {p.name}" not in nav]
    assert not missing, f"pages not in mkdocs.yml nav: {missing}"
