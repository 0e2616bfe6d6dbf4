"""The course site (`course site`): the twin view's composition, a small fixture course, the real
course built from its stored outputs, and the pages in a real Chromium."""

import base64
import html
import re
import time
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import nbformat.v4 as nbf
import pytest

from conftest import ROOT, course
from course_tools import notebooks, site, template
from course_utils import browser
from course_utils.errors import CourseError

PNG = base64.b64decode(  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
NOTE = "PyTorch moves tensors explicitly; TensorFlow places them for you."
TF_NOTE = "Only the TensorFlow notebook says this."
SCREENSHOT = ROOT / "build" / "screenshots" / "site-twin-05_training.png"
NO_BROWSER = browser.why_unavailable()
needs_browser = pytest.mark.skipif(
    NO_BROWSER is not None,
    reason=f"site browser test skipped: {NO_BROWSER}",
)


# ---------------------------------------------------------------- the composition, unit by unit


def test_split_at_headings_cuts_before_section_headings_only_outside_code():
    source = (
        "Intro\n## Summary\n\n| a |\n\n## Next\n```bash\n## not a heading\n```\n### Detail\ntext"
    )
    assert site.split_at_headings(source) == [
        "Intro",
        "## Summary\n\n| a |",
        "## Next\n```bash\n## not a heading\n```",
        "### Detail\ntext",
    ]
    assert site.split_at_headings("# Title\n\ntext") == ["# Title\n\ntext"]
    assert site.split_at_headings("## Only\ntext") == ["## Only\ntext"]


def test_sections_start_at_each_heading_even_mid_cell():
    nb = nbf.new_notebook()
    nb.cells = [
        nbf.new_markdown_cell("# T\nintro"),
        nbf.new_markdown_cell("## 1. A\ntext\n### Sub\nmore"),
        nbf.new_code_cell("x = 1"),
        nbf.new_markdown_cell("## Summary\n|a|\n## Next\nbye"),
    ]
    cells = site.split_cells(nb).cells
    assert [c.cell_type for c in cells] == ["markdown"] * 3 + ["code"] + ["markdown"] * 2
    groups = site.group_sections(cells)
    assert [h for h, _ in groups] == [None, "## 1. A", "### Sub", "## Summary", "## Next"]
    assert groups[2][1] == [2, 3]  # the code cell belongs to "### Sub"
    assert len({c.id for c in cells}) == len(cells)  # cut cells get their own ids
    assert [h for h, _ in groups[1:]] == notebooks.headings(nb)  # the layout test's headings


def test_where_they_differ_notes_are_found_and_marked():
    markdown = (
        "Some text.\n\n> **Where they differ:** PyTorch does A;\n> TensorFlow does B.\n\n"
        "> A plain quote.\n\n> **Where they differ**: the other spelling.\n\n"
        "**Where they differ:** not a quote, so not a note."
    )
    assert site.differ_notes(markdown) == [
        "PyTorch does A; TensorFlow does B.",
        "the other spelling.",
    ]
    html = "<blockquote>\n<p><strong>Where they differ:</strong> x</p></blockquote><blockquote><p>y</p></blockquote>"
    marked = site.mark_differ_notes(html)
    assert marked.count('class="differ"') == 1 and "<blockquote><p>y" in marked
    summary = site.inline_code("`nn.Linear` is (out, in) & `Dense` <in, out>")
    assert summary == "<code>nn.Linear</code> is (out, in) &amp; <code>Dense</code> &lt;in, out&gt;"


def test_align_pairs_equal_headings_and_leaves_gaps_for_the_rest():
    assert site.align(["a", "b", "c"], ["a", "b", "c"]) == [(0, 0), (1, 1), (2, 2)]
    assert site.align(["a", "x", "c"], ["a", "c", "y"]) == [(0, 0), (1, None), (2, 1), (None, 2)]


def test_stored_widgets_become_one_note_per_cell():
    cell = nbf.new_code_cell("slider")
    cell.outputs = [
        nbf.new_output("display_data", {"text/plain": "IntSlider(value=3)"}),
        nbf.new_output("display_data", {"text/plain": "Output()"}),
        nbf.new_output("stream", name="stdout", text="n=3\n"),
        nbf.new_output("execute_result", {"text/plain": "Interval(3)"}, execution_count=1),
    ]
    nb = nbf.new_notebook(cells=[cell])
    site.replace_widget_outputs(nb, site.widget_names())
    kinds = [o.get("data", {}).get("text/html", o.output_type) for o in nb.cells[0].outputs]
    assert kinds == [site.WIDGET_NOTE, "stream", "execute_result"]


def test_links_point_at_site_pages_github_or_plain_text(tmp_path):
    (tmp_path / "course_utils").mkdir()
    (tmp_path / "course_utils" / "data.py").write_text("")
    (tmp_path / "notebooks" / "01_demo").mkdir(parents=True)
    (tmp_path / "notebooks" / "01_demo" / "diagram.png").write_bytes(PNG)
    links = site.Links(tmp_path, {"01_demo"})
    html = (
        '<a href="tensorflow.ipynb#Setup">twin</a> <a href="../../solutions/01_demo">w</a> '
        '<a href="../../course_utils/data.py">code</a> <a href="../02_next/pytorch.ipynb">next</a> '
        '<a href="nowhere.txt">bad</a> <a href="https://example.com/">ext</a> '
        '<a class="x" href="pytorch.ipynb" title="t">raw</a> '
        f'<img alt="Open In Colab" src="{site.COLAB_BADGE}"/> <img alt="logo" src="https://example.com/l.png"/> '
        '<img alt="d" src="diagram.png"/>'
    )
    out = site.rewrite_links(html, "notebooks/01_demo", links, "../../assets")
    assert '<a href="tensorflow.html#Setup">twin</a>' in out
    assert '<a class="x" href="pytorch.html" title="t">raw</a>' in out
    assert '<a href="../../solutions/01_demo/index.html">w</a>' in out
    assert f'href="{site.github_url("course_utils/data.py")}"' in out
    assert '<span class="not-yet" title="not part of the course yet">next</span>' in out
    assert '<a href="nowhere.txt">bad</a>' in out and "https://example.com/" in out
    assert 'src="../../assets/colab-badge.svg"' in out
    assert 'src="https://example.com/l.png"' not in out and "[logo]" in out
    assert links.copy == {
        "notebooks/01_demo/diagram.png": tmp_path / "notebooks/01_demo/diagram.png"
    }
    assert len(links.warnings) == 2  # the missing file and the external image


def test_page_base_and_id_prefixes():
    assert site.page_base("index.html") == "."
    assert site.page_base("notebooks/05_training/index.html") == "../.."
    assert site.prefix_ids('<h2 id="Setup">S</h2><div id="cell-id=1">', "pytorch-") == (
        '<h2 id="pytorch-Setup">S</h2><div id="pytorch-cell-id=1">'
    )


def test_concept_title_drops_the_track():
    assert site.concept_title("05 · Training end to end: PyTorch") == "05 · Training end to end"
    assert site.concept_title("01 · Graphs: TensorFlow (worked exercises)") == "01 · Graphs"


# ---------------------------------------------------------------- a fixture course


def demo_notebook(set_name, track):
    """A small notebook in the course's template with every kind of content the site handles."""
    name, other = template.TRACK_NAMES[track], template.twin(track)
    extra = f"\n\n> **Where they differ:** {TF_NOTE}" if track == "tensorflow" else ""
    cells = [
        nbf.new_markdown_cell(
            f"# 01 · Demo: {name}\n\n[![Open In Colab]({site.COLAB_BADGE})]"
            f"({template.colab_url(set_name, '01_demo', track)})\n"
            f"**Twin notebook:** [{template.TRACK_NAMES[other]} version]({other}.ipynb)\n\n"
            "Overview.\n\n**You will learn**\n- a thing"
        ),
        nbf.new_markdown_cell("## Setup"),
        nbf.new_code_cell("quick = True", metadata={"tags": ["parameters"]}, execution_count=1),
        nbf.new_markdown_cell("### Notes\n\nSee [the detail](#A-detail)."),
        nbf.new_markdown_cell(
            "## 1. Numbers\n\nRead [the README](../../README.md) and "
            "[what comes next](../02_future/pytorch.ipynb).\n\n### A detail\n\n"
            f"> **Where they differ:** {NOTE}{extra}\n\n### Notes\n\nA second heading of that name."
        ),
        nbf.new_code_cell(
            "print(1)",
            execution_count=2,
            outputs=[
                nbf.new_output("stream", name="stdout", text="1\n"),
                nbf.new_output(
                    "display_data",
                    {"image/png": base64.b64encode(PNG).decode(), "text/plain": "<Figure>"},
                ),
            ],
        ),
        nbf.new_code_cell(
            "raise ValueError('on purpose')",
            metadata={"tags": ["raises-exception"]},
            execution_count=3,
            outputs=[
                nbf.new_output("error", ename="ValueError", evalue="on purpose", traceback=[])
            ],
        ),
        nbf.new_code_cell(
            "slider",
            execution_count=4,
            outputs=[nbf.new_output("display_data", {"text/plain": "IntSlider(value=3)"})],
        ),
        nbf.new_markdown_cell(
            "## Summary\n\n| | a |\n|---|---|\n| b | c |\n\n## Next\n\n[Up](#Setup)"
        ),
    ]
    return nbf.new_notebook(cells=cells)


@pytest.fixture
def demo(tmp_path):
    """A checkout with one concept in all three sets, and a run report."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "course-utils"\n')
    (tmp_path / "README.md").write_text("# Demo course\n")
    for set_name in notebooks.SETS:
        for track in notebooks.TRACKS:
            notebooks.write(
                demo_notebook(set_name, track), tmp_path / set_name / "01_demo" / f"{track}.ipynb"
            )
    write_report(tmp_path / "build" / "run")
    return tmp_path


def write_report(folder):
    """Write a run report like `course run` does, for two notebooks."""
    from course_tools import report, runner
    from course_tools.notebooks import Entry
    from course_utils import recorder

    outcomes = []
    for track, value in (("pytorch", 2.0), ("tensorflow", 3.0)):
        entry = Entry("notebooks", "01_demo", track, Path(f"{track}.ipynb"))
        rec = recorder("01_demo", track).entry("speedup", value, unit="x")
        outcomes.append(runner.Outcome(entry, entry.path, 1.5, True, None, [rec]))
    return report.write(outcomes, folder)


EXTERNAL_LOAD = re.compile(
    r"<(?:script|link|img|iframe|source|video|audio|embed|object)\b[^>]*?\s(?:src|href)=[\"']?(?:https?:)?//",
    re.I,
)


def external_loads(folder):
    """Return ``[(file, match)]`` for everything under ``folder`` that a browser would fetch from the network."""
    found = []
    for path in Path(folder).rglob("*"):
        if path.suffix == ".html":
            found += [(path, m.group(0)) for m in EXTERNAL_LOAD.finditer(path.read_text())]
        elif path.suffix == ".css":
            found += [
                (path, m.group(0))
                for m in re.finditer(r"url\(['\"]?(?:https?:)?//|@import", path.read_text())
            ]
        elif path.suffix == ".js" and path.name != "search-index.js":  # the index is data
            found += [(path, m.group(0)) for m in re.finditer(r"https?://", path.read_text())]
    return found


def test_fixture_course_builds_every_page_with_twin_view_and_notes(demo):
    built = site.build(demo, demo / "build" / "site")
    out = built.out
    expected = {
        f"{s}/01_demo/{p}"
        for s in notebooks.SETS
        for p in ("index.html", "pytorch.html", "tensorflow.html")
    }
    assert set(built.pages) == expected | {"index.html", "search.html"}
    assert built.report == "report/report.html" and (out / "report" / "report.html").is_file()
    assert all(
        (out / s / "01_demo" / f"{t}.ipynb").is_file()
        for s in notebooks.SETS
        for t in notebooks.TRACKS
    )
    twin = (out / "notebooks" / "01_demo" / "index.html").read_text()
    # rows aligned by heading, each with both tracks
    rows = re.findall(r'<section class="twin-grid row" id="([^"]+)"', twin)
    assert rows == [
        "intro",
        "Setup",
        "Notes",
        "1.-Numbers",
        "A-detail",
        "Notes-",
        "Summary",
        "Next",
    ]
    assert twin.count('data-track="pytorch"') == twin.count('data-track="tensorflow"')
    ids = re.findall(r'\sid="([^"]+)"', twin)
    assert len(ids) == len(set(ids)), "two notebooks on one page, and still unique ids"
    # the notes: highlighted in each track, listed once each at the top
    assert twin.count('<blockquote class="differ">') == 3
    summary = twin.split('<aside class="differ-summary"')[1].split("</aside>")[0]
    assert (
        summary.count(NOTE) == 1 and summary.count(TF_NOTE) == 1 and 'href="#A-detail"' in summary
    )
    # links, widgets, tags
    assert 'href="tensorflow.html"' in twin and "colab-badge.svg" in twin
    assert site.github_url("README.md") in twin
    assert 'class="not-yet"' in twin and "02_future" not in twin
    assert site.WIDGET_NOTE in twin and "IntSlider(value=3)" not in twin
    assert "celltag_raises-exception" in twin and "data:image/png;base64," in twin
    single = (out / "notebooks" / "01_demo" / "pytorch.html").read_text()
    assert template.colab_url("notebooks", "01_demo", "pytorch") in single
    assert 'href="pytorch.ipynb" download' in single and 'href="tensorflow.html"' in single
    assert NOTE in single and TF_NOTE not in single
    ids = set(re.findall(r'\sid="([^"]+)"', single))
    assert {"Notes", "Notes-"} <= ids
    assert set(re.findall(r'href="#([^"]+)"', single)) <= ids  # the contents and in-page links
    index = (out / "index.html").read_text()
    assert 'href="report/report.html"' in index and "2 differences noted" in index
    assert "notebooks/01_demo/index.html#A-detail" in index
    assert external_loads(out) == []
    assert built.warnings == []  # the future concept is plain text, not a warning


def test_a_new_build_replaces_the_old_one_but_never_a_foreign_folder(demo):
    out = demo / "build" / "site"
    site.build(demo, out)
    (out / "stale.html").write_text("old")
    site.build(demo, out, report=None)
    assert not (out / "stale.html").exists() and not (out / "report").exists()
    foreign = demo / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("a student's file")
    with pytest.raises(CourseError, match="not a course site"):
        site.build(demo, foreign)
    assert (foreign / "notes.txt").read_text() == "a student's file"


def test_a_markdown_only_report_is_rendered(demo):
    (demo / "build" / "run" / "report.html").unlink()
    built = site.build(demo, demo / "build" / "site")
    page = (built.out / "report" / "report.html").read_text()
    assert "Course run report" in page and "speedups.png" in page
    assert (built.out / "report" / "speedups.png").is_file()


def test_site_command_builds_and_says_where_to_open_it(demo):
    result = course("site", "--out", "public", cwd=demo)
    assert result.returncode == 0, result.stderr
    assert (demo / "public" / "index.html").is_file()
    assert "Open file://" in result.stdout and "with the run report" in result.stdout


# ---------------------------------------------------------------- the real course


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The course's site, built from the committed notebooks, with a run report."""
    report_dir = tmp_path_factory.mktemp("run")
    write_report(report_dir)
    start = time.perf_counter()
    result = site.build(ROOT, tmp_path_factory.mktemp("site") / "site", report=report_dir)
    print(f"site built in {time.perf_counter() - start:.1f} s")
    return result


CONCEPTS = notebooks.concepts(ROOT)
SETS_CONCEPTS = [(s, c) for s in notebooks.SETS for c in CONCEPTS]


def test_the_real_course_has_a_page_for_every_notebook_and_nothing_from_the_network(built):
    for set_name, concept in SETS_CONCEPTS:
        for page in ("index.html", "pytorch.html", "tensorflow.html"):
            assert f"{set_name}/{concept}/{page}" in built.pages
    assert {"index.html", "search.html"} <= set(built.pages)
    assert external_loads(built.out) == []
    assert not [w for w in built.warnings if "points at nothing" in w], built.warnings


@pytest.mark.parametrize("set_name, concept", SETS_CONCEPTS)
def test_twin_pages_show_both_tracks_section_by_section(built, set_name, concept):
    twin = (built.out / set_name / concept / "index.html").read_text()
    expected = notebooks.headings(notebooks.read(ROOT / set_name / concept / "pytorch.ipynb"))
    assert [html.unescape(h) for h in re.findall(r'data-heading="([^"]+)"', twin)] == expected


def test_search_index_covers_every_section_of_every_twin_page(built):
    text = (built.out / "assets" / "search-index.js").read_text()
    count = sum(
        len(notebooks.headings(notebooks.read(ROOT / s / c / "pytorch.ipynb"))) + 1
        for s, c in SETS_CONCEPTS
    )
    assert text.count('"u": ') == count


# ---------------------------------------------------------------- in a real browser


@pytest.fixture(scope="module")
def chrome():
    with browser.chromium() as b:
        yield b


@pytest.fixture(scope="module")
def served(built):
    with browser.static_server(built.out) as url:
        yield url


class Reader:
    """One browser tab that loads pages and notes what a reader would notice: console errors,
    failed requests, requests to the network, broken images; and the links and ids of each page."""

    def __init__(self, context):
        self.page = context.new_page()
        self.problems = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.problems.append(f"script error: {e}"))
        self.page.on(
            "requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}")
        )
        self.page.on("response", self._response)
        self.page.on("request", self._request)

    def _console(self, message):
        if message.type == "error":
            self.problems.append(f"console error: {message.text}")

    def _response(self, response):
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def _request(self, request):
        if not request.url.startswith(("http://127.0.0.1", "file://", "data:")):
            self.problems.append(f"request to the network: {request.url}")

    def read(self, url):
        """Load ``url``; return ``(problems, links, ids)``."""
        self.problems = []
        self.page.goto(url)
        found = self.page.evaluate(
            """() => ({
            broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0)
                .map(i => i.src.slice(0, 80)),
            links: [...document.querySelectorAll('a[href]')].map(a => a.href),
            ids: [...document.querySelectorAll('[id]')].map(e => e.id),
            })"""
        )
        problems = self.problems + [f"broken image: {src}" for src in found["broken"]]
        return problems, found["links"], set(found["ids"])


@needs_browser
def test_every_page_loads_cleanly_and_every_image_and_internal_link_resolves(built, served, chrome):
    context = chrome.new_context()
    reader = Reader(context)
    pages = [*built.pages, built.report, "search.html?q=checkpoint"]
    problems, links, ids = {}, {}, {}
    start = time.perf_counter()
    for page in pages:
        issues, links[page], ids[page.split("?")[0]] = reader.read(f"{served}/{page}")
        if issues:
            problems[page] = issues
    print(f"{len(pages)} pages visited in {time.perf_counter() - start:.1f} s")
    context.close()
    assert problems == {}, "\n".join(f"{p}: {i}" for p, i in problems.items())
    files = {p.relative_to(built.out).as_posix() for p in built.out.rglob("*") if p.is_file()}
    broken = []
    for page, hrefs in links.items():
        for href in hrefs:
            if not href.startswith(served):
                continue
            target, fragment = urldefrag(href)
            path = unquote(urlparse(target).path).lstrip("/")
            if path not in files:
                broken.append(f"{page} -> {path} (no such file)")
            elif (
                fragment
                and path.endswith(".html")
                and not {fragment, unquote(fragment)} & ids.get(path, set())
            ):
                broken.append(f"{page} -> {path}#{fragment} (no such anchor)")
    assert broken == [], "\n".join(broken)
    assert sum(len(v) for v in links.values()) > 1000  # the pages are full of links, all checked


@needs_browser
def test_twin_view_shows_both_tracks_side_by_side_and_switches_to_one(built, served, chrome):
    page = chrome.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{served}/notebooks/05_training/index.html")
    texts = page.evaluate(
        """() => Object.fromEntries(['pytorch', 'tensorflow'].map(t => [t,
        [...document.querySelectorAll(`.row .col[data-track=${t}] :is(h2, h3)`)]
        .map(h => '#'.repeat(+h.tagName[1]) + ' ' + h.textContent.replace('¶', '').trim())]))"""
    )
    expected = notebooks.headings(notebooks.read(ROOT / "notebooks/05_training/pytorch.ipynb"))
    assert texts["pytorch"] == texts["tensorflow"] == expected
    first = page.locator(".row").nth(1)
    left, right = (
        first.locator(f'.col[data-track="{t}"]').bounding_box() for t in notebooks.TRACKS
    )
    assert left["x"] + left["width"] <= right["x"] and abs(left["y"] - right["y"]) < 1
    assert page.locator(".jp-OutputArea-output img").count() >= 4  # both tracks' plots
    page.locator('[id="5.-Curves-and-test-accuracy"]').scroll_into_view_if_needed()
    page.evaluate("location.hash = '5.-Curves-and-test-accuracy'")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    page.get_by_role("button", name="PyTorch only").click()
    assert page.locator('.col[data-track="tensorflow"]').first.is_hidden()
    assert page.locator('.col[data-track="pytorch"]').first.is_visible()
    page.reload()  # the choice is remembered
    assert page.locator('.col[data-track="tensorflow"]').first.is_hidden()
    page.get_by_role("button", name="Both tracks").click()
    assert page.locator('.col[data-track="tensorflow"]').first.is_visible()
    page.close()


@needs_browser
def test_copy_button_copies_the_cell_source(served, chrome):
    context = chrome.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(f"{served}/notebooks/05_training/pytorch.html")
    nb = notebooks.read(ROOT / "notebooks/05_training/pytorch.ipynb")
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    button = page.locator(".jp-CodeCell .copy-button").nth(1)
    button.click()
    assert page.evaluate("navigator.clipboard.readText()") == code[1]
    assert button.get_attribute("data-copied") == "true"
    context.close()


@needs_browser
def test_search_finds_sections(served, chrome):
    page = chrome.new_page()
    page.goto(f"{served}/index.html")
    page.fill(".site-search input", "GradientTape")
    page.press(".site-search input", "Enter")
    page.wait_for_url("**/search.html?q=GradientTape")
    results = page.locator("#search-results li a")
    assert results.count() > 0
    results.first.click()
    page.wait_for_load_state()
    assert "/index.html#" in page.url
    page.close()


@needs_browser
def test_the_site_works_opened_from_file_urls(built, chrome):
    context = chrome.new_context()
    reader = Reader(context)
    for page in ("index.html", "notebooks/03_gpu_offload/index.html", "search.html"):
        problems, links, _ = reader.read((built.out / page).as_uri())
        assert problems == [], page
        assert all(link.startswith(("file://", "http")) for link in links)
    page = context.new_page()
    page.goto((built.out / "search.html").as_uri() + "?q=retracing")
    assert page.locator("#search-results li").count() > 0
    context.close()


@needs_browser
def test_where_they_differ_notes_stand_out(demo, chrome):
    built = site.build(demo, demo / "build" / "site")
    page = chrome.new_page()
    page.goto((built.out / "notebooks" / "01_demo" / "index.html").as_uri())
    note = page.locator('.col[data-track="pytorch"] blockquote.differ').first
    plain = page.locator('.col[data-track="pytorch"] .jp-RenderedMarkdown p').first
    style = "el => getComputedStyle(el).backgroundColor"
    assert note.is_visible() and note.evaluate(style) != plain.evaluate(style)
    assert page.locator(".differ-summary li").count() == 2
    page.close()
