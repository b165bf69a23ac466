"""Build the docs: run every Python block of README.md and docs/*.md, render HTML.

Each Markdown file's ```python blocks run in order in one fresh namespace (so a page
is a runnable example from top to bottom); a failing block fails the build. Pages
are rendered to docs/_build/*.html. Notebooks in notebooks/ are executed when
nbclient is installed (`pip install .[docs]`).

Run: make docs   (or .venv/bin/python docs/build.py [--no-run])
"""

from __future__ import annotations

import argparse
import html
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def pages() -> list[Path]:
    return [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


def run_page(path: Path) -> float:
    import matplotlib

    matplotlib.use("Agg")
    t = time.perf_counter()
    ns: dict[str, object] = {"__name__": f"docs.{path.stem}"}
    for i, code in enumerate(BLOCK.findall(path.read_text(encoding="utf-8"))):
        try:
            exec(compile(code, f"{path.name}[block {i + 1}]", "exec"), ns)
        except Exception as exc:  # noqa: BLE001 - report which block failed
            raise SystemExit(f"docs: {path.name} block {i + 1} failed: {type(exc).__name__}: {exc}")
    return time.perf_counter() - t


def render(path: Path, out: Path) -> None:
    text = path.read_text(encoding="utf-8")
    try:
        import markdown  # type: ignore[import-not-found]

        body = markdown.markdown(text, extensions=["fenced_code", "tables"])
    except ImportError:
        body = f"<pre>{html.escape(text)}</pre>"
    out.write_text(f"<!doctype html><meta charset='utf-8'><title>{path.stem}</title>"
                   f"<body style='max-width:60em;margin:auto;font-family:sans-serif'>{body}</body>",
                   encoding="utf-8")


def run_notebooks() -> None:
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError:
        print("docs: nbclient not installed; notebooks not executed (pip install .[docs])")
        return
    for nb_path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        t = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
        print(f"docs: executed {nb_path.name} in {time.perf_counter() - t:.1f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-run", action="store_true", help="render only")
    args = ap.parse_args(argv)
    out = ROOT / "docs" / "_build"
    out.mkdir(parents=True, exist_ok=True)
    for page in pages():
        if not args.no_run:
            print(f"docs: ran {page.name} in {run_page(page):.1f} s")
        render(page, out / f"{page.stem}.html")
    if not args.no_run:
        run_notebooks()
    print(f"docs: HTML in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
