"""``python -m course_utils.distributed tf-worker``: one TensorFlow worker of a pool."""

import sys

from .tf_pool import _tf_before_call, _tf_context, _tf_load, serve

if sys.argv[1:] == ["tf-worker"]:
    serve(_tf_load, _tf_context, _tf_before_call)
else:
    raise SystemExit("usage: python -m course_utils.distributed tf-worker")
