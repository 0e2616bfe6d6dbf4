"""What the 07_distributed checkers share: their time limits, the test for an exercise's stub,
a call in a thread that cannot hang the notebook, and the digits every training check uses.
"""

import ast
import inspect
import textwrap
import threading

from ...checks import Mismatch

CALL_TIMEOUT = 60  # s for a function run in this process
WORKER_TIMEOUT = 90  # s for a check that runs in worker processes
GROUP_TIMEOUT = 15  # s a worker waits in a collective before it fails


def _is_stub(fn):
    """True when a function's body only raises NotImplementedError (the exercise's stub)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return False
    body = tree.body[0].body if tree.body and hasattr(tree.body[0], "body") else []
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def _call(fn, *args, timeout=CALL_TIMEOUT, what="your function"):
    """Call ``fn(*args)`` in a thread and return its result; a call that takes longer than
    ``timeout`` seconds is reported as wrong (it keeps running in the background)."""
    box = {}

    def target():
        try:
            box["result"] = fn(*args)
        except BaseException as err:  # re-raised in the caller's thread
            box["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise Mismatch(
            f"{what} did not return within {timeout} s",
            "a result",
            "no result (still running)",
            "Look for an endless loop, e.g. a repeated data set that never ends. "
            "If the kernel stays busy, restart it.",
        )
    if "error" in box:
        raise box["error"]
    return box["result"]


CHECK_STEPS, CHECK_BATCH, CHECK_LR = 3, 8, 0.5


def _check_data(world_size):
    """Digits for the checks: per step, ``world_size`` batches of CHECK_BATCH examples."""
    from ...data import load_digits

    splits = load_digits(seed=0)
    n = CHECK_STEPS * CHECK_BATCH * world_size
    return splits.X_train[:n], splits.y_train[:n]
