"""Links and images in rendered cells: relative links pointed at the site's pages (or GitHub,
for other files of the checkout), external images turned into links (the site loads nothing
from the network), and the ``id`` attributes of headings prefixed or set so that two notebooks
share one page.
"""

import html
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import notebooks, template

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


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
