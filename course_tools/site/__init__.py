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

The work is split by what it does: :mod:`.sections` (notebooks cut at their headings, the
"where they differ" notes), :mod:`.links` (links, images and ids in rendered cells),
:mod:`.render` (nbconvert, widget outputs, :class:`Rendered` notebooks), :mod:`.twin` (the
aligned twin view), :mod:`.pages` (page templates and the search index) and :mod:`.output`
(the staging folder, assets and the run report); this module holds :func:`build` and
re-exports their names.
"""

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .. import notebooks
from .links import (
    A_RE,
    ALT_RE,
    COLAB_BADGE,
    EXTERNAL,
    HEADING_ID_RE,
    ID_RE,
    IMG_RE,
    SRC_RE,
    Links,
    github_url,
    heading_anchor,
    prefix_ids,
    rewrite_links,
    with_heading_anchor,
)
from .output import (
    REPORT_FILES,
    SITE_MARKER,
    copy_assets,
    copy_report,
    prepare_out,
    publish,
    report_page_from_markdown,
    with_site_links,
)
from .pages import (
    SET_LABELS,
    TITLE,
    concept_pages,
    environment,
    git_commit,
    heading_label,
    inline_code,
    page_base,
    search_entries,
    write_page,
    write_pages,
)
from .render import (
    ASSETS,
    CELL_MARKER,
    WIDGET_NOTE,
    Rendered,
    Section,
    cell_text,
    concept_title,
    exporter,
    load_course,
    math_warnings,
    notebook_css,
    notebook_title,
    render_cells,
    render_notebook,
    replace_widget_outputs,
    widget_names,
)
from .sections import (
    DIFFER_HTML_RE,
    DIFFER_RE,
    HEADING_RE,
    differ_notes,
    group_sections,
    heading_of,
    mark_differ_notes,
    plain_text,
    split_at_headings,
    split_cells,
    starts_section,
)
from .twin import Row, align, column_html, twin_notes, twin_rows

__all__ = [
    "ALT_RE",
    "ASSETS",
    "A_RE",
    "CELL_MARKER",
    "COLAB_BADGE",
    "DIFFER_HTML_RE",
    "DIFFER_RE",
    "EXTERNAL",
    "HEADING_ID_RE",
    "HEADING_RE",
    "ID_RE",
    "IMG_RE",
    "REPORT_FILES",
    "SET_LABELS",
    "SITE_MARKER",
    "SRC_RE",
    "TITLE",
    "WIDGET_NOTE",
    "Built",
    "Links",
    "Rendered",
    "Row",
    "Section",
    "align",
    "build",
    "cell_text",
    "column_html",
    "concept_pages",
    "concept_title",
    "copy_assets",
    "copy_report",
    "differ_notes",
    "environment",
    "exporter",
    "git_commit",
    "github_url",
    "group_sections",
    "heading_anchor",
    "heading_label",
    "heading_of",
    "inline_code",
    "load_course",
    "mark_differ_notes",
    "math_warnings",
    "notebook_css",
    "notebook_title",
    "page_base",
    "plain_text",
    "prefix_ids",
    "prepare_out",
    "publish",
    "render_cells",
    "render_notebook",
    "replace_widget_outputs",
    "report_page_from_markdown",
    "rewrite_links",
    "search_entries",
    "split_at_headings",
    "split_cells",
    "starts_section",
    "twin_notes",
    "twin_rows",
    "widget_names",
    "with_heading_anchor",
    "with_site_links",
    "write_page",
    "write_pages",
]


@dataclass
class Built:
    """What a build wrote: the folder, its pages (relative paths), seconds taken, warnings."""

    out: Path
    pages: list
    seconds: float
    warnings: list
    report: str | None


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
