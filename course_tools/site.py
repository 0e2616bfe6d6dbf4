"""The course as a static website, with the twin view: ``course site`` writes ``build/site/``.

    course site                        # build/site/index.html: open it in a browser
    course site --out public           # somewhere else
    python3 course.py site             # the same from a fresh clone

nbconvert renders every notebook's cells with the outputs stored in it (nothing is executed);
this module composes the pages around them:

- one **twin page** per concept and notebook set (``notebooks/05_training/index.html``): the
  PyTorch and TensorFlow notebooks side by side, aligned section by section by their ``##``
  and ``###`` headings, with a switch to a single track, and the "where they differ" notes
  (a markdown paragraph starting ``> **Where they differ:**``) highlighted and listed;
- one page per notebook (``notebooks/05_training/pytorch.html``), with links to its twin, to
  Colab, and to the source notebook (a copy sits beside the page, and on GitHub);
- the concept index with every section of every notebook, a search page, and the latest run
  report (``build/run/report.html``) when there is one.

The site loads nothing from the network when it is read: no CDN, no web fonts, no MathJax
(the course writes no LaTeX; math would show as its TeX source), so it works opened from
``file://`` and from any static host.
"""

import difflib
import html
import json
import posixpath
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from course_utils.errors import CourseError

from . import notebooks, template

ASSETS = Path(__file__).resolve().parent / "site_assets"
CELL_MARKER = "<!--course-site-cell-->"
SITE_MARKER = ".course-site"  # marks a folder as a built site, which a new build may replace
TITLE = "PyTorch and TensorFlow, side by side"
SET_LABELS = {"notebooks": "Lesson", "solutions": "Worked exercises", "exercises": "Exercises"}
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
DIFFER_RE = re.compile(r"^>\s*\*\*Where they differ(?::\*\*|\*\*:)\s*(.*)$")
DIFFER_HTML_RE = re.compile(r"<blockquote>(\s*<p>\s*<strong>Where they differ:?</strong>)")
REPORT_FILES = ("report.html", "report.md", "records.json", "summary.json")


@dataclass
class Section:
    """One section of a rendered notebook: from a heading to the next one."""

    heading: str | None  # "## 1. The data pipeline"; None for the part before the first heading
    anchor: str  # the heading's id in the page ("intro" for the part before it)
    html: str
    text: str  # plain text, for search
    notes: list = field(default_factory=list)  # "where they differ" sentences


@dataclass
class Rendered:
    """One notebook, rendered and cut into sections."""

    entry: notebooks.Entry
    title: str
    sections: list

    @property
    def page(self):
        return f"{self.entry.set}/{self.entry.concept}/{self.entry.track}.html"

    @property
    def source(self):
        return f"{self.entry.set}/{self.entry.concept}/{self.entry.track}.ipynb"


@dataclass
class Built:
    """What a build wrote: the folder, its pages (relative paths), seconds taken, warnings."""

    out: Path
    pages: list
    seconds: float
    warnings: list
    report: str | None


# ---------------------------------------------------------------- notebooks into sections


def heading_of(line, levels=(2, 3)):
    """Return ``"## text"`` when ``line`` is a markdown heading of one of ``levels``, else None."""
    match = HEADING_RE.match(line)
    if match and len(match.group(1)) in levels:
        return f"{match.group(1)} {match.group(2)}"
    return None


def split_at_headings(source, levels=(2, 3)):
    """Return the markdown ``source`` cut before every heading of ``levels`` (outside code fences)."""
    chunks, current, in_code = [], [], False
    for line in source.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and heading_of(line, levels) and any(s.strip() for s in current):
            chunks.append("\n".join(current).strip("\n"))
            current = []
        current.append(line)
    if any(s.strip() for s in current) or not chunks:
        chunks.append("\n".join(current).strip("\n"))
    return chunks


def split_cells(nb):
    """Return a copy of ``nb`` whose markdown cells each hold at most one ``##``/``###`` heading, first."""
    import copy

    import nbformat.v4 as nbf

    out = copy.deepcopy(nb)
    cells = []
    for cell in out.cells:
        chunks = split_at_headings(cell.source) if cell.cell_type == "markdown" else [None]
        if len(chunks) == 1:
            cells.append(cell)
            continue
        for k, chunk in enumerate(chunks):
            part = nbf.new_markdown_cell(chunk, metadata=copy.deepcopy(cell.metadata))
            part.id = f"{cell.get('id', 'cell')}-{k}"
            if "attachments" in cell:
                part.attachments = cell.attachments
            cells.append(part)
    out.cells = cells
    return out


def starts_section(cell):
    """Return the heading a markdown cell starts with (``"## ..."``), or None."""
    if cell.cell_type != "markdown":
        return None
    first = next((line for line in cell.source.splitlines() if line.strip()), "")
    return heading_of(first)


def group_sections(cells):
    """Return ``[(heading or None, [cell indices])]``: the cells from one heading to the next."""
    groups = [(None, [])]
    for i, cell in enumerate(cells):
        heading = starts_section(cell)
        if heading:
            groups.append((heading, []))
        groups[-1][1].append(i)
    return groups if groups[0][1] else groups[1:]


def differ_notes(markdown):
    """Return the "where they differ" sentences of a markdown text (``> **Where they differ:** ...``)."""
    notes, current = [], None
    for line in markdown.splitlines():
        match = DIFFER_RE.match(line.strip())
        if match:
            current = [match.group(1).strip()]
            notes.append(current)
        elif current is not None and line.strip().startswith(">") and line.strip(">").strip():
            current.append(line.strip().lstrip(">").strip())
        else:
            current = None
    return [" ".join(parts) for parts in notes]


def mark_differ_notes(page_html):
    """Return the HTML with each "where they differ" blockquote given the class ``differ``."""
    return DIFFER_HTML_RE.sub(r'<blockquote class="differ">\1', page_html)


def plain_text(markdown):
    """Return markdown as plain words (links, emphasis, tags and code fences stripped), for search."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", markdown)  # images
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"^```.*$|[*_`#>|]", " ", text, flags=re.M)
    return re.sub(r"\s+", " ", text).strip()


# ---------------------------------------------------------------- outputs the site shows


def widget_names():
    """Return the class names of ipywidgets' widgets (their stored text starts with one)."""
    try:
        import ipywidgets
    except ImportError:  # the site still builds; widget outputs then show as their text
        return {"interactive"}
    return {
        name
        for name, obj in vars(ipywidgets).items()
        if isinstance(obj, type) and issubclass(obj, ipywidgets.DOMWidget)
    } | {"interactive"}


WIDGET_NOTE = (
    '<div class="course-widget" role="note">An interactive control (ipywidgets) is here: run '
    "the notebook in JupyterLab or Colab to use it.</div>"
)


def replace_widget_outputs(nb, names):
    """Replace stored widget outputs (only their text repr survives) with a note, in place; return nb.

    Widget state is not stored in the course's notebooks, so a slider shows as text such as
    ``IntSlider(value=256, ...)``. Consecutive widget outputs of a cell become one note.
    """
    pattern = re.compile(rf"^({'|'.join(sorted(map(re.escape, names)))})\(")
    for cell in nb.cells:
        kept, previous_was_widget = [], False
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            data.pop("application/vnd.jupyter.widget-view+json", None)
            is_widget = set(data) == {"text/plain"} and pattern.match(data["text/plain"])
            if is_widget:
                if not previous_was_widget:
                    output["data"] = {"text/html": WIDGET_NOTE, "text/plain": data["text/plain"]}
                    kept.append(output)
            else:
                kept.append(output)
            previous_was_widget = bool(is_widget)
        if "outputs" in cell:
            cell.outputs = kept
    return nb


# ---------------------------------------------------------------- links and images


def github_url(path):
    """Return the address of a file of the course on GitHub."""
    return f"https://github.com/{template.REPOSITORY}/blob/main/{path}"


@dataclass
class Links:
    """What a relative link may point at: the course's notebooks, concepts and the checkout."""

    root: Path
    concepts: set
    copy: dict = field(default_factory=dict)  # site path -> repository file to copy there
    warnings: list = field(default_factory=list)

    def target(self, source_dir, url):
        """Return ``(kind, site_or_repo_path, fragment)`` for a relative link from ``source_dir``."""
        path, _, fragment = url.partition("#")
        resolved = posixpath.normpath(posixpath.join(source_dir, path))
        parts = resolved.split("/")
        if resolved.startswith(".."):
            return "outside", resolved, fragment
        if len(parts) >= 2 and parts[0] in notebooks.SETS and notebooks.CONCEPT_RE.match(parts[1]):
            if parts[1] not in self.concepts:
                return "future", resolved, fragment
            if len(parts) == 2:
                return "page", f"{parts[0]}/{parts[1]}/index.html", fragment
            if len(parts) == 3 and parts[2].endswith(".ipynb"):
                track = parts[2].removesuffix(".ipynb")
                if track in notebooks.TRACKS:
                    return "page", f"{parts[0]}/{parts[1]}/{track}.html", fragment
        if (self.root / resolved).is_file():
            return "file", resolved, fragment
        if (self.root / resolved).is_dir():
            return "folder", resolved, fragment
        return "missing", resolved, fragment


A_RE = re.compile(r'<a\b([^>]*?)\shref="([^"]*)"([^>]*)>(.*?)</a>', re.S)
IMG_RE = re.compile(r"<img\b[^>]*>")
SRC_RE = re.compile(r'\ssrc="([^"]*)"')
ALT_RE = re.compile(r'\salt="([^"]*)"')
EXTERNAL = ("http:", "https:", "mailto:", "data:", "#", "//")


def rewrite_links(page_html, source_dir, links, asset_base):
    """Return the HTML of notebook cells with its relative links pointed at the site's pages.

    A link to a notebook goes to its page, to a concept folder to its twin page, to another
    file of the checkout to GitHub; a link to a concept not yet in the course becomes plain
    text. External images (which the site never loads) become a link with their alt text,
    except the Colab badge, which the site carries. ``asset_base`` is the page's way to
    ``assets/``.
    """

    def anchor(match):
        before, url, after, text = match.group(1), html.unescape(match.group(2)), *match.group(3, 4)
        if url.startswith(EXTERNAL) or not url:
            return match.group(0)
        kind, path, fragment = links.target(source_dir, url)
        hash_ = f"#{fragment}" if fragment else ""
        if kind == "page":
            new = posixpath.relpath(path, source_dir) + hash_
        elif kind in ("file", "folder"):
            new = github_url(path) + hash_
        elif kind == "future":
            return f'<span class="not-yet" title="not part of the course yet">{text}</span>'
        else:
            links.warnings.append(f"{source_dir}: link to {url!r} points at nothing ({path})")
            return match.group(0)
        return f'<a{before} href="{html.escape(new)}"{after}>{text}</a>'

    def image(match):
        tag = match.group(0)
        src = SRC_RE.search(tag)
        url = html.unescape(src.group(1)) if src else ""
        if url == COLAB_BADGE:
            return tag.replace(src.group(0), f' src="{asset_base}/colab-badge.svg"')
        if url.startswith(("http:", "https:", "//")):
            alt = ALT_RE.search(tag)
            label = alt.group(1) if alt else "image"
            links.warnings.append(f"{source_dir}: external image {url} shown as a link")
            return f'<a class="offline-image" href="{html.escape(url)}">[{label}]</a>'
        if url and not url.startswith("data:"):
            kind, path, _ = links.target(source_dir, url)
            if kind == "file":
                links.copy[path] = links.root / path
            else:
                links.warnings.append(f"{source_dir}: image {url!r} not found ({path})")
        return tag

    return IMG_RE.sub(image, A_RE.sub(anchor, page_html))


ID_RE = re.compile(r'\sid="([^"]*)"')


def prefix_ids(page_html, prefix):
    """Return the HTML with every ``id`` prefixed (two notebooks on one page share heading ids)."""
    return ID_RE.sub(lambda m: f' id="{prefix}{m.group(1)}"', page_html)


HEADING_ID_RE = re.compile(r'<h[1-6][^>]*\sid="([^"]*)"')


def heading_anchor(section_html):
    """Return the id nbconvert gave the section's first heading, or None."""
    match = HEADING_ID_RE.search(section_html)
    return html.unescape(match.group(1)) if match else None


def with_heading_anchor(section_html, anchor):
    """Return the section's HTML with its first heading's id set to ``anchor``."""
    match = HEADING_ID_RE.search(section_html)
    if not match:
        return section_html
    return section_html[: match.start(1)] + html.escape(anchor) + section_html[match.end(1) :]


# ---------------------------------------------------------------- rendering


def exporter():
    """Return nbconvert's HTML exporter with the course's cell template (JupyterLab's markup)."""
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="course_cells",
        extra_template_basedirs=[str(ASSETS / "nbconvert")],
    )


def render_cells(export, nb):
    """Return the HTML of each cell of ``nb`` (a list as long as ``nb.cells``) and the resources."""
    body, resources = export.from_notebook_node(nb)
    pieces = body.split(CELL_MARKER)[1:]
    if len(pieces) != len(nb.cells):
        raise CourseError(f"rendered {len(pieces)} cells for a notebook of {len(nb.cells)}")
    return pieces, resources


def notebook_title(nb):
    """Return the text of the notebook's ``#`` title (its first line), or ''."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                match = HEADING_RE.match(line)
                if match and len(match.group(1)) == 1:
                    return match.group(2)
    return ""


def concept_title(title):
    """Return a notebook title without its track: '05 · Training end to end: PyTorch' -> '05 · Training end to end'."""
    return re.sub(r":\s*(PyTorch|TensorFlow)\b.*$", "", title).strip()


def cell_text(cell, code_chars=400):
    """Return a cell's searchable text: markdown as words, the start of code as written."""
    if cell.cell_type == "markdown":
        return plain_text(cell.source)
    if cell.cell_type == "code":
        return re.sub(r"\s+", " ", cell.source[:code_chars])
    return ""


def render_notebook(export, entry, links, widgets):
    """Return the :class:`Rendered` notebook of a course :class:`~notebooks.Entry`."""
    nb = replace_widget_outputs(split_cells(notebooks.read(entry.path)), widgets)
    pieces, _ = render_cells(export, nb)
    source_dir = f"{entry.set}/{entry.concept}"
    sections, seen = [], set()
    for heading, indices in group_sections(nb.cells):
        body = "".join(pieces[i] for i in indices)
        body = mark_differ_notes(rewrite_links(body, source_dir, links, "../../assets"))
        anchor = (heading_anchor(body) if heading else "intro") or "section"
        if anchor in seen:  # the same heading twice: nbconvert gives both the same id
            while anchor in seen:
                anchor += "-"
            body = with_heading_anchor(body, anchor)
        seen.add(anchor)
        markdown = "\n".join(
            nb.cells[i].source for i in indices if nb.cells[i].cell_type == "markdown"
        )
        text = " ".join(cell_text(nb.cells[i]) for i in indices)
        sections.append(Section(heading, anchor, body, text, differ_notes(markdown)))
    return Rendered(entry, notebook_title(nb), sections)


def notebook_css(export):
    """Return the CSS of nbconvert's lab template (JupyterLab's look, light theme) and Pygments."""
    import nbformat.v4 as nbf

    env = export.environment
    parts = [
        env.loader.get_source(env, f"static/{name}")[0] for name in ("index.css", "theme-light.css")
    ]
    _, resources = export.from_notebook_node(nbf.new_notebook())  # holds the Pygments CSS
    return "\n".join(parts + resources.get("inlining", {}).get("css", []))


# ---------------------------------------------------------------- twin view


def align(left, right):
    """Return ``[(i, j)]`` pairing two heading lists in order; None where one side lacks it."""
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    pairs = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            pairs += list(zip(range(i1, i2), range(j1, j2), strict=True))
        else:
            pairs += [(i, None) for i in range(i1, i2)] + [(None, j) for j in range(j1, j2)]
    return pairs


@dataclass
class Row:
    """One row of the twin view: a section in each track (None where a track lacks it)."""

    anchor: str
    heading: str | None
    cells: dict  # track -> section HTML or None


def column_html(section_html, track, row_anchors):
    """Return a section's HTML for its twin-view column: ids prefixed with the track, and links
    to them following, except links to a section, which go to the shared row."""
    own = {html.unescape(i) for i in ID_RE.findall(section_html)}
    prefixed = prefix_ids(section_html, f"{track}-")

    def local(match):
        target = html.unescape(match.group(1))
        if target in own and target not in row_anchors:
            return f'href="#{track}-{match.group(1)}"'
        return match.group(0)

    return re.sub(r'href="#([^"]*)"', local, prefixed)


def twin_rows(pair):
    """Return the :class:`Row` list of a twin pair ``{track: Rendered}``, aligned by heading."""
    left, right = (pair[t].sections for t in notebooks.TRACKS)
    pairs = align([s.heading for s in left], [s.heading for s in right])
    anchors = {s.anchor for s in left + right}
    rows = []
    for i, j in pairs:
        first = left[i] if i is not None else right[j]
        cells = {
            track: column_html(side[k].html, track, anchors) if k is not None else None
            for track, side, k in zip(notebooks.TRACKS, (left, right), (i, j), strict=True)
        }
        rows.append(Row(first.anchor, first.heading, cells))
    return rows


def twin_notes(pair):
    """Return ``[(anchor, heading, note)]``: the "where they differ" notes of both tracks, once each."""
    found, seen = [], set()
    for track in notebooks.TRACKS:
        for section in pair[track].sections:
            for note in section.notes:
                if note not in seen:
                    seen.add(note)
                    found.append((section.anchor, section.heading, note))
    return found


# ---------------------------------------------------------------- pages


def page_base(page):
    """Return the relative way from a page (``a/b/c.html``) back to the site's root (``../..``)."""
    return posixpath.relpath(".", posixpath.dirname(page) or ".")


def environment():
    """Return the Jinja environment of the site's page templates."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(ASSETS / "templates")),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["inline_code"] = inline_code
    return env


def inline_code(text):
    """Return escaped HTML of a one-line markdown text with its `code` spans as <code>."""
    from markupsafe import Markup, escape

    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


def write_page(env, out, page, template_name, **context):
    """Render a page template to ``out/page``; return ``page``."""
    target = out / page
    target.parent.mkdir(parents=True, exist_ok=True)
    base = page_base(page)
    target.write_text(
        env.get_template(template_name).render(base=base, **context), encoding="utf-8"
    )
    return page


def heading_label(heading):
    """Return a heading without its ``#`` marks."""
    return heading.lstrip("#").strip() if heading else "Introduction"


def search_entries(course):
    """Return the search index: one entry per section of every twin page."""
    entries = []
    for concept, sets in course.items():
        for set_name, pair in sets.items():
            twin = f"{set_name}/{concept}/index.html"
            for row in twin_rows(pair):
                texts = [
                    s.text
                    for t in notebooks.TRACKS
                    for s in pair[t].sections
                    if s.anchor == row.anchor
                ]
                entries.append(
                    {
                        "u": f"{twin}#{row.anchor}",
                        "h": heading_label(row.heading),
                        "c": concept_title(pair["pytorch"].title),
                        "s": SET_LABELS[set_name],
                        "x": " ".join(dict.fromkeys(texts))[:4000],
                    }
                )
    return entries


def copy_report(report_dir, out):
    """Copy the latest run report into ``out/report/``; return its page path, or None when absent.

    ``report.html`` is copied as it is (plus a link back to the course); a report that has only
    ``report.md`` is rendered into a page. Its charts and data files come along.
    """
    report_dir = Path(report_dir) if report_dir else None
    has = {name: bool(report_dir) and (report_dir / name).is_file() for name in REPORT_FILES}
    if not (has["report.html"] or has["report.md"]):
        return None
    target = out / "report"
    target.mkdir(parents=True, exist_ok=True)
    for item in report_dir.iterdir():
        if item.name in REPORT_FILES or item.suffix == ".png":
            shutil.copy2(item, target / item.name)
    if has["report.html"]:
        page = with_site_links((target / "report.html").read_text(encoding="utf-8"))
    else:
        page = report_page_from_markdown((target / "report.md").read_text(encoding="utf-8"))
    (target / "report.html").write_text(page, encoding="utf-8")
    return "report/report.html"


def with_site_links(page):
    """Return a report page, as it is, plus a link back to the course and an empty icon (so that
    no browser asks the host for /favicon.ico)."""
    back = '<p class="course-site-back"><a href="../index.html">&larr; the course</a></p>\n'
    at = page.find("<h1")
    page = page[:at] + back + page[at:] if at >= 0 else back + page
    icon = '<link rel="icon" href="data:,">'
    charset = re.search(r"<meta charset=[^>]*>", page)
    at = charset.end() if charset else 0
    return page[:at] + icon + page[at:]


def report_page_from_markdown(markdown):
    """Return a page for a report that exists only as markdown (its images sit beside it)."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return with_site_links(
        '<!doctype html><meta charset="utf-8"><title>Course run report</title>'
        '<link rel="stylesheet" href="../assets/site.css">'
        f'<main class="report">{markdown2html_mistune(markdown)}</main>'
    )


def git_commit(root):
    """Return the short commit of the checkout, or None (not a git checkout, no git)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def math_warnings(rendered):
    """Return a warning for each notebook whose markdown seems to hold LaTeX math."""
    found = []
    for r in rendered:
        text = " ".join(s.text for s in r.sections)
        if re.search(r"\$\$|\\\(|\\\[|\$[^$\s][^$\n]*[^$\s\\]\$", text):
            found.append(
                f"{r.source}: LaTeX math is shown as its source (the site loads no MathJax)"
            )
    return found


def prepare_out(out):
    """Return a fresh staging folder beside ``out``; refuse to replace a folder that is not a site."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / SITE_MARKER).exists():
        raise CourseError(
            f"{out} exists and is not a course site (no {SITE_MARKER}); not replacing it"
        )
    staging = out.parent / f".{out.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / SITE_MARKER).write_text("built by `course site`; replaced by the next build\n")
    return staging


def publish(staging, out):
    """Replace ``out`` with the finished ``staging`` folder."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)


def copy_assets(export, out):
    """Write ``assets/``: the notebook CSS, the site's CSS, JavaScript and badge."""
    assets = out / "assets"
    assets.mkdir()
    (assets / "notebook.css").write_text(notebook_css(export), encoding="utf-8")
    for name in ("site.css", "site.js", "search.js", "colab-badge.svg"):
        shutil.copy2(ASSETS / name, assets / name)


def load_course(root, export, links, log):
    """Return ``{concept: {set: {track: Rendered}}}`` for every notebook of the course."""
    widgets = widget_names()
    course = {}
    for entry in notebooks.select(root, (), notebooks.SETS):
        log(f"render {entry.key}")
        rendered = render_notebook(export, entry, links, widgets)
        course.setdefault(entry.concept, {}).setdefault(entry.set, {})[entry.track] = rendered
    return {c: {s: course[c][s] for s in notebooks.SETS if s in course[c]} for c in sorted(course)}


def build(root, out=None, *, report="build/run", log=None):
    """Build the site of the course at ``root`` into ``out`` (default ``build/site``); return :class:`Built`.

    ``report`` is the folder of a run report (``course run`` writes ``build/run``); it is
    included when it holds one. Raises CourseError for a malformed notebook or an ``out``
    folder that is not a previous build.
    """
    start = time.perf_counter()
    root = Path(root)
    out = Path(out) if out else root / "build" / "site"
    out = out if out.is_absolute() else root / out
    log = log or (lambda message: None)
    staging = prepare_out(out)
    try:
        export = exporter()
        links = Links(root, set(notebooks.concepts(root)))
        course = load_course(root, export, links, log)
        copy_assets(export, staging)
        report_page = copy_report(root / report if report else None, staging)
        pages = write_pages(root, staging, course, report_page)
        for site_path, source in links.copy.items():
            (staging / site_path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, staging / site_path)
        rendered = [r for sets in course.values() for pair in sets.values() for r in pair.values()]
        warnings = list(dict.fromkeys(links.warnings)) + math_warnings(rendered)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    publish(staging, out)
    return Built(out, pages, time.perf_counter() - start, warnings, report_page)


def write_pages(root, out, course, report_page):
    """Write every page of the site into ``out``; return their paths."""
    env = environment()
    env.globals.update(
        site_title=TITLE,
        report=report_page,
        commit=git_commit(root),
        set_labels=SET_LABELS,
        tracks={t: template.TRACK_NAMES[t] for t in notebooks.TRACKS},
        heading_label=heading_label,
    )
    titles = {c: concept_title(sets["notebooks"]["pytorch"].title) for c, sets in course.items()}
    concepts, pages, index = list(course), [], []
    for n, (concept, sets) in enumerate(course.items()):
        neighbours = (
            concepts[n - 1] if n else None,
            concepts[n + 1] if n + 1 < len(concepts) else None,
        )
        for set_name, pair in sets.items():
            rows = twin_rows(pair)
            pages += concept_pages(env, out, pair, rows, titles, neighbours, list(sets))
            if set_name == "notebooks":
                notes = len(twin_notes(pair))
                index.append(
                    {"concept": concept, "title": titles[concept], "rows": rows, "notes": notes}
                )
    pages.append(write_page(env, out, "index.html", "index.html.j2", concepts=index, title=TITLE))
    pages.append(write_page(env, out, "search.html", "search.html.j2", title="Search"))
    entries = json.dumps(search_entries(course), ensure_ascii=False)
    (out / "assets" / "search-index.js").write_text(f"window.COURSE_SEARCH = {entries};\n", "utf-8")
    return pages


def concept_pages(env, out, pair, rows, titles, neighbours, sets):
    """Write the twin page and the two notebook pages of one concept and set; return their paths."""
    entry = pair["pytorch"].entry
    concept, set_name = entry.concept, entry.set
    context = {
        "concept": concept,
        "set_name": set_name,
        "set_label": SET_LABELS[set_name],
        "sets": sets,
        "title": titles[concept],
        "titles": titles,
        "previous": neighbours[0],
        "next": neighbours[1],
        "colab": {t: template.colab_url(set_name, concept, t) for t in notebooks.TRACKS},
        "github": {t: github_url(pair[t].source) for t in notebooks.TRACKS},
    }
    twin = f"{set_name}/{concept}/index.html"
    pages = [
        write_page(env, out, twin, "twin.html.j2", rows=rows, notes=twin_notes(pair), **context)
    ]
    for track, rendered in pair.items():
        shutil.copy2(rendered.entry.path, out / rendered.source)  # the source notebook, to download
        pages.append(
            write_page(
                env,
                out,
                rendered.page,
                "notebook.html.j2",
                track=track,
                other=template.twin(track),
                notebook=rendered,
                **context,
            )
        )
    return pages
