"""The course's machinery: what runs, checks, grades and publishes the course.

Lessons never import this package; it imports the lessons' helpers (:mod:`course_utils`).
Its modules, by job:

- ``cli`` (the ``course`` command, also ``python -m course_tools``), ``runner`` (executes the
  notebooks headless), ``notebooks`` (finds and names them), ``report`` (the run report);
- ``exercises`` (exercises/ generated from solutions/), ``template`` (``course new``), ``stamp``
  (points badges and install cells at a fork);
- ``grading`` (``course grade``: ``grading_runner`` runs each submission in a ``sandbox``,
  ``grading_kernel`` is the grader's side inside its kernel, ``grading_guard`` checksums and puts
  back folders, ``grading_results`` reads the signed results, ``grading_verdicts`` turns them
  into rows, ``grading_records`` holds the row types), ``submissions``, ``gradebook``;
- ``timing`` and ``test_timing`` (where ``course run`` and ``course test`` spend their time),
  ``test_order`` (the test command's longest files first), ``cross_cpu`` (what its cross-CPU
  pass re-runs);
- ``site/`` and ``site_assets/`` (the static website), ``jupyterlab`` (drives a real JupyterLab),
  ``instructor`` (instructor.ipynb's helpers), ``nbval_records`` (the pytest plugin that compares
  stored records within their tolerance).

See CONTRIBUTING.md, "Architecture".
"""
