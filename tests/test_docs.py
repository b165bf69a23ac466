"""The documentation cannot rot: every example of the guide and every notebook runs.

* Each ```python block of README.md and docs/*.md runs, top to bottom in one
  namespace per page, through ``docs/build.py``'s own ``run_page`` (the function
  behind ``make docs``), with matplotlib's Agg backend.
* Each notebook in notebooks/ is valid nbformat v4, committed without outputs, and its
  code cells run in order in one namespace with ``exec`` (no Jupyter kernel needed;
  ``make docs`` executes them with nbclient as well).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _load_build():
    spec = importlib.util.spec_from_file_location("ips_impact_docs_build", ROOT / "docs" / "build.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


build = _load_build()
PAGES = build.pages()
GUIDE = ["index.md", "data.md", "estimators.md", "inference.md", "survival.md", "households.md", "synthetic.md"]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_every_guide_page_is_collected_and_has_examples():
    names = {p.name for p in PAGES}
    assert "README.md" in names
    for name in GUIDE:
        assert name in names, f"docs/{name} is missing"
        assert build.BLOCK.findall((ROOT / "docs" / name).read_text(encoding="utf-8")), f"docs/{name} has no python block"


def test_index_links_every_page():
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    for page in (ROOT / "docs").glob("*.md"):
        if page.name != "index.md":
            assert f"({page.name})" in index, f"docs/index.md does not link {page.name}"


def test_run_page_reports_a_failing_block(tmp_path):
    # the harness below relies on run_page failing loudly; check that it does
    page = tmp_path / "broken.md"
    page.write_text("```python\nx = 1\n```\n\n```python\nassert x == 2, 'wrong'\n```\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"broken.md block 2 failed: AssertionError: wrong"):
        build.run_page(page)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_runs(page, monkeypatch):
    monkeypatch.chdir(ROOT)  # as `make docs` runs it
    try:
        build.run_page(page)
    except SystemExit as exc:  # run_page names the page and block that failed
        pytest.fail(str(exc), pytrace=False)
    finally:
        plt.close("all")


def _source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def test_notebooks_exist():
    assert {p.name for p in NOTEBOOKS} >= {"01_tour.ipynb", "02_real_delivery.ipynb"}


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_valid_and_clean(nb_path):
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    try:
        import nbformat
    except ImportError:  # the docs extra is not installed: the structural checks below still run
        nbformat = None
    if nbformat is not None:
        nbformat.validate(nbformat.reads(nb_path.read_text(encoding="utf-8"), as_version=4))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "a notebook without code"
    assert any(c["cell_type"] == "markdown" for c in nb["cells"])
    for i, cell in enumerate(code):
        assert cell["outputs"] == [] and cell["execution_count"] is None, f"code cell {i} has outputs: clear them"
        # magics and shell escapes would not run under exec (nor outside Jupyter)
        assert not re.search(r"^\s*[%!]", _source(cell), re.M), f"code cell {i} uses IPython syntax"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(nb_path, monkeypatch):
    monkeypatch.chdir(nb_path.parent)  # as build.py's nbclient run does
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    ns: dict[str, object] = {"__name__": "__main__"}
    try:
        for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
            exec(compile(_source(cell), f"{nb_path.name}[code cell {i}]", "exec"), ns)
    finally:
        plt.close("all")
