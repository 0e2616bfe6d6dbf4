"""How ONNX Runtime's CPU kernels multiply int8 matrices, and what a CPU without VNNI changes.

ONNX Runtime (its MLAS library) multiplies an 8-bit *unsigned* activation matrix by an 8-bit
*signed* weight matrix ("u8s8") with whatever integer instructions the CPU has, chosen from
CPUID when the library loads; no environment variable selects another path.

- x86 with VNNI (``avx512_vnni``, ``avx_vnni``) or AMX-INT8, and ARM64 (dot-product or widening
  NEON instructions): every product is added straight into a 32-bit integer. Exact.
- x86 with AVX2 (or AVX-512) but no VNNI: ``vpmaddubsw`` first adds each *pair* of neighbouring
  products into a signed 16-bit integer, which saturates at 32,767. With 8-bit weights one
  pair can reach 2 * 255 * 127 = 64,770, and the sum is silently clipped. ONNX Runtime's
  documentation recommends ``reduce_range=True`` for these CPUs: 7-bit weights (at most 63 in
  magnitude) keep every pair below 2 * 255 * 63 = 32,130, so the two paths agree exactly.

:func:`emulate` runs a dynamically quantized ONNX file in NumPy the way either path computes
it, so any machine can show what the other path gives. :func:`output_step` and
:func:`step_tolerance` turn a quantized model's own scales into the tolerance its figures are
compared with: one quantization step of the output, not float rounding.
"""

import math
import platform

import numpy as np

from . import cpu

INT16_MAX, INT16_MIN = 32767, -32768
KERNELS = ("exact", "pairs16")  # 32-bit sums of products; pairs saturated to 16 bits first


def kernel_path(extensions=None, machine=None):
    """Return how this CPU's ONNX Runtime kernels add u8 x s8 products, as a dict.

    Keys: ``kernel`` ("exact" or "pairs16", the names :func:`emulate` takes), ``instructions``
    (what the CPU offers for it), ``saturates`` (whether 8-bit weights can overflow) and
    ``advice`` (the quantization setting ONNX Runtime recommends for this CPU).
    ``extensions`` and ``machine`` default to this machine's (:func:`course_utils.cpu.extensions`,
    ``platform.machine()``); pass them to ask about another CPU.
    """
    found = set(cpu.extensions() if extensions is None else extensions)
    machine = (platform.machine() if machine is None else machine).lower()
    if machine in ("arm64", "aarch64") or "neon" in found:
        return {
            "kernel": "exact",
            "instructions": "ARM64 dot-product or widening NEON instructions",
            "saturates": False,
            "advice": "8-bit or 7-bit weights: the sums are exact either way",
        }
    vnni = sorted(found & {"avx512_vnni", "avx_vnni", "amx_int8"})
    if vnni:
        return {
            "kernel": "exact",
            "instructions": "VNNI / AMX (" + ", ".join(vnni) + "): products summed in 32 bits",
            "saturates": False,
            "advice": "8-bit weights are safe here; reduce_range=True costs one bit of precision",
        }
    if "avx2" in found or "avx512f" in found:
        return {
            "kernel": "pairs16",
            "instructions": "AVX2 without VNNI: pairs of products added in saturating 16 bits",
            "saturates": True,
            "advice": "quantize with reduce_range=True (7-bit weights), as ONNX Runtime advises",
        }
    return {
        "kernel": "exact",
        "instructions": "no AVX2: portable kernels that sum in 32 bits",
        "saturates": False,
        "advice": "8-bit or 7-bit weights: the sums are exact either way",
    }


def matmul_integer(a, b, a_zero=0, b_zero=0, kernel="exact"):
    """Return the int32 product of u8 ``a`` (rows x K) and s8 ``b`` (K x N) as ``kernel`` sums it.

    ``"exact"`` adds every product in 32 bits; ``"pairs16"`` adds products ``k`` and ``k + 1``
    (k even) into a 16-bit integer clipped to [-32768, 32767] first, as ``vpmaddubsw`` does.
    Zero points are subtracted first, as ONNX's ``MatMulInteger`` defines.
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    a = np.asarray(a, dtype=np.int32) - np.int32(a_zero)
    b = np.asarray(b, dtype=np.int32) - np.int32(b_zero)
    if kernel == "exact":
        return a @ b
    if a.shape[1] % 2:  # an odd K: the last product pairs with a zero
        a, b = np.pad(a, ((0, 0), (0, 1))), np.pad(b, ((0, 1), (0, 0)))
    pairs = a[:, 0::2, None] * b[None, 0::2, :] + a[:, 1::2, None] * b[None, 1::2, :]
    return np.clip(pairs, INT16_MIN, INT16_MAX).sum(axis=1, dtype=np.int32)


def saturated_pairs(a, b, a_zero=0, b_zero=0):
    """Return how many pair sums of ``a @ b`` fall outside int16 (what ``pairs16`` clips)."""
    a = np.asarray(a, dtype=np.int32) - np.int32(a_zero)
    b = np.asarray(b, dtype=np.int32) - np.int32(b_zero)
    if a.shape[1] % 2:
        a, b = np.pad(a, ((0, 0), (0, 1))), np.pad(b, ((0, 1), (0, 0)))
    pairs = a[:, 0::2, None] * b[None, 0::2, :] + a[:, 1::2, None] * b[None, 1::2, :]
    return int(np.count_nonzero((pairs > INT16_MAX) | (pairs < INT16_MIN)))


def dynamic_quantize(x):
    """ONNX ``DynamicQuantizeLinear``: return ``(uint8 values, scale, zero point)`` of ``x``."""
    x = np.asarray(x, dtype=np.float32)
    lo = np.float32(min(0.0, float(x.min()))) if x.size else np.float32(0)
    hi = np.float32(max(0.0, float(x.max()))) if x.size else np.float32(0)
    scale = np.float32((hi - lo) / np.float32(255))
    if scale == 0:
        return np.zeros(x.shape, np.uint8), np.float32(0), np.uint8(0)
    zero = np.uint8(np.clip(np.rint(-lo / scale), 0, 255))
    q = np.clip(np.rint(x / scale) + np.float32(zero), 0, 255).astype(np.uint8)
    return q, scale, zero


def _graph(path):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:  # constants held in Constant nodes (tf2onnx writes some)
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attribute.t)
    return model.graph, values


def _attr(node, name, default=None):
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def emulate(path, X, kernel="exact", collect=None, trace=False):
    """Run a dynamically quantized ONNX file on ``X`` in NumPy, summing as ``kernel`` does.

    Covers the operators ``onnxruntime.quantization.quantize_dynamic`` writes for dense
    networks (DynamicQuantizeLinear, MatMulInteger, Cast, Mul, Add, Relu, and the reshapes,
    transposes and softmax a converter may add). On this course's models it reproduces ONNX
    Runtime's own outputs bit for bit on both kinds of CPU. ``collect``, a dict, receives the
    number of saturated pairs per ``MatMulInteger`` node (only s8 weights saturate: the u8 x u8
    kernels of QUInt8 weights do not pair in 16 bits). Returns the first graph output, or
    with ``trace=True`` every tensor computed, by name.
    """
    import onnx

    graph, values = _graph(path)
    values[graph.input[0].name] = np.asarray(X, dtype=np.float32)
    for node in graph.node:
        ins = [values[name] if name else None for name in node.input]
        op = node.op_type
        if op == "Constant":
            continue
        if op == "DynamicQuantizeLinear":
            out = dynamic_quantize(ins[0])
        elif op == "MatMulInteger":
            a_zero = ins[2] if len(ins) > 2 and ins[2] is not None else 0
            b_zero = ins[3] if len(ins) > 3 and ins[3] is not None else 0
            if collect is not None:
                collect[node.name or node.output[0]] = (
                    0
                    if ins[1].dtype == np.uint8
                    else saturated_pairs(ins[0], ins[1], a_zero, b_zero)
                )
            # u8 x u8 (QUInt8 weights) takes 16-bit multiplies on AVX2 that do not saturate.
            how = "exact" if ins[1].dtype == np.uint8 else kernel
            out = (matmul_integer(ins[0], ins[1], a_zero, b_zero, how),)
        elif op == "Cast":
            out = (ins[0].astype(onnx.helper.tensor_dtype_to_np_dtype(_attr(node, "to"))),)
        elif op == "Mul":
            out = (np.multiply(ins[0], ins[1], dtype=np.result_type(ins[0], ins[1])),)
        elif op == "Add":
            out = (np.add(ins[0], ins[1], dtype=np.result_type(ins[0], ins[1])),)
        elif op == "Relu":
            out = (np.maximum(ins[0], np.zeros((), ins[0].dtype)),)
        elif op == "MatMul":
            out = (ins[0] @ ins[1],)
        elif op == "Identity":
            out = (ins[0],)
        elif op == "Reshape":
            out = (ins[0].reshape([int(d) for d in ins[1]]),)
        elif op == "Transpose":
            out = (np.transpose(ins[0], _attr(node, "perm")),)
        elif op == "Softmax":
            axis = _attr(node, "axis", -1)
            shifted = np.exp(ins[0] - ins[0].max(axis=axis, keepdims=True))
            out = (shifted / shifted.sum(axis=axis, keepdims=True),)
        else:
            raise NotImplementedError(
                f"emulate: operator {op} is not covered (only dynamically quantized dense "
                "networks are)"
            )
        for name, value in zip(node.output, out, strict=False):
            values[name] = value
    return values if trace else values[graph.output[0].name]


def output_step(path, X):
    """Return one quantization step of a quantized model's output: what one rounding moves.

    For a statically quantized (QDQ) file whose output leaves a ``DequantizeLinear``, that
    node's scale: the output itself only takes values one scale apart. For a dynamically
    quantized file, the largest change one step of the last layer's quantized input can make
    on ``X``: that input's scale times the weights' scale (the factor ONNX Runtime multiplies
    the integer sums by) times the largest integer weight of the last ``MatMulInteger``.
    """
    graph, values = _graph(path)
    producer = {out: node for node in graph.node for out in node.output}
    last = producer.get(graph.output[0].name)
    if last is not None and last.op_type == "DequantizeLinear":
        return float(np.max(values[last.input[1]]))
    matmuls = [node for node in graph.node if node.op_type == "MatMulInteger"]
    if not matmuls:
        raise ValueError(f"{path} holds neither a DequantizeLinear output nor a MatMulInteger")
    final = matmuls[-1]
    traced = emulate(path, X, trace=True)
    # MatMulInteger -> Cast -> Mul(sums, activation scale x weight scale)
    cast = next(n for n in graph.node if n.op_type == "Cast" and n.input[0] == final.output[0])
    mul = next(n for n in graph.node if n.op_type == "Mul" and cast.output[0] in n.input)
    factor = next(traced[name] for name in mul.input if name != cast.output[0])
    weights = traced[final.input[1]].astype(np.int32)
    if len(final.input) > 3 and final.input[3]:
        weights = weights - traced[final.input[3]].astype(np.int32)
    return float(np.max(factor) * np.max(np.abs(weights)))


def step_tolerance(step):
    """Return ``step`` rounded up to one significant figure: the tolerance a record declares.

    Rounding keeps the tolerance the same on every CPU (the step itself differs in its last
    float32 digits between machines), and rounding *up* keeps it at least one step.
    """
    if not step > 0:
        raise ValueError(f"a quantization step must be positive, got {step!r}")
    exponent = math.floor(math.log10(step))
    unit = 10.0**exponent
    return round(math.ceil(step / unit - 1e-9) * unit, max(0, -exponent))
