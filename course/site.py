"""Build the course as a static, offline website:  python -m course.site

Every notebook in notebooks/ (found by glob, in order) is executed at toy size on the CPU
and rendered with nbconvert (JupyterLab's own cell markup and styles, through a small
template in course/_site/templates) into build/site/:

    index.html             the home page: what the course is, how to run it, the course map
    NN_name.html           one page per notebook: prose, code, outputs, interactive figures
    instructor_guide.html  docs/instructor_guide.md, its notebook links pointing at the pages
    sections.html          every notebook's section headings, with a search box
    _static/               plotly.js (the copy inside the installed plotly package), styles,
                           the site's script: nothing is fetched from outside the site

Executed notebooks are cached in build/cache/notebooks/, keyed by the notebook's source and
a hash of the course package and assets: a second build with nothing changed only renders
(seconds). Two notebooks execute at a time (--jobs). Widgets are rendered statically at
their default values with a line saying they move in JupyterLab (see course/static.py).
Plotly figures keep hover and zoom. Formulas become MathML, which the browser draws itself
(MathJax would be fetched from a CDN); TeX outside the small subset the course uses stays
as its source.

    python -m course.site                 # build everything
    python -m course.site --only 00 07    # only these notebooks (while editing)
    python -m course.site --force         # execute again even when cached
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import html
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from course import static

PACKAGE = Path(__file__).resolve().parent
SITE_FILES = PACKAGE / "_site"
SITE_TITLE = "How DeepSeek-V3 is trained and served"
CACHE_VERSION = "1"  # bump when the execution environment below changes
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
HEADING = re.compile(r'<h([1-4]) id="([^"]+)">(.*?)<a class="anchor-link"', re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")


@dataclass
class Page:
    path: Path  # notebooks/NN_name.ipynb
    number: str  # "07"
    title: str = ""

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def html(self) -> str:
        return f"{self.stem}.html"


def default_root() -> Path:
    """The repository to build: the working directory if it has notebooks/, else the
    checkout this package lives in."""
    cwd = Path.cwd()
    return cwd if (cwd / "notebooks").is_dir() else PACKAGE.parent


def discover(root: Path, only: list[str] | None = None) -> list[Page]:
    paths = sorted((root / "notebooks").glob(NOTEBOOK_GLOB))
    if only:
        paths = [p for p in paths if any(p.stem.startswith(o) for o in only)]
    return [Page(p, p.stem[:2]) for p in paths]


# ----------------------------------------------------------------------------- execution


def package_hash(root: Path) -> str:
    """What the executed outputs depend on besides the notebook: the course package (minus
    this renderer and its templates), the shipped assets, and the environment below."""
    h = hashlib.sha256(CACHE_VERSION.encode())
    files = [p for p in sorted((root / "course").rglob("*.py"))
             if p.name != "site.py" and "__pycache__" not in p.parts]
    files += [p for p in sorted((root / "assets").rglob("*")) if p.is_file()]
    for p in files:
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def cache_path(root: Path, page: Page, pkg_hash: str) -> Path:
    key = hashlib.sha256(page.path.read_bytes() + pkg_hash.encode()).hexdigest()[:16]
    return root / "build" / "cache" / "notebooks" / f"{page.stem}-{key}.ipynb"


def kernel_env(root: Path, notebook: str) -> dict:
    env = dict(os.environ)
    env.update(COURSE_STATIC="1", COURSE_STATIC_NOTEBOOK=notebook, COURSE_SIZE="toy",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYDEVD_DISABLE_FILE_VALIDATION="1",
               COURSE_PROGRESS_FILE=str(root / "build" / "cache" / "progress.json"))
    return env


def execute(src: str, dest: str, root: str, timeout: int) -> tuple[bool, float, str]:
    """Run one notebook (in a worker process) and save it with its outputs to `dest`.
    Returns (ok, seconds, error message, the executed notebook as JSON text); a failed run
    is saved beside it as .failed."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    start = time.perf_counter()
    src_path, dest_path = Path(src), Path(dest)
    nb = nbformat.read(src_path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(src_path.parent)}})
    ok, message = True, ""
    try:
        client.execute(env=kernel_env(Path(root), src_path.name))
    except (CellExecutionError, CellTimeoutError, RuntimeError) as err:
        ok, message = False, str(err).strip().splitlines()[-1] if str(err).strip() else repr(err)
    _prune_widget_state(nb)
    dest_path.parent.mkdir(parents=True, exist_ok=True)
    target = dest_path if ok else dest_path.with_suffix(".failed")
    tmp = target.with_suffix(".tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, target)
    return ok, time.perf_counter() - start, message, nbformat.writes(nb)


def _prune_widget_state(nb) -> None:
    """Keep only the widget state that outputs show (a FigureWidget's state alone carries
    plotly's 5 MB script); LiveFigures on a static page are output as plain figures."""
    key = "application/vnd.jupyter.widget-state+json"
    states = nb.metadata.get("widgets", {}).get(key, {}).get("state", {})
    todo = [out["data"][static.WIDGET_MIME].get("model_id", "")
            for cell in nb.cells for out in cell.get("outputs", [])
            if static.WIDGET_MIME in out.get("data", {})]
    keep: dict = {}
    while todo:
        model = todo.pop()
        if model in keep or model not in states:
            continue
        keep[model] = states[model]
        todo += re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(states[model].get("state", {})))
    if keep:
        nb.metadata["widgets"][key]["state"] = keep
    else:
        nb.metadata.pop("widgets", None)


def execute_all(root: Path, pages: list[Page], jobs: int, force: bool, timeout: int,
                log=print) -> tuple[dict[str, str], dict[str, str]]:
    """Execute what is not cached, `jobs` notebooks at a time. Returns ({stem: executed
    notebook as JSON text}, {stem: error} for those that failed: rendered from their partial
    run). Notebooks are held in memory, so a concurrent build pruning the cache is harmless."""
    pkg = package_hash(root)
    done: dict[str, str] = {}
    todo: list[tuple[Page, Path]] = []
    for page in pages:
        cached = cache_path(root, page, pkg)
        if cached.exists() and not force:
            done[page.stem] = cached.read_text(encoding="utf-8")
        else:
            todo.append((page, cached))
    if done:
        log(f"cached: {len(done)} notebook(s) unchanged since their last run")
    failures: dict[str, str] = {}
    # Heavy notebooks come last in the course: start them first so two workers end together.
    todo.sort(key=lambda item: item[0].stem, reverse=True)
    if todo:
        log(f"executing {len(todo)} notebook(s), {jobs} at a time ...")
        with cf.ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(execute, str(p.path), str(dest), str(root), timeout): (p, dest)
                       for p, dest in todo}
            for fut in cf.as_completed(futures):
                page, dest = futures[fut]
                ok, seconds, message, text = fut.result()
                log(f"  {page.stem}: {'ok' if ok else 'FAILED'} in {seconds:.0f} s"
                    + ("" if ok else f" ({message})"))
                if ok:
                    for old in dest.parent.glob(f"{page.stem}-*"):
                        if old != dest and old.suffix in (".ipynb", ".failed"):
                            old.unlink()
                    done[page.stem] = text
                else:
                    failures[page.stem] = message
                    done[page.stem] = text
    return done, failures


# ----------------------------------------------------------------------------- rendering


def rewrite_links(markdown: str, stems: set[str], root_prefix: str = "") -> str:
    """Links between the course's files become links between its pages: a notebook (.ipynb
    or its .py source) -> its page, the instructor guide -> its page, the README -> home.
    Other relative links (source files) would not exist on the site: they become plain text
    naming the file in the repository."""
    def fix(match: re.Match) -> str:
        target = match.group(1)
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            return match.group(0)
        path, _, anchor = target.partition("#")
        name = Path(path).name
        stem = Path(name).stem
        suffix = f"#{anchor}" if anchor else ""
        if stem in stems and name.endswith((".ipynb", ".py")):
            return f"]({stem}.html{suffix})"
        if name == "instructor_guide.md":
            return f"](instructor_guide.html{suffix})"
        if name == "README.md":
            return f"](index.html{suffix})"
        return f"](#repo:{path})"
    text = LINK.sub(fix, markdown)
    # Links to files that are not pages: keep the words, name the file, drop the link.
    return re.sub(r"\[([^\]]+)\]\(#repo:([^)]+)\)", r"\1 (`\2` in the repository)", text)


# ----------------------------------------------------------------------------- math
# The notebooks' few formulas, as MathML (drawn by the browser itself, no MathJax to fetch).
# A small subset of TeX: what the course uses. Anything else stays as its TeX source.

GREEK = dict(alpha="α", beta="β", gamma="γ", delta="δ", epsilon="ϵ", varepsilon="ε", eta="η",
             theta="θ", lambda_="λ", mu="μ", pi="π", rho="ρ", sigma="σ", tau="τ", phi="φ",
             Delta="Δ", Sigma="Σ", Pi="Π")
SYMBOLS = {"cdot": "·", "times": "×", "dots": "…", "ldots": "…", "cdots": "⋯", "le": "≤",
           "leq": "≤", "ge": "≥", "geq": "≥", "approx": "≈", "ne": "≠", "to": "→", "in": "∈",
           "sum": "∑", "infty": "∞", "pm": "±", "propto": "∝"}
SPACES = {",": "0.17em", ";": "0.28em", " ": "0.25em", ":": "0.22em", "quad": "1em",
          "qquad": "2em", "!": "0em"}
TEX_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[0-9]+(?:\.[0-9]+)?|\S")


class _TexError(ValueError):
    pass


class _Tex:
    def __init__(self, tex: str):
        self.tex, self.i = tex, 0
        self.spans = [(m.group(0), m.start(), m.end()) for m in TEX_TOKEN.finditer(tex)]
        self.tokens = [t for t, _, _ in self.spans]

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self):
        tok = self.peek()
        if tok is None:
            raise _TexError("unexpected end")
        self.i += 1
        return tok

    def raw_group(self) -> str:
        """The text of a {...} argument, as written (for \text and friends)."""
        if self.take() != "{":
            raise _TexError("expected {")
        start, depth = self.spans[self.i - 1][2], 1
        while True:
            tok = self.take()
            depth += (tok == "{") - (tok == "}")
            if depth == 0:
                return self.tex[start:self.spans[self.i - 1][1]]

    def row(self, until: str | None = None) -> str:
        parts = []
        while self.peek() is not None and self.peek() != until:
            parts.append(self.scripted())
        if until is not None:
            self.take()
        return "".join(parts)

    def scripted(self) -> str:
        base = self.atom()
        sub = sup = None
        while self.peek() in ("_", "^", "'"):
            tok = self.take()
            if tok == "'":
                sup = "<mo>′</mo>"
            elif tok == "_":
                sub = self.atom()
            else:
                sup = self.atom()
        if sub is not None and sup is not None:
            return f"<msubsup><mrow>{base}</mrow><mrow>{sub}</mrow><mrow>{sup}</mrow></msubsup>"
        if sub is not None:
            return f"<msub><mrow>{base}</mrow><mrow>{sub}</mrow></msub>"
        if sup is not None:
            return f"<msup><mrow>{base}</mrow><mrow>{sup}</mrow></msup>"
        return base

    def atom(self) -> str:
        tok = self.take()
        if tok == "{":
            return f"<mrow>{self.row('}')}</mrow>"
        if tok.startswith("\\"):
            return self.command(tok[1:])
        if tok[0].isdigit():
            return f"<mn>{tok}</mn>"
        if tok.isalpha():
            return f"<mi>{html.escape(tok)}</mi>"
        if tok in "}_^":
            raise _TexError(f"unexpected {tok}")
        return f"<mo>{html.escape(tok)}</mo>"

    def command(self, name: str) -> str:
        if name == "frac":
            num, den = self.atom(), self.atom()
            return f"<mfrac><mrow>{num}</mrow><mrow>{den}</mrow></mfrac>"
        if name in ("text", "mathrm", "textrm", "operatorname"):
            variant = "" if name == "text" else ' mathvariant="normal"'
            tag = "mtext" if name == "text" else "mi"
            return f"<{tag}{variant}>{html.escape(self.raw_group())}</{tag}>"
        if name == "mathbb":
            return f'<mi mathvariant="double-struck">{html.escape(self.raw_group())}</mi>'
        if name == "hat":
            return f'<mover accent="true"><mrow>{self.atom()}</mrow><mo>^</mo></mover>'
        if name in ("min", "max", "log", "exp"):
            return f"<mi>{name}</mi>"
        if name in ("big", "Big", "left", "right"):
            return ""
        if name in SPACES:
            return f'<mspace width="{SPACES[name]}"></mspace>'
        if name in SYMBOLS:
            return f"<mo>{SYMBOLS[name]}</mo>"
        if name in GREEK or f"{name}_" in GREEK:
            return f"<mi>{GREEK.get(name) or GREEK[name + '_']}</mi>"
        raise _TexError(f"unknown command \\{name}")


def tex_to_mathml(tex: str, display: bool = False) -> str | None:
    """MathML for a formula in the course's TeX subset; None when it is outside it."""
    try:
        body = _Tex(tex).row()
    except _TexError:
        return None
    block = ' display="block"' if display else ""
    return f"<math{block}><mrow>{body}</mrow></math>"


DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
# Pandoc's rule for inline math: no space after the opening $ nor before the closing one,
# and no digit right after it, so "$5.6 M at $2" stays money.
INLINE_MATH = re.compile(r"(?<![\\$\w])\$(?![\s$])([^$\n]+?)(?<![\s\\])\$(?![\d$])")
CODE_SPANS = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)


def markdown_math(markdown: str) -> str:
    """Formulas in a markdown text become MathML; code spans and money are left alone."""
    def display(m):
        return tex_to_mathml(m.group(1).strip(), display=True) or m.group(0)

    def inline(m):
        return tex_to_mathml(m.group(1)) or m.group(0)

    parts = CODE_SPANS.split(markdown)
    for k in range(0, len(parts), 2):  # even parts are outside code
        parts[k] = INLINE_MATH.sub(inline, DISPLAY_MATH.sub(display, parts[k]))
    return "".join(parts)


def _notebook_title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return ""


def _static_outputs(nb) -> bool:
    """Replace widget views and plotly mime outputs by static HTML; True if figures remain."""
    states = nb.metadata.get("widgets", {}).get(
        "application/vnd.jupyter.widget-state+json", {}).get("state", {})
    has_figures = False
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            data = out.get("data")
            if not data:
                continue
            if static.WIDGET_MIME in data or static.PLOTLY_MIME in data:
                rendered = static.render_data(dict(data), states, static.figure_div)
                if static.WIDGET_MIME in data and "course-static-note" not in rendered:
                    rendered += static.static_note(nb.metadata.get("course_notebook", ""))
                out["data"] = {"text/html": rendered}
                out.get("metadata", {}).clear()
            html_out = out["data"].get("text/html", "")
            if "course-plotly-data" in (html_out if isinstance(html_out, str)
                                        else "".join(html_out)):
                has_figures = True
    nb.metadata.pop("widgets", None)
    return has_figures


def _plain(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def headings(body: str, page_html: str) -> list[dict]:
    """(level, id, text) of every h1-h4 in a rendered page, with the prose that follows it
    (plain text, for the search box)."""
    found = list(HEADING.finditer(body))
    out = []
    for i, m in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(body)
        section = body[m.end():end]
        prose = " ".join(_plain(p) for p in re.findall(r"<(?:p|li)>(.*?)</(?:p|li)>", section,
                                                         re.S))
        out.append(dict(level=int(m.group(1)), id=m.group(2), text=_plain(m.group(3)),
                        href=f"{page_html}#{m.group(2)}",
                        prose=re.sub(r"\s+", " ", prose)[:1500]))
    return out


class Renderer:
    def __init__(self, root: Path, out: Path, pages: list[Page]):
        import jinja2
        from nbconvert import HTMLExporter

        self.root, self.out, self.pages = root, out, pages
        self.stems = {p.stem for p in pages}
        self.exporter = HTMLExporter(template_name="course_page",
                                     extra_template_basedirs=[str(SITE_FILES / "templates")],
                                     exclude_anchor_links=False)
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(SITE_FILES)),
                                 autoescape=False)
        self.layout = env.get_template("layout.html.j2")
        self.pygments_css = ""
        self.index: list[dict] = []
        self.footer = ("Built by <code>python -m course.site</code>: every notebook executed "
                       "at toy size on a CPU. Figures respond to hover and zoom; the sliders "
                       "move in JupyterLab.")

    def page(self, name: str, title: str, content: str, current: str = "", prev=None,
             nxt=None, has_figures: bool = False, body_class: str = "") -> None:
        text = self.layout.render(title=title, site_title=SITE_TITLE, pages=self.pages,
                                  current=current, content=content, prev=prev, next=nxt,
                                  has_figures=has_figures, body_class=body_class,
                                  footer=self.footer)
        (self.out / name).write_text(text, encoding="utf-8")

    def markdown(self, text: str) -> str:
        from nbconvert.filters.markdown_mistune import markdown2html_mistune

        return markdown2html_mistune(markdown_math(rewrite_links(text, self.stems)))

    def notebook(self, i: int, executed: str, guide_ids: dict[str, str],
                 failed: bool = False) -> None:
        import nbformat

        page = self.pages[i]
        nb = nbformat.reads(executed, as_version=4)
        nb.metadata["course_notebook"] = page.path.name
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = markdown_math(rewrite_links(cell.source, self.stems))
        has_figures = _static_outputs(nb)
        body, resources = self.exporter.from_notebook_node(nb)
        # Outputs may link notebooks too (tables the course's code builds): point them at pages.
        body = re.sub(r'href="(?:\.\./notebooks/|notebooks/)?(\d\d_\w+)\.(?:ipynb|py)',
                      lambda m: f'href="{m.group(1)}.html' if m.group(1) in self.stems
                      else m.group(0), body)
        if not self.pygments_css:
            self.pygments_css = "\n".join(resources.get("inlining", {}).get("css", []))
        guide = guide_ids.get(page.number)
        guide_link = (f' · <a href="instructor_guide.html#{guide}">instructor notes</a>'
                      if guide else "")
        banner = (f'<div class="run-it">This page is <code>notebooks/{page.path.name}</code> '
                  'executed at toy size on a CPU. The figures respond to hover and zoom; to move '
                  f'the sliders, open it in JupyterLab: <code>pip install -e . &amp;&amp; '
                  f'jupyter lab notebooks/{page.path.name}</code>{guide_link}.</div>')
        if failed:
            banner += ('<div class="run-it" style="border-color:#c53030">This notebook did not '
                       'run to the end when the site was built: its outputs stop at the error '
                       'shown below.</div>')
        content = f'{banner}<div class="jp-Notebook">{body}</div>'
        prev = self.pages[i - 1] if i > 0 else None
        nxt = self.pages[i + 1] if i + 1 < len(self.pages) else None
        self.page(page.html, f"{page.number} · {page.title}", content, page.html, prev, nxt,
                  has_figures, "notebook-page")
        for h in headings(body, page.html):
            self.index.append(dict(h, page=page.html, page_title=f"{page.number} · {page.title}"))

    def guide(self) -> dict[str, str]:
        """The instructor guide as a page; returns {notebook number: heading id}."""
        src = self.root / "docs" / "instructor_guide.md"
        if not src.exists():
            return {}
        body = self.markdown(src.read_text(encoding="utf-8"))
        self.page("instructor_guide.html", "Instructor guide",
                  f'<div class="prose jp-RenderedHTMLCommon">{body}</div>', "instructor_guide.html")
        ids = {}
        for h in headings(body, "instructor_guide.html"):
            self.index.append(dict(h, page="instructor_guide.html",
                                   page_title="Instructor guide"))
            m = re.match(r"(\d\d) ·", h["text"])
            if m and h["level"] == 2:
                ids[m.group(1)] = h["id"]
        return ids

    def home(self) -> None:
        readme = (self.root / "README.md").read_text(encoding="utf-8")
        sections = _readme_sections(readme)
        intro = sections.get("", "")
        intro = "\n".join(line for line in intro.splitlines() if not line.startswith("# "))
        table = "\n".join(line for line in sections.get("The course map", "").splitlines()
                          if line.startswith("|"))
        listed = set(re.findall(r"notebooks/(\d\d_[A-Za-z0-9_]+)\.ipynb", table))
        missing = [p for p in self.pages if p.stem not in listed]
        extra = ""
        if missing:
            extra = "\n\nAlso in this build:\n\n" + "\n".join(
                f"- [{p.number} · {p.title}]({p.stem}.ipynb)" for p in missing)
        run = sections.get("Two commands", "")
        first = self.pages[0] if self.pages else None
        start = (f'<p class="start"><a href="{first.html}">Start reading: {first.number} · '
                 f"{html.escape(first.title)} →</a></p>" if first else "")
        content = (f'<div class="prose jp-RenderedHTMLCommon"><h1>{SITE_TITLE}</h1>'
                   f"{self.markdown(intro)}{start}"
                   '<p class="run-it">This website is the course executed at toy size on a '
                   "CPU: prose, code, outputs and interactive figures (hover, zoom). The "
                   "sliders move only in JupyterLab, where every one drives a real "
                   "computation; see <a href=\"#run-it-yourself\">Run it yourself</a>.</p>"
                   f'<h2 id="course-map">The course map</h2>{self.markdown(table + extra)}'
                   '<p>Also: the <a href="instructor_guide.html">instructor guide</a> '
                   '(goals, timing, discussion questions, workshop plans) and '
                   '<a href="sections.html">every section of every notebook</a>, searchable.</p>'
                   f'<h2 id="run-it-yourself">Run it yourself</h2>{self.markdown(run)}</div>')
        self.page("index.html", "Home", content, "index.html", nxt=first, body_class="home")

    def sections(self) -> None:
        items = []
        by_page: dict[str, list[dict]] = {}
        for entry in self.index:
            by_page.setdefault(entry["page"], []).append(entry)
        for page in [p.html for p in self.pages] + ["instructor_guide.html"]:
            entries = by_page.get(page, [])
            if not entries:
                continue
            title = html.escape(entries[0]["page_title"])
            subs = "".join(f'<li class="level-{e["level"]}"><a href="{e["href"]}">'
                           f'{html.escape(e["text"])}</a></li>'
                           for e in entries if e["level"] > 1)
            items.append(f'<li><a href="{page}"><b>{title}</b></a><ol>{subs}</ol></li>')
        data = [dict(href=e["href"], heading=e["text"], page_title=e["page_title"],
                     text=e["prose"]) for e in self.index]
        blob = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
        content = ('<div class="prose"><h1>Every section</h1>'
                   '<p><input id="search-input" type="search" placeholder="Search headings and '
                   'prose (e.g. bubble, FP8, MaxVio)" aria-label="Search" style="width:100%;'
                   'padding:0.4rem;font:inherit"></p><div id="search-results" hidden></div>'
                   f'<ol class="sections-index">{"".join(items)}</ol></div>'
                   f'<script type="application/json" id="search-data">{blob}</script>')
        self.page("sections.html", "Every section", content, "sections.html")

    def static_files(self) -> None:
        import plotly

        dest = self.out / "_static"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
                    dest / "plotly.min.js")
        for name in ("style.css", "site.js"):
            shutil.copy(SITE_FILES / name, dest / name)
        lab = _lab_static()
        (dest / "notebook.css").write_text(
            (lab / "index.css").read_text() + "\n" + (lab / "theme-light.css").read_text())
        (dest / "pygments.css").write_text(self.pygments_css)
        (self.out / ".nojekyll").write_text("")  # GitHub Pages: serve _static/ as it is


def _lab_static() -> Path:
    from jupyter_core.paths import jupyter_path

    for base in jupyter_path("nbconvert", "templates"):
        candidate = Path(base) / "lab" / "static"
        if (candidate / "index.css").exists():
            return candidate
    raise FileNotFoundError("nbconvert's lab template (static/index.css) is not installed")


def _readme_sections(text: str) -> dict[str, str]:
    """README.md split at its level-2 headings: {heading: body}, "" for the part before."""
    out, name, lines = {}, "", []
    for line in text.splitlines():
        if line.startswith("## "):
            out[name] = "\n".join(lines)
            name, lines = line[3:].strip(), []
        else:
            lines.append(line)
    out[name] = "\n".join(lines)
    return out


def build(root: Path | None = None, out: Path | None = None, only: list[str] | None = None,
          jobs: int = 2, force: bool = False, timeout: int = 600, log=print) -> dict:
    """Execute (or reuse) and render every notebook; return a summary with timings."""
    import nbformat

    root = (root or default_root()).resolve()
    out = (out or root / "build" / "site").resolve()
    start = time.perf_counter()
    pages = discover(root, only)
    if not pages:
        raise SystemExit(f"no notebooks matching {NOTEBOOK_GLOB} in {root / 'notebooks'}")
    for page in pages:
        title = _notebook_title(nbformat.read(page.path, as_version=4)) or page.stem
        page.title = re.sub(r"^\d\d\s*[·.:-]\s*", "", title)  # the number is shown apart
    executed, failures = execute_all(root, pages, jobs, force, timeout, log)
    t_exec = time.perf_counter() - start
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    r = Renderer(root, out, pages)
    guide_ids = r.guide()
    for i, page in enumerate(pages):
        r.notebook(i, executed[page.stem], guide_ids, page.stem in failures)
    r.home()
    r.sections()
    r.static_files()
    total = time.perf_counter() - start
    log(f"site: {out / 'index.html'} ({len(pages)} notebooks; executed in {t_exec:.0f} s, "
        f"total {total:.0f} s)")
    return dict(out=out, pages=[p.html for p in pages], failures=failures,
                execute_seconds=t_exec, total_seconds=total)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.site", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", metavar="NN",
                        help="build only notebooks whose names start with these (e.g. 00 07)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed at once")
    parser.add_argument("--force", action="store_true", help="execute even when cached")
    parser.add_argument("--out", type=Path, help="output folder (default build/site)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    result = build(out=args.out, only=args.only, jobs=args.jobs, force=args.force,
                   timeout=args.timeout)
    if result["failures"]:
        print("notebooks that failed (their pages show the error): "
              + ", ".join(sorted(result["failures"])), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
