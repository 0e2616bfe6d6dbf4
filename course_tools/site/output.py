"""The site's folder and what it carries besides pages: a staging folder beside the target
(which a build replaces only when it is a previous build), published at the end; ``assets/``
(the notebook CSS, the site's CSS, JavaScript and Colab badge); and the latest run report.
"""

import re
import shutil
from pathlib import Path

from course_utils.errors import CourseError

from .render import ASSETS, notebook_css

SITE_MARKER = ".course-site"  # marks a folder as a built site, which a new build may replace
REPORT_FILES = ("report.html", "report.md", "records.json", "summary.json")


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
