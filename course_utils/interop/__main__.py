"""``python -m course_utils.interop FRAMEWORK FOLDER SETTINGS``: the other side's training run
(started by :func:`course_utils.interop.start_delivery` in a fresh process)."""

import json
import sys

from .delivery import _produce

_produce(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
