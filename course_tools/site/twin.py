"""The twin view: the PyTorch and TensorFlow notebooks of a concept side by side, their sections
aligned by heading (:func:`align`) into rows (:class:`Row`), each column's ids prefixed with its
track, and the "where they differ" notes of both tracks listed once each.
"""

import difflib
import html
import re
from dataclasses import dataclass

from .. import notebooks
from .links import ID_RE, prefix_ids


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
