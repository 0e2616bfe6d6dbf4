"""Crossing between PyTorch and TensorFlow: tensors through DLPack, weights across layouts, a
model trained in the other framework (made in a fresh process), and whole models as ONNX.

The weight layouts are those of :mod:`course_utils.training` (Keras layout in NumPy: dense
``(in, out)``, convolution HWIO, channels-last flatten); this module reuses its converters.
Nothing here imports a framework at module level: a helper imports what it needs when called.

The package follows the lesson, one module per job: ``fresh`` (fresh Python processes and the
probes run in them), ``dlpack`` (tensors without copies, crossings and round-trip timings),
``weights`` (the CNN in both frameworks, its weights and momentum across layouts),
``delivery`` (a model trained in the other framework, in its own process), ``converters``
(direct converters and what stops them), ``traps`` (layout traps of real ports) and
``figures`` (the recorded figures and their tolerances). Everything is re-exported here, so
``interop.NAME`` works for every name.
"""

from ..training import CNN_SPEC, Layer  # noqa: F401
from .converters import CONVERTERS, converter_table  # noqa: F401
from .delivery import (  # noqa: F401
    FRAMEWORKS,
    Delivery,
    PendingDelivery,
    _produce,
    deliver,
    produce_tensorflow,
    produce_torch,
    resume_batches,
    start_delivery,
)
from .dlpack import (  # noqa: F401
    Crossing,
    _nbytes,
    address,
    check_failure,
    crossing,
    crossing_rows,
    format_crossings,
    plot_round_trips,
    shares_memory,
    time_round_trips,
)
from .figures import ROUNDING, TOLERANCES, record_figures, shown, verdict  # noqa: F401
from .fresh import (  # noqa: F401
    _RUNNING,
    BACKGROUND_ENV,
    IMPORT_ORDER_PROBE,
    KERAS_STEPS,
    STRING_TENSOR_PROBE,
    Fresh,
    PendingFresh,
    _child_env,
    _stop_running,
    fresh_python,
    keras_imports,
    keras_imports_probe,
    loaded,
    start_fresh,
)
from .traps import (  # noqa: F401
    batchnorm_port,
    batchnorm_state,
    conv_weights,
    describe_growth,
    strided_same_port,
)
from .weights import (  # noqa: F401
    CNN_NAMES,
    _numpy,
    keras_arrays,
    keras_cnn,
    keras_momentum,
    layers_from_keras_arrays,
    layers_from_state_dict,
    set_keras_momentum,
    set_torch_momentum,
    state_dict_from_layers,
    structure,
    torch_cnn,
    torch_momentum,
)
