"""Notebooks into sections: markdown cut before every ``##``/``###`` heading, the cells of a
notebook grouped from one heading to the next, the "where they differ" notes (a markdown
paragraph starting ``> **Where they differ:**``) found and marked, and markdown as plain words
for search.
"""

import re

HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
DIFFER_RE = re.compile(r"^>\s*\*\*Where they differ(?::\*\*|\*\*:)\s*(.*)$")
DIFFER_HTML_RE = re.compile(r"<blockquote>(\s*<p>\s*<strong>Where they differ:?</strong>)")


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
