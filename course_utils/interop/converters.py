"""Direct converters between the frameworks: the packages on PyPI that would convert a model
without ONNX, and what stops each one in the course's pinned environment.
"""

# Converters between the frameworks that exist on PyPI, and what stops each one in the course's
# (re-checked against the newest release on the package index: onnx2tf 1.29.24 still pins TF 2.19)
# pinned environment (torch 2.13, TensorFlow 2.21, Keras 3): read from the requirements in each
# version's wheel metadata, from pip's resolver (litert-torch) and, for nobuco, which installs
# cleanly, from the error its import raises under Keras 3. A notebook prints this table beside
# the error the import gives.
CONVERTERS = [
    {
        "package": "onnx2torch",
        "version": "1.5.15",
        "direction": "ONNX -> PyTorch",
        "blocker": "requires torchvision, which the course does not install (a CUDA build risk)",
    },
    {
        "package": "onnx2tf",
        "version": "1.29.24",
        "direction": "ONNX -> TensorFlow / LiteRT",
        "blocker": "pins tensorflow==2.19.0, onnxruntime==1.23.0, numpy==1.26.4, onnx==1.19.1",
    },
    {
        "package": "onnx-tf",
        "version": "1.10.0",
        "direction": "ONNX -> TensorFlow",
        "blocker": "requires tensorflow-addons, which has reached its end of life",
    },
    {
        "package": "litert-torch",
        "version": "0.10.0",
        "direction": "PyTorch -> LiteRT (.tflite)",
        "blocker": "pip cannot resolve it: its xdsl needs typing-extensions<4.13, pinned at 4.16",
    },
    {
        "package": "nobuco",
        "version": "0.17.0",
        "direction": "PyTorch -> Keras",
        "blocker": "imports keras.src.engine, which exists only in Keras 2 (tf-keras)",
    },
]


def converter_table(direction=None):
    """Return the :data:`CONVERTERS` rows (those whose direction ends in ``direction`` when
    given, e.g. ``"PyTorch"``), each with ``installed``: the installed version or None."""
    from ..doctor import version

    rows = [
        {**row, "installed": version(row["package"])}
        for row in CONVERTERS
        if direction is None or direction in row["direction"].split("->")[-1]
    ]
    return rows
