"""Pages: the Jinja templates of ``site_assets/templates`` rendered into the twin page and the
two notebook pages of every concept and set, the concept index and the search page, and the
search index (one entry per section of every twin page).
"""

import json
import posixpath
import re
import shutil
import subprocess

from .. import notebooks, template
from .links import github_url
from .render import ASSETS, concept_title
from .twin import twin_notes, twin_rows

TITLE = "PyTorch and TensorFlow, side by side"
SET_LABELS = {"notebooks": "Lesson", "solutions": "Worked exercises", "exercises": "Exercises"}


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
