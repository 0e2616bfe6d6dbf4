"""Checker modules, one per concept (``c00_setup.py``, ``c01_graphs.py``, ...).

Every module here is imported by :func:`course_utils.checks.load_checkers`; each registers its
exercises with the :func:`course_utils.checks.exercise` decorator. Ids read
``<concept>.<track>.<name>``, e.g. ``00_setup.pytorch.pick_device``.
"""
