"""The one notebook template: header, setup, parameters, mirrored sections, summary.

``course new NN_name --title "..."`` scaffolds a concept's four notebooks from it
(``notebooks/`` and ``solutions/``, both tracks); authors then fill in the sections.
"""

import nbformat.v4 as nbf

from course_utils import extras

# The GitHub repository and branch that badges, install cells and links point at.
# `course stamp --repository OWNER/NAME [--branch B]` rewrites both, and every link, in a fork.
REPOSITORY = "pytorch-tensorflow-course/course"
BRANCH = "main"
TRACK_NAMES = {"pytorch": "PyTorch", "tensorflow": "TensorFlow"}
FRAMEWORK_IMPORTS = {"pytorch": "import torch", "tensorflow": "import tensorflow as tf"}


def install_url(repository=REPOSITORY, branch=BRANCH):
    """Return the pip requirement URL of the course package (``git+https://...[@branch]``)."""
    return f"git+https://github.com/{repository}" + ("" if branch == "main" else f"@{branch}")


INSTALL = install_url()


def colab_link(path, repository=REPOSITORY, branch=BRANCH):
    """Return the 'Open in Colab' address of the notebook at ``path`` in the repository."""
    return f"https://colab.research.google.com/github/{repository}/blob/{branch}/{path}"


def colab_url(set_name, concept, track):
    """Return the 'Open in Colab' address of one notebook."""
    return colab_link(f"{set_name}/{concept}/{track}.ipynb")


def twin(track):
    return "tensorflow" if track == "pytorch" else "pytorch"


def header(set_name, concept, track, title, overview, learn):
    """Return the header markdown: title, badge, twin link, overview, 'you will learn'."""
    other = twin(track)
    kind = {"notebooks": "", "solutions": " (worked exercises)", "exercises": " (exercises)"}
    bullets = "\n".join(f"- {item}" for item in learn)
    return (
        f"# {concept[:2]} · {title}: {TRACK_NAMES[track]}{kind[set_name]}\n\n"
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"({colab_url(set_name, concept, track)})\n"
        f"**Twin notebook:** [{TRACK_NAMES[other]} version]({other}.ipynb) · "
        f"this track: **{TRACK_NAMES[track]}**\n\n"
        f"{overview}\n\n**You will learn**\n{bullets}\n"
    )


def setup_cells(concept, track):
    """Return the setup cells shared by every notebook of a track."""
    install = (
        "import sys\n\n"
        'if "google.colab" in sys.modules:  # on Colab only: install the course helper package\n'
        f'    %pip install -q "{extras.requirement(concept, INSTALL)}"'
    )
    needed = extras.lesson_extras(concept)
    imports = (
        "import course_utils as cu\n\n"
        "cu.quiet()  # before the framework import: keeps C++ log noise out of the outputs\n"
        + ("cu.needs(" + ", ".join(f'"{e}"' for e in needed) + ")\n" if needed else "")
        + "import numpy as np\n"
        f"{FRAMEWORK_IMPORTS[track]}"
    )
    params = nbf.new_code_cell(
        "quick = True  # quick mode keeps CI fast; set False for the full lesson\n"
        "seed = 0\n"
        'device = "auto"  # "auto", "cpu", "cuda", "mps" or "tpu"'
    )
    params.metadata["tags"] = ["parameters"]
    start = nbf.new_code_cell(
        f'record = cu.recorder("{concept}", "{track}")\ncu.seed_everything(seed)'
    )
    return [
        nbf.new_markdown_cell("## Setup"),
        nbf.new_code_cell(install),
        nbf.new_code_cell(imports),
        params,
        start,
    ]


def scaffold(set_name, concept, track, title, overview="Overview.", learn=("...",), sections=()):
    """Return a new notebook for one track, with empty mirrored ``sections`` and a summary."""
    nb = nbf.new_notebook()
    nb.cells = [nbf.new_markdown_cell(header(set_name, concept, track, title, overview, learn))]
    nb.cells += setup_cells(concept, track)
    for section in sections:
        nb.cells.append(nbf.new_markdown_cell(f"## {section}"))
        nb.cells.append(nbf.new_code_cell(""))
    nb.cells.append(
        nbf.new_markdown_cell("## Summary\n\n| | PyTorch | TensorFlow |\n|---|---|---|\n")
    )
    nb.cells.append(nbf.new_markdown_cell("## Next\n"))
    return nb
