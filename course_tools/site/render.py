"""Rendering: nbconvert turns every notebook's cells, with the outputs stored in it (nothing is
executed), into HTML with the course's cell template (``site_assets/nbconvert``); the cells are
cut into sections (:class:`Section`) that make one :class:`Rendered` notebook. Stored widget
outputs become a note, and notebooks whose markdown seems to hold LaTeX get a warning.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

from course_utils.errors import CourseError

from .. import notebooks
from .links import heading_anchor, rewrite_links, with_heading_anchor
from .sections import (
    HEADING_RE,
    differ_notes,
    group_sections,
    mark_differ_notes,
    plain_text,
    split_cells,
)

# the site's templates, styles and scripts: course_tools/site_assets, beside this package
ASSETS = Path(__file__).resolve().parent.parent / "site_assets"
CELL_MARKER = "<!--course-site-cell-->"


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


def load_course(root, export, links, log):
    """Return ``{concept: {set: {track: Rendered}}}`` for every notebook of the course."""
    widgets = widget_names()
    course = {}
    for entry in notebooks.select(root, (), notebooks.SETS):
        log(f"render {entry.key}")
        rendered = render_notebook(export, entry, links, widgets)
        course.setdefault(entry.concept, {}).setdefault(entry.set, {})[entry.track] = rendered
    return {c: {s: course[c][s] for s in notebooks.SETS if s in course[c]} for c in sorted(course)}
