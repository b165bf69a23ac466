"""Build the docs site: run every example, execute the notebooks, ``mkdocs build --strict``.

``make docs`` runs this file. Three steps, each failing the build loudly:

1. every ```python block of README.md and docs/*.md runs, in order, in one fresh
   namespace per page (so a page is a runnable example from top to bottom);
2. every notebook in notebooks/ is executed with nbclient (a Jupyter kernel), and the
   executed copy is rendered to a Markdown page of the site (build/notebooks/);
3. ``mkdocs build --strict`` renders the site to build/site/ — a broken link, a
   missing page or reference, or a docstring griffe cannot parse is an error.

The same file is the mkdocs hook (``hooks:`` in mkdocs.yml): it renders the help of the
``ips-impact`` parser into docs/cli.md at build time, so that page cannot go stale,
and adds the notebooks (downloadable .ipynb, and the executed pages when step 2 ran)
to the site.

Run: make docs   (or .venv/bin/python docs/build.py [--no-run] [--no-notebooks])
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
NOTEBOOKS = ROOT / "notebooks"
EXECUTED = ROOT / "build" / "notebooks"  # executed notebooks rendered as pages (git-ignored)
CLI_MARKER = "<!-- cli-help -->"
CLI_WIDTH = 90
NOT_EXECUTED = (
    '!!! note "Outputs not shown"\n    This page was built without executing the notebook; '
    "`make docs` executes it and shows its tables and figures.\n\n"
)


def pages() -> list[Path]:
    return [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


def notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def run_page(path: Path) -> float:
    import matplotlib

    matplotlib.use("Agg")
    t = time.perf_counter()
    ns: dict[str, object] = {"__name__": f"docs.{path.stem}"}
    for i, code in enumerate(BLOCK.findall(path.read_text(encoding="utf-8"))):
        try:
            exec(compile(code, f"{path.name}[block {i + 1}]", "exec"), ns)
        except Exception as exc:  # noqa: BLE001 - report which block failed
            where = f"{path.name} block {i + 1}"
            raise SystemExit(f"docs: {where} failed: {type(exc).__name__}: {exc}") from exc
    return time.perf_counter() - t


# ------------------------------------------------------------------ command-line page


@contextlib.contextmanager
def _columns(width: int) -> Iterator[None]:
    # argparse wraps help to the terminal width; fix it so the page is the same everywhere
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def cli_sections() -> list[tuple[str, str]]:
    """``(command, help)`` for ``ips-impact`` and each subcommand, from the parser itself."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from ips_impact.cli import _parser

    parser = _parser()
    with _columns(CLI_WIDTH):
        sections = [("ips-impact", parser.format_help())]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                sections += [
                    (f"ips-impact {name}", sub.format_help())
                    for name, sub in action.choices.items()
                ]
    return sections


def cli_markdown() -> str:
    out = []
    for command, text in cli_sections():
        out.append(f"## `{command}`\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join(out)


# ------------------------------------------------------------------ notebooks


def execute_notebooks(out: Path = EXECUTED) -> None:
    """Execute every notebook with nbclient and write each as a Markdown page with its outputs."""
    import nbformat
    from nbclient import NotebookClient

    out.mkdir(parents=True, exist_ok=True)
    for nb_path in notebooks():
        nb = nbformat.read(nb_path, as_version=4)
        t = time.perf_counter()
        NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
        ).execute()
        tmp = out / f".{nb_path.stem}.md.tmp"  # a half-written page is never read by mkdocs
        tmp.write_text(notebook_markdown(nb, nb_path.name), encoding="utf-8")
        os.replace(tmp, out / f"{nb_path.stem}.md")
        print(f"docs: executed {nb_path.name} in {time.perf_counter() - t:.1f} s")


def notebook_markdown(nb: Any, filename: str) -> str:
    """A notebook as a page: its Markdown cells, its code, its text, table and figure outputs."""
    parts: list[str] = []
    button = f"[Download the notebook]({filename}){{ .md-button }}"
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            parts.append(cell.source)
            if button:  # under the first cell: the title and the question it answers
                parts.append(button)
                button = ""
            continue
        parts.append(f"```python\n{cell.source}\n```")
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(f"```text\n{output.text.rstrip()}\n```")
            elif output.output_type in ("execute_result", "display_data"):
                data = output.data
                if "image/png" in data:
                    png = data["image/png"]
                    png = png if isinstance(png, str) else base64.b64encode(png).decode()
                    src = f"data:image/png;base64,{png.strip()}"
                    parts.append(f'<img class="nb-figure" alt="figure" src="{src}">')
                elif "text/html" in data:
                    parts.append(
                        f'<div class="nb-output" markdown="0">\n{data["text/html"]}\n</div>'
                    )
                elif "text/plain" in data:
                    parts.append(f"```text\n{data['text/plain'].rstrip()}\n```")
    return "\n\n".join(parts) + "\n"


# ------------------------------------------------------------------ mkdocs hooks


def on_files(files: Any, config: Any) -> Any:
    """Ship every notebook (.ipynb) and, when they were executed, its rendered page."""
    import nbformat
    from mkdocs.structure.files import File

    for nb_path in notebooks():
        files.append(File.generated(config, f"notebooks/{nb_path.name}", abs_src_path=str(nb_path)))
        page = EXECUTED / f"{nb_path.stem}.md"
        uri = f"notebooks/{nb_path.stem}.md"
        if page.exists() and page.stat().st_mtime >= nb_path.stat().st_mtime:
            files.append(File.generated(config, uri, abs_src_path=str(page)))
        else:  # not executed since its last edit (`--no-run`): the code without outputs, and say so
            text = notebook_markdown(nbformat.read(nb_path, as_version=4), nb_path.name)
            files.append(File.generated(config, uri, content=NOT_EXECUTED + text))
    return files


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if page.file.src_uri == "cli.md":
        if CLI_MARKER not in markdown:
            raise SystemExit(
                f"docs: docs/cli.md lost its {CLI_MARKER} marker (where the parser's help goes)"
            )
        return markdown.replace(CLI_MARKER, cli_markdown())
    return markdown


# ------------------------------------------------------------------ main


def mkdocs_build(site_dir: Path | None = None) -> Path:
    """``mkdocs build --strict`` (into ``site_dir``, default build/site); the site's index page."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        NO_MKDOCS_2_WARNING="1",
    )
    t = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-q",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(site_dir or ROOT / "build" / "site"),
        ],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    # -q: only warnings and errors are printed, and in strict mode each of them fails the build
    log = (done.stdout + done.stderr).strip()
    if done.returncode:
        raise SystemExit(f"docs: mkdocs build --strict failed (exit {done.returncode}):\n{log}")
    site = (site_dir or ROOT / "build" / "site") / "index.html"
    print(f"docs: site built in {time.perf_counter() - t:.1f} s: {site}")
    return site


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--no-run",
        action="store_true",
        help="build the site only: run no example, execute no notebook",
    )
    ap.add_argument(
        "--no-notebooks", action="store_true", help="run the page examples but not the notebooks"
    )
    args = ap.parse_args(argv)
    os.chdir(ROOT)
    # this checkout's package, for the examples, the notebook kernels and mkdocs alike
    sys.path.insert(0, str(ROOT))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
    )
    if not args.no_run:
        for page in pages():
            print(f"docs: ran {page.name} in {run_page(page):.1f} s")
            import matplotlib.pyplot as plt

            plt.close("all")
        if not args.no_notebooks:
            execute_notebooks()
    mkdocs_build()
    return 0


if __name__ == "__main__":
    sys.exit(main())
