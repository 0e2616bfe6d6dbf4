"""Point a fork of the course at itself: ``course stamp --repository OWNER/NAME [--branch B]``.

Every notebook's "Open in Colab" badge, the Colab install cells, GitHub and GitHub Pages links,
the ``[project.urls]`` of ``pyproject.toml`` and the ``REPOSITORY`` / ``BRANCH`` constants of
``course_tools/template.py`` name the repository the course lives in. Stamping rewrites all of
them from the repository the checkout names now to the one given, in place:

- it reads the current repository and branch from ``course_tools/template.py`` (not from the
  imported package, so it works on any checkout);
- it rewrites only addresses of that exact repository (``https://github.com/OWNER/NAME``,
  ``.../blob/BRANCH/...``, ``git+https://github.com/OWNER/NAME[@BRANCH]``, Colab links,
  ``https://owner.github.io/NAME``), never another repository whose name starts the same;
- generated exercise notebooks keep their "generated, not edited" digest current, so
  ``course exercises check`` still passes and regenerating still protects students' work;
- stamping twice with the same arguments changes nothing, and stamping back to the original
  repository restores every file byte for byte.
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from course_utils.errors import CourseError

TEMPLATE = Path("course_tools") / "template.py"
SKIP_DIRS = {
    ".git",
    ".venv",
    "build",
    "node_modules",
    "__pycache__",
    ".ipynb_checkpoints",
    ".whl",
    ".gl",
}
MAX_BYTES = 20 * 2**20
OWNER_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
BRANCH_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}$")
# What may follow a repository name in an address: not more of a name (``course-extras`` is
# another repository), but a slash, a quote, the end, ``.git`` or a full stop ending a sentence.
END = r"(?=$|[^A-Za-z0-9_.-]|\.git\b|\.(?![A-Za-z0-9_-]))"
CONSTANT = r"(?P<{name}>{key}\s*=\s*\\?[\"']){value}(?=\\?[\"'])"


@dataclass(frozen=True)
class Target:
    """A repository and branch the course points at."""

    repository: str
    branch: str

    @property
    def owner(self):
        return self.repository.split("/")[0]

    @property
    def name(self):
        return self.repository.split("/")[1]

    def __str__(self):
        return f"{self.repository}@{self.branch}"


def validate(repository, branch="main"):
    """Return a :class:`Target`, or raise CourseError saying what is wrong with the input."""
    parts = str(repository).split("/")
    if len(parts) != 2:
        raise CourseError(
            f"--repository {repository!r} is not OWNER/NAME (e.g. your-name/course): give the "
            "GitHub account and the repository name, separated by one slash"
        )
    owner, name = parts
    if not OWNER_RE.match(owner):
        raise CourseError(
            f"{owner!r} is not a GitHub account name: letters, digits and single hyphens, "
            "at most 39 characters, not starting or ending with a hyphen"
        )
    if not NAME_RE.match(name) or name in (".", ".."):
        raise CourseError(
            f"{name!r} is not a GitHub repository name: letters, digits, '.', '_' and '-', "
            "at most 100 characters"
        )
    if name.lower().endswith(".git"):
        raise CourseError(f"write the repository without '.git': {owner}/{name[:-4]}")
    branch = str(branch)
    bad_branch = (
        not BRANCH_RE.match(branch)
        or ".." in branch
        or "//" in branch
        or "/." in branch
        or branch.endswith(("/", ".", ".lock"))
    )
    if bad_branch:
        raise CourseError(
            f"{branch!r} is not a branch name this command accepts: letters, digits and . _ / -, "
            "not starting with '-', '.' or '/', without '..' or '//'"
        )
    return Target(f"{owner}/{name}", branch)


def current(root):
    """Return the :class:`Target` named by ``course_tools/template.py`` in the checkout ``root``."""
    path = Path(root) / TEMPLATE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CourseError(f"{path} is missing: is {root} a checkout of the course?") from None
    found = {}
    for key in ("REPOSITORY", "BRANCH"):
        match = re.search(rf"^{key}\s*=\s*[\"']([^\"']+)[\"']", text, re.M)
        if not match:
            raise CourseError(f'{path} has no {key} = "..." line to read')
        found[key] = match.group(1)
    return validate(found["REPOSITORY"], found["BRANCH"])


def _install(target):
    return f"git+https://github.com/{target.repository}" + (
        "" if target.branch == "main" else f"@{target.branch}"
    )


def rewrite(text, old, new):
    """Return ``(text with every address of ``old`` pointing at ``new``, replacements made)``."""
    o, ob = re.escape(old.repository), re.escape(old.branch)
    branch_end = r"(?=/|$|[^A-Za-z0-9_./-])"
    if old.branch == "main":
        install = rf"git\+https://github\.com/{o}(?![A-Za-z0-9_.@-])"
    else:
        install = rf"git\+https://github\.com/{o}@{ob}{branch_end}"
    rules = [
        ("colab", rf"https://colab\.research\.google\.com/github/{o}/blob/{ob}/"),
        ("install", install),
        ("ref", rf"https://github\.com/{o}/(?P<kind>blob|tree|raw|edit|commits)/{ob}{branch_end}"),
        ("raw", rf"https://raw\.githubusercontent\.com/{o}/{ob}/"),
        ("github", rf"https?://(?:www\.)?github\.com/{o}{END}"),
        ("pages", rf"https://(?i:{re.escape(old.owner)})\.github\.io/{re.escape(old.name)}{END}"),
        ("repository", CONSTANT.format(name="repository", key="REPOSITORY", value=o)),
    ]
    pattern = re.compile("|".join(f"(?P<{name}_>{rx})" for name, rx in rules))

    def replace(m):
        kind = m.lastgroup.removesuffix("_")
        if kind == "colab":
            return f"https://colab.research.google.com/github/{new.repository}/blob/{new.branch}/"
        if kind == "install":
            return _install(new)
        if kind == "ref":
            return f"https://github.com/{new.repository}/{m.group('kind')}/{new.branch}"
        if kind == "raw":
            return f"https://raw.githubusercontent.com/{new.repository}/{new.branch}/"
        if kind == "github":
            scheme = m.group(0).split("github.com/")[0]
            return f"{scheme}github.com/{new.repository}"
        if kind == "pages":
            return f"https://{new.owner.lower()}.github.io/{new.name}"
        return m.group("repository") + new.repository

    text, count = pattern.subn(replace, text)
    # Only a file that defines REPOSITORY has the BRANCH that goes with it.
    defines = CONSTANT.format(name="r", key="REPOSITORY", value=re.escape(new.repository))
    if re.search(defines, text):
        text, n = re.subn(
            CONSTANT.format(name="branch", key="BRANCH", value=ob),
            lambda b: b.group("branch") + new.branch,
            text,
        )
        count += n
    return text, count


def files(root):
    """Return the text files of the checkout that stamping looks at (sorted paths)."""
    root = Path(root)
    listed = None
    if (root / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                cwd=root,
                capture_output=True,
                check=True,
            ).stdout
            listed = [root / p for p in out.decode().split("\0") if p]
        except (OSError, subprocess.CalledProcessError):
            listed = None
    if listed is None:
        listed = []
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
            listed += [Path(folder) / n for n in names]
    chosen = []
    for path in listed:
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS for part in rel.parts[:-1]) or not path.is_file():
            continue
        if path.is_symlink() or path.stat().st_size > MAX_BYTES:
            continue
        chosen.append(path)
    return sorted(chosen)


def _read_text(path):
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def digest(nb):
    """Return :func:`course_tools.exercises.digest` of a notebook read with ``json`` (stdlib only)."""
    cells = [
        [
            c.get("cell_type"),
            "".join(c["source"]) if isinstance(c.get("source"), list) else c.get("source", ""),
        ]
        for c in nb.get("cells", [])
    ]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()[:16]


def _refresh_digest(before, after):
    """Keep a generated exercise's digest current when stamping changed its cells.

    Only a notebook whose recorded digest matched its cells before stamping (unedited since
    it was generated) gets the new digest; an edited one keeps its (already stale) digest.
    """
    try:
        old_nb, new_nb = json.loads(before), json.loads(after)
    except ValueError:
        return after
    recorded = old_nb.get("metadata", {}).get("course", {}).get("digest")
    if not recorded or recorded != digest(old_nb):
        return after
    return after.replace(f'"digest": "{recorded}"', f'"digest": "{digest(new_nb)}"', 1)


def stamp(root, target, *, dry_run=False):
    """Re-point the checkout ``root`` at ``target``; return ``[(relative path, replacements)]``.

    Files are rewritten in place (unless ``dry_run``); a file without an address of the
    current repository is left untouched.
    """
    root = Path(root)
    old = current(root)
    changed = []
    for path in files(root):
        text = _read_text(path)
        if text is None:
            continue
        new_text, count = rewrite(text, old, target)
        if new_text == text:
            continue
        if path.suffix == ".ipynb":
            new_text = _refresh_digest(text, new_text)
        if not dry_run:
            path.write_bytes(new_text.encode("utf-8"))
        changed.append((path.relative_to(root).as_posix(), count))
    return changed


def verify(root):
    """Return problems (strings) where a notebook does not point at the checkout's repository.

    Checks every course notebook's badge and Colab install cell, and the top-level notebooks'
    badges, against ``REPOSITORY`` and ``BRANCH`` as written in ``course_tools/template.py``.
    """
    root = Path(root)
    target = current(root)
    colab = f"https://colab.research.google.com/github/{target.repository}/blob/{target.branch}/"
    problems = []
    notebooks = sorted(root.glob("*.ipynb")) + sorted(
        p for s in ("notebooks", "solutions", "exercises") for p in (root / s).glob("*/*.ipynb")
    )
    for path in notebooks:
        rel = path.relative_to(root).as_posix()
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            problems.append(f"{rel}: cannot read it ({err})")
            continue
        sources = ["".join(c.get("source", [])) for c in nb.get("cells", [])]
        text = "\n".join(sources)
        if "colab.research.google.com/github/" in text and f"{colab}{rel})" not in text:
            problems.append(f"{rel}: its Colab badge does not point at {colab}{rel}")
        if "git+https://github.com/" in text and _install(target) not in text:
            problems.append(f"{rel}: its install cell does not install {_install(target)}")
        for key, want in (("REPOSITORY", target.repository), ("BRANCH", target.branch)):
            for got in re.findall(rf"^{key}\s*=\s*[\"']([^\"']*)[\"']", text, re.M):
                if got != want:
                    problems.append(f"{rel}: {key} = {got!r}, but template.py says {want!r}")
    return problems


def command(root, repository, branch="main", *, dry_run=False):
    """Stamp ``root`` and say what changed; return the exit status (CourseError: bad input)."""
    target = validate(repository, branch)
    before = current(root)
    changed = stamp(root, target, dry_run=dry_run)
    if not changed:
        print(f"Nothing to change: the course already points at {target}.")
        return 0
    for rel, count in changed:
        print(f"  {rel}: {count} address(es)")
    print(
        f"{len(changed)} file(s) {'would change' if dry_run else 'changed'}: {before} -> {target}"
    )
    if dry_run:
        return 0
    problems = verify(root)
    for problem in problems:
        print(f"  - {problem}")
    if problems:
        print("Some notebooks still point elsewhere (see above).")
        return 1
    print(f"Every badge and install cell now points at {target}. Commit and push to publish it.")
    return 0


def add_arguments(parser):
    parser.add_argument(
        "--repository", required=True, metavar="OWNER/NAME", help="the fork on GitHub"
    )
    parser.add_argument(
        "--branch", default="main", help="the branch the badges open (default main)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="say what would change, change nothing"
    )
    return parser


def main(argv, root):
    """``python3 course.py stamp ...``: stamp without the course's environment (stdlib only)."""
    args = add_arguments(
        argparse.ArgumentParser(prog="course stamp", description=__doc__.split("\n")[0])
    ).parse_args(argv)
    try:
        return command(root, args.repository, args.branch, dry_run=args.dry_run)
    except CourseError as err:
        print(f"course stamp: error: {err}", file=sys.stderr)
        return 2
