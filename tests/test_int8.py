"""course_utils.int8: ONNX Runtime's integer kernels, emulated, and checked on a CPU without VNNI.

ONNX Runtime picks its int8 kernels from CPUID, and no environment variable makes it take
another path. The last tests run it under QEMU's user-mode emulation with an AVX2 CPU model
that has no VNNI (``qemu-x86_64 -cpu Haswell``, Debian's ``qemu-user``): the kernel an AVX2-only
laptop or an AMD EPYC of the Zen 2 generation runs, on this machine.
"""

import json
import platform
import shutil
import subprocess
import sys

import numpy as np
import pytest

from course_utils import int8


def test_kernel_path_follows_the_cpu_extensions():
    vnni = int8.kernel_path(["avx2", "fma", "avx512f", "avx512_vnni"], "x86_64")
    assert vnni["kernel"] == "exact" and not vnni["saturates"]
    assert "avx512_vnni" in vnni["instructions"]
    laptop = int8.kernel_path(["avx2", "fma", "avx_vnni"], "x86_64")
    assert laptop["kernel"] == "exact"
    avx2 = int8.kernel_path(["avx2", "fma"], "x86_64")
    assert avx2["kernel"] == "pairs16" and avx2["saturates"]
    assert "reduce_range=True" in avx2["advice"]
    skylake = int8.kernel_path(["avx2", "fma", "avx512f"], "x86_64")  # AVX-512 without VNNI
    assert skylake["kernel"] == "pairs16"
    assert int8.kernel_path(["neon", "i8mm"], "aarch64")["kernel"] == "exact"
    assert int8.kernel_path([], "arm64")["kernel"] == "exact"
    assert int8.kernel_path([], "x86_64")["kernel"] == "exact"  # portable kernels


def test_pairs16_clips_each_pair_and_exact_does_not():
    a = np.array([[255, 255, 255, 255]], np.uint8)
    b = np.array([[127], [127], [-128], [1]], np.int8)
    # pairs: 255*127 + 255*127 = 64,770 -> 32,767; 255*(-128) + 255*1 = -32,385 (fits)
    assert int8.matmul_integer(a, b, kernel="exact").tolist() == [[64770 - 32385]]
    assert int8.matmul_integer(a, b, kernel="pairs16").tolist() == [[32767 - 32385]]
    assert int8.saturated_pairs(a, b) == 1
    seven_bit = np.array([[63], [63], [-63], [1]], np.int8)  # reduce_range's largest weights
    assert int8.saturated_pairs(a, seven_bit) == 0
    assert (
        int8.matmul_integer(a, seven_bit, kernel="pairs16").tolist()
        == int8.matmul_integer(a, seven_bit, kernel="exact").tolist()
    )
    odd = np.array([[255, 255, 255]], np.uint8)  # an odd K pairs the last product with zero
    assert int8.matmul_integer(odd, b[:3], kernel="pairs16").tolist() == [[32767 - 32640]]
    with pytest.raises(ValueError, match="kernel must be one of"):
        int8.matmul_integer(a, b, kernel="vnni")


def test_dynamic_quantize_follows_the_onnx_definition():
    q, scale, zero = int8.dynamic_quantize(np.array([0.0, 0.25, 1.0], np.float32))
    assert q.dtype == np.uint8 and q.tolist() == [0, 64, 255] and int(zero) == 0
    assert scale == np.float32(1.0) / np.float32(255)
    q, scale, zero = int8.dynamic_quantize(np.array([-1.0, 3.0], np.float32))
    assert int(zero) == 64 and q.tolist() == [0, 255]  # zero point round(1 / (4 / 255))
    q, scale, zero = int8.dynamic_quantize(np.zeros(3, np.float32))
    assert q.tolist() == [0, 0, 0] and scale == 0


@pytest.mark.parametrize(
    ("step", "tolerance"),
    [(0.14022262, 0.2), (0.015086, 0.02), (0.1, 0.1), (0.00099, 0.001), (2.3, 3.0), (7.0, 7.0)],
)
def test_step_tolerance_rounds_up_to_one_figure(step, tolerance):
    assert int8.step_tolerance(step) == pytest.approx(tolerance)
    assert int8.step_tolerance(step) >= step


def test_step_tolerance_refuses_a_zero_step():
    with pytest.raises(ValueError, match="must be positive"):
        int8.step_tolerance(0.0)


def _mlp(folder, saturating=True):
    """Write a float 64-32-10 MLP as ONNX (no framework needed) and return its path and inputs.

    With ``saturating``, some neighbouring weights are the largest of their column, so that
    bright neighbouring pixels overflow a 16-bit pair with 8-bit weights.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.3, (64, 32)).astype(np.float32)
    if saturating:
        w1[20:22, :8] = 1.0  # pixel rows 20 and 21 are bright in most digits
    w2 = rng.normal(0, 0.3, (32, 10)).astype(np.float32)
    b1, b2 = np.zeros(32, np.float32), np.zeros(10, np.float32)
    nodes = [
        helper.make_node("MatMul", ["pixels", "w1"], ["h"]),
        helper.make_node("Add", ["h", "b1"], ["hb"]),
        helper.make_node("Relu", ["hb"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["o"]),
        helper.make_node("Add", ["o", "b2"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 10])],
        [
            numpy_helper.from_array(v, n)
            for n, v in (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2))
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = folder / "mlp.onnx"
    onnx.save(model, path)
    X = (load_digits().data[:300] / 16.0).astype(np.float32)
    return path, X


def _quantized(folder, saturating=True):
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    from course_utils.export import quiet_native

    path, X = _mlp(folder, saturating)

    class Rows(CalibrationDataReader):
        def __init__(self):
            self.rows = iter(X[:100])

        def get_next(self):
            row = next(self.rows, None)
            return None if row is None else {"pixels": row[None, :]}

    files = {
        "dynamic_8bit": folder / "dynamic_8bit.onnx",
        "dynamic_7bit": folder / "dynamic_7bit.onnx",
        "static_8bit": folder / "static_8bit.onnx",
        "static_7bit": folder / "static_7bit.onnx",
    }
    with quiet_native():
        quantize_dynamic(path, files["dynamic_8bit"], weight_type=QuantType.QInt8)
        quantize_dynamic(
            path, files["dynamic_7bit"], weight_type=QuantType.QInt8, reduce_range=True
        )
        for bits in (8, 7):
            quantize_static(
                path,
                files[f"static_{bits}bit"],
                Rows(),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                reduce_range=bits == 7,
            )
    return files, X


_RUN = """
import json, sys
import numpy as np
import onnxruntime as ort
files, X, out = json.loads(sys.argv[1]), np.load(sys.argv[2]), sys.argv[3]
results = {}
for name, path in files.items():
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    results[name] = session.run(None, {"pixels": X})[0]
np.savez(out, **results)
"""


def _ort_outputs(files, X, folder, prefix=()):
    """Run every file in ONNX Runtime in a fresh process (under ``prefix``, e.g. QEMU)."""
    np.save(folder / "X.npy", X)
    out = folder / f"out-{len(prefix)}.npz"
    script = folder / "run_ort.py"
    script.write_text(_RUN)
    names = {k: str(v) for k, v in files.items()}
    done = subprocess.run(
        [*prefix, sys.executable, str(script), json.dumps(names), str(folder / "X.npy"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


def test_emulation_matches_onnx_runtime_on_this_cpu(tmp_path):
    files, X = _quantized(tmp_path)
    native = _ort_outputs(files, X, tmp_path)
    here = int8.kernel_path()["kernel"]
    for name in ("dynamic_8bit", "dynamic_7bit"):
        emulated = int8.emulate(files[name], X, here)
        np.testing.assert_array_equal(emulated, native[name], err_msg=name)
    counted = {}
    int8.emulate(files["dynamic_8bit"], X, "pairs16", collect=counted)
    assert sum(counted.values()) > 0, "the test model should saturate with 8-bit weights"
    counted = {}
    int8.emulate(files["dynamic_7bit"], X, "pairs16", collect=counted)
    assert sum(counted.values()) == 0, counted


def test_output_step_reads_the_model_scales(tmp_path):
    files, X = _quantized(tmp_path, saturating=False)
    import onnx
    from onnx import numpy_helper

    static = onnx.load(files["static_7bit"])
    scales = {i.name: numpy_helper.to_array(i) for i in static.graph.initializer}
    assert int8.output_step(files["static_7bit"], X) == pytest.approx(float(scales["scores_scale"]))
    step = int8.output_step(files["dynamic_7bit"], X)
    # one step of the hidden layer's input, times the largest 7-bit weight of the last layer
    traced = int8.emulate(files["dynamic_7bit"], X, trace=True)
    _, hidden_scale, _ = int8.dynamic_quantize(traced["r"])
    w2 = [k for k in traced if k.startswith("w2") and k.endswith("_quantized")]
    w2_scale = [k for k in traced if k.startswith("w2") and k.endswith("_scale")]
    expected = float(hidden_scale) * float(traced[w2_scale[0]]) * np.abs(traced[w2[0]]).max()
    assert step == pytest.approx(expected, rel=1e-5)


def test_emulate_names_an_operator_it_does_not_cover(tmp_path):
    path, X = _mlp(tmp_path)
    import onnx

    model = onnx.load(path)
    model.graph.node[2].op_type = "Sigmoid"
    onnx.save(model, path)
    with pytest.raises(NotImplementedError, match="Sigmoid"):
        int8.emulate(path, X)


def _qemu():
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    return shutil.which("qemu-x86_64")


needs_qemu = pytest.mark.skipif(
    _qemu() is None,
    reason="needs QEMU's user-mode emulator on x86-64 (Debian: apt-get install qemu-user) to "
    "run ONNX Runtime on a CPU model without VNNI",
)


@needs_qemu
def test_onnx_runtime_without_vnni_saturates_and_reduce_range_fixes_it(tmp_path):
    """ONNX Runtime on an emulated AVX2 CPU without VNNI (Haswell), against this CPU's run.

    The 8-bit file gives what the ``pairs16`` emulation predicts, bit for bit, and differs from
    the exact sums; every reduce_range file gives the same outputs as on this CPU.
    """
    files, X = _quantized(tmp_path)
    native = _ort_outputs(files, X, tmp_path)
    haswell = _ort_outputs(files, X, tmp_path, prefix=(_qemu(), "-cpu", "Haswell"))
    pairs = int8.emulate(files["dynamic_8bit"], X, "pairs16")
    exact = int8.emulate(files["dynamic_8bit"], X, "exact")
    np.testing.assert_array_equal(haswell["dynamic_8bit"], pairs)
    assert np.abs(haswell["dynamic_8bit"] - exact).max() > 0.1
    for name in ("dynamic_7bit", "static_7bit"):
        np.testing.assert_array_equal(haswell[name], native[name], err_msg=name)
    if int8.kernel_path()["kernel"] == "exact":  # this CPU sums exactly: the 8-bit files differ
        assert np.abs(haswell["static_8bit"] - native["static_8bit"]).max() > 0


@needs_qemu
def test_the_lesson_model_gives_the_same_int8_outputs_without_vnni(tmp_path):
    """The 06 lessons' own recipe (a digits MLP, reduce_range=True), here and on an AVX2 CPU."""
    torch = pytest.importorskip("torch")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from course_utils.data import load_digits, torch_loader
    from course_utils.export import quiet_native

    torch.manual_seed(0)
    splits = load_digits(seed=0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        for xb, yb in torch_loader(splits.X_train, splits.y_train, batch_size=64, seed=0):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
    model.eval()
    onnx_path = tmp_path / "digits.onnx"
    with quiet_native():
        torch.onnx.export(
            model,
            (torch.from_numpy(splits.X_test[:4]),),
            onnx_path,
            dynamo=True,
            external_data=False,
            input_names=["pixels"],
            output_names=["scores"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
        )
        files = {"8bit": tmp_path / "q8.onnx", "7bit": tmp_path / "q7.onnx"}
        quantize_dynamic(onnx_path, files["8bit"], weight_type=QuantType.QInt8)
        quantize_dynamic(onnx_path, files["7bit"], weight_type=QuantType.QInt8, reduce_range=True)
    X = splits.X_test
    native = _ort_outputs(files, X, tmp_path)
    haswell = _ort_outputs(files, X, tmp_path, prefix=(_qemu(), "-cpu", "Haswell"))
    np.testing.assert_array_equal(haswell["7bit"], native["7bit"])
    np.testing.assert_array_equal(haswell["8bit"], int8.emulate(files["8bit"], X, "pairs16"))
