"""Unit tests of course_utils' small modules: quiet, seed, devices, data, bench, records, checks."""

import importlib.metadata
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from test_env_files import pins

import course_utils as cu
from course_utils import bench, checks, data, devices, records
from course_utils.errors import CourseError

# --- quiet -------------------------------------------------------------------------------------


def test_quiet_keeps_tensorflow_import_silent_on_stderr():
    code = "import course_utils as cu; cu.quiet(); import tensorflow as tf; tf.constant(1) + 1"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "KMP_", "GRPC_"))}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_importing_the_package_imports_no_framework():
    # nbformat too: it brings jsonschema's format checkers, seconds in every kernel and worker
    heavy = "{'torch', 'tensorflow', 'nbformat', 'jsonschema'}"
    code = f"import sys, course_utils; print(sorted({heavy} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "[]", result.stderr


def test_importing_nbformat_builds_no_parser_where_the_pins_are_installed():
    # jsonschema 4.25+ imports rfc3987-syntax, which builds a Lark grammar on import: 1.6 s of
    # CPU in every process that reads a notebook (each `course` command, pytest worker, nbval run)
    pinned = pins()["jsonschema"]
    if importlib.metadata.version("jsonschema") != pinned:
        pytest.skip(f"jsonschema is not requirements/ci-cpu.txt's {pinned} here")
    code = "import sys, nbformat; print(sorted({'lark', 'rfc3987_syntax'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "[]", (
        "importing nbformat built a parser: keep jsonschema below 4.25 in requirements/ci-cpu.txt"
        f"\n{result.stdout}{result.stderr}"
    )


def test_submodules_load_on_first_use():
    code = (
        "import sys, course_utils as cu; before = 'course_utils.targets' in sys.modules; "
        "from course_utils import claims; print(before, cu.targets.__name__, claims.__name__, "
        "'targets' in dir(cu))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == [
        "False",
        "course_utils.targets",
        "course_utils.claims",
        "True",
    ], result.stderr
    with pytest.raises(AttributeError, match="no attribute 'no_such_module'"):
        cu.no_such_module  # noqa: B018


def test_quiet_sets_the_environment_before_import():
    if "tensorflow" in sys.modules:  # an earlier test on this worker imported it: quiet() says so
        with pytest.warns(UserWarning, match="ran after TensorFlow was imported"):
            applied = cu.quiet()
    else:
        applied = cu.quiet()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == applied["TF_CPP_MIN_LOG_LEVEL"] == "3"
    # Only log levels: quiet() never switches a kernel library off.
    from course_utils.quiet import KERNEL_SWITCHES

    assert not set(applied) & set(KERNEL_SWITCHES)


def test_quiet_filters_the_onednn_banner_but_keeps_onednn_on():
    script = (
        "import sys, course_utils as cu; cu.quiet()\n"
        "print('before', file=sys.stderr)\n"
        "import importlib.util; importlib.util.find_spec('tensorflow')  # a probe, not an import\n"
        "import tensorflow as tf\n"
        "print('after', file=sys.stderr)\n"
        "from tensorflow.python.util import _pywrap_util_port\n"
        "print(_pywrap_util_port.IsMklEnabled())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS",)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.split() == ["before", "after"], result.stderr
    assert result.stdout.strip() == "True"


def test_filter_banner_keeps_every_other_line():
    from course_utils.quiet import filter_banner

    text = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to "
        "STDERR\n"
        "I0000 00:00:1796512821.801418   14585 port.cc:153] oneDNN custom operations are on. "
        "You may see slightly different numerical results\n"
        "a real error\n"
    )
    assert filter_banner(text) == "a real error\n"


# --- seed --------------------------------------------------------------------------------------


def test_seed_everything_makes_numpy_and_torch_repeatable():
    seeded = cu.seed_everything(3)
    a = (np.random.rand(3), torch.randn(3))
    cu.seed_everything(3)
    b = (np.random.rand(3), torch.randn(3))
    assert {"python", "numpy", "torch"} <= set(seeded)
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1])


# --- devices -----------------------------------------------------------------------------------


def test_torch_auto_and_cpu():
    assert devices.torch_device("auto").type == devices.torch_available()[0]
    assert devices.torch_device("cpu") == torch.device("cpu")
    assert devices.torch_available()[-1] == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_cuda_is_a_clear_error_that_lists_what_is_there():
    with pytest.raises(devices.DeviceNotAvailable) as err:
        devices.torch_device("cuda")
    text = str(err.value)
    assert "'cuda' was requested but is not available" in text
    assert "Available here: cpu" in text and "fallback='cpu'" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_fallback_is_used_and_announced():
    with pytest.warns(devices.DeviceFallbackWarning, match="using 'cpu' instead"):
        assert devices.torch_device("gpu", fallback="cpu") == torch.device("cpu")


def test_unknown_device_names_are_rejected():
    with pytest.raises(CourseError, match="unknown device 'npu'"):
        devices.torch_device("npu")
    for bad in ("cuda:x", "cpu:1", "auto:0"):
        with pytest.raises(CourseError, match="cannot read device"):
            devices.torch_device(bad)


def test_a_device_number_beyond_the_count_is_refused():
    with pytest.raises(devices.DeviceNotAvailable, match="only 0 device"):
        devices._check_index("cuda:0", "PyTorch", 0)
    with pytest.raises(devices.DeviceNotAvailable, match="'cuda:2' was requested but only 2"):
        devices._check_index("cuda:2", "PyTorch", 2)
    assert devices._check_index("cuda:1", "PyTorch", 2) is None


def test_tensorflow_devices():
    assert devices.tf_device("cpu") == "/CPU:0"
    assert devices.tf_available()[-1] == "cpu"
    if "cuda" not in devices.tf_available():
        with pytest.raises(devices.DeviceNotAvailable, match="TensorFlow: device 'cuda'"):
            devices.tf_device("cuda")


# --- data --------------------------------------------------------------------------------------


def test_digits_splits_are_complete_stratified_and_scaled():
    s = cu.load_digits(seed=0)
    assert sum(s.sizes().values()) == 1797
    assert s.X_train.dtype == np.float32 and s.y_train.dtype == np.int64
    assert 0.0 <= s.X_train.min() and s.X_train.max() <= 1.0
    train_share = np.bincount(s.y_train, minlength=10) / len(s.y_train)
    test_share = np.bincount(s.y_test, minlength=10) / len(s.y_test)
    assert np.abs(train_share - test_share).max() < 0.02
    assert cu.load_digits(flatten=False).X_val.shape[1:] == (8, 8, 1)
    with pytest.raises(ValueError):
        cu.load_digits(val_fraction=0.6, test_fraction=0.5)


def test_digits_split_is_kept_and_read_back_without_scikit_learn(scratch, monkeypatch):
    monkeypatch.setenv("COURSE_ROOT", str(scratch))
    path = data.cache_file(seed=3)
    assert path.parent == scratch / "build" / "cache" and not path.exists()
    first = cu.load_digits(seed=3)
    assert path.is_file()
    fresh = data._split(3, 0.15, 0.15)  # scikit-learn itself, no cache
    for name, expected in zip(data._NAMES, fresh, strict=True):
        got = getattr(first, name)
        assert got.dtype == expected.dtype and np.array_equal(got, expected), name
    assert data.cache_file(seed=4) != path  # another seed, another file
    code = (
        "import sys, course_utils as cu; s = cu.load_digits(seed=3, flatten=False); "
        "print('sklearn' in sys.modules, s.X_train.shape, s.y_test[:8].tolist())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COURSE_ROOT": str(scratch)},
    )
    expected = f"False {(len(fresh[0]), 8, 8, 1)} {fresh[5][:8].tolist()}"
    assert result.stdout.strip() == expected, result.stderr


def test_a_damaged_digits_cache_is_split_again_and_replaced(scratch, monkeypatch):
    monkeypatch.setenv("COURSE_ROOT", str(scratch))
    path = data.cache_file(seed=0)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 half a file")
    s = cu.load_digits(seed=0)
    assert np.array_equal(s.y_val, data._split(0, 0.15, 0.15)[3])
    with np.load(path) as saved:
        assert np.array_equal(saved["y_val"], s.y_val)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial file left


def test_outside_a_checkout_the_digits_split_is_not_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert data.cache_file() is None
    assert sum(cu.load_digits().sizes().values()) == 1797
    assert list(tmp_path.iterdir()) == []


def test_numpy_order_gives_identical_batches_in_both_frameworks_every_epoch():
    s = cu.load_digits()
    X, y = s.X_val, s.y_val
    loader = data.torch_loader(X, y, batch_size=50, seed=1, order="numpy")
    dataset = data.tf_dataset(X, y, batch_size=50, seed=1, order="numpy")
    epochs = []
    for _ in range(2):
        pt = [(xb.numpy(), yb.numpy()) for xb, yb in loader]
        tf_ = [(xb.numpy(), yb.numpy()) for xb, yb in dataset]
        assert len(pt) == len(tf_) == len(loader) == len(dataset) == 6
        for (a, b), (c, d) in zip(pt, tf_, strict=True):
            assert np.array_equal(a, c) and np.array_equal(b, d)
        epochs.append(np.concatenate([b for _, b in pt]))
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled each epoch
    assert sorted(epochs[0]) == sorted(y)  # every example once


# --- bench -------------------------------------------------------------------------------------


def test_benchmark_warms_up_repeats_and_reports_median_and_spread():
    calls = []

    def work():
        calls.append(1)
        time.sleep(0.002)

    result = bench.benchmark(work, warmup=2, repeats=5, label="sleep")
    assert len(calls) == 7 and result.repeats == 5
    assert result.median >= 0.002 and result.min <= result.median and result.iqr >= 0
    assert "sleep: median" in str(result) and result.as_dict()["warmup"] == 2
    assert bench.benchmark(lambda: None, repeats=1).speedup_over(result) > 1


def test_benchmark_memory_and_bad_arguments():
    result = bench.benchmark(lambda: np.ones(2_000_000), repeats=2, memory=True)
    assert result.peak_bytes > 16e6 and result.peak_kind == "process peak RSS"
    with pytest.raises(ValueError):
        bench.benchmark(lambda: None, repeats=0)


def test_synchronizers():
    assert bench.synchronizer("cpu")() is None
    assert bench.synchronizer(torch.device("cpu"))() is None
    assert callable(bench.synchronizer("cuda:0"))  # made, not called: no GPU needed
    assert bench.fmt_seconds(0.0000125) == "12 us" and bench.fmt_seconds(2.5) == "2.50 s"


# --- records -----------------------------------------------------------------------------------


def test_plain_converts_tensors_and_rounds_to_repeatable_digits():
    assert records.plain(torch.tensor([1.5, 2.0])) == [1.5, 2.0]
    assert records.plain(np.float64(1 / 3)) == 0.333333333333
    assert records.plain({"a": np.int64(2), "b": (True, None)}) == {"a": 2, "b": [True, None]}
    with pytest.raises(TypeError):
        records.plain(object())


def test_recorder_entries_and_reading_back(tmp_path, capsys):
    record = cu.recorder("01_demo", "pytorch")
    assert record.entry("x", 2.0, unit="s") == {
        "concept": "01_demo",
        "track": "pytorch",
        "name": "x",
        "value": 2.0,
        "unit": "s",
        "note": None,
        "tolerance": None,  # a plain float without a declaration is variable
    }
    with pytest.raises(ValueError):
        cu.recorder("01_demo", "jax")
    assert records.by_name([{"name": "a", "value": 1}, {"name": "a", "value": 2}]) == {"a": 2}


def test_tolerance_is_exact_without_floats_declared_or_from_the_dtype():
    entry = cu.recorder("01_demo", "pytorch").entry
    assert entry("n", 3)["tolerance"] == "exact"
    assert entry("flags", [True, False, "int8"])["tolerance"] == "exact"
    assert entry("loss", 2.5, rtol=1e-5)["tolerance"] == {"rtol": 1e-5, "atol": 0.0}
    assert entry("diff", 0.0, atol=1e-6)["tolerance"] == {"rtol": 0.0, "atol": 1e-6}
    assert entry("w", torch.ones(2))["tolerance"] == records.DTYPE_TOLERANCE["float32"]
    assert entry("w", np.ones(2))["tolerance"] == records.DTYPE_TOLERANCE["float64"]
    assert entry("w", torch.ones(2, dtype=torch.bfloat16))["value"] == [1.0, 1.0]
    assert entry("w", torch.ones(2), rtol=1e-3)["tolerance"] == {"rtol": 1e-3, "atol": 0.0}
    # A single integer may declare a tolerance (a file size holding paths); nothing else exact may.
    assert entry("size", 28290, rtol=0.1)["tolerance"] == {"rtol": 0.1, "atol": 0.0}
    with pytest.raises(ValueError, match="without floats"):
        entry("shape", [3, 4], rtol=1e-5)
    with pytest.raises(ValueError, match="without floats"):
        entry("flag", True, atol=1)
    with pytest.raises(ValueError, match="rtol must be a number"):
        entry("x", 1.0, rtol=-1)


@pytest.mark.parametrize(
    "want, got, tol, ok",
    [
        (1.0, 1.0 + 5e-6, {"rtol": 1e-5, "atol": 0.0}, True),
        (1.0, 1.0 + 2e-5, {"rtol": 1e-5, "atol": 0.0}, False),
        (0.0, 1e-7, {"rtol": 1e-5, "atol": 1e-6}, True),
        ([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.00001]], {"rtol": 1e-5, "atol": 0}, True),
        ([1.0, 2.0], [1.0, 2.0, 3.0], {"rtol": 1, "atol": 1}, False),  # shape is exact
        ({"acc": 0.5, "n": 3}, {"acc": 0.5, "n": 4}, {"rtol": 1, "atol": 1}, False),  # ints exact
        ([1, "a"], [1, "a"], "exact", True),
        (0.3, 0.30000001, "exact", False),
        (0.3, 0.30000001, None, False),  # undeclared floats compare exactly
        (float("nan"), float("nan"), {"rtol": 0, "atol": 0}, True),
        (True, 1.0, {"rtol": 1, "atol": 1}, False),  # a boolean is not a number here
        (28290, 28354, {"rtol": 0.1, "atol": 0.0}, True),  # a single int with its tolerance
        (28290, 31200, {"rtol": 0.1, "atol": 0.0}, False),
        (28290, 28291, "exact", False),
        ([3, 4], [3, 5], {"rtol": 1, "atol": 1}, False),  # ints inside a value stay exact
    ],
)
def test_agree_compares_floats_within_the_tolerance_and_the_rest_exactly(want, got, tol, ok):
    problem = records.agree(want, got, tol)
    assert (problem is None) == ok, problem


def _record_output(value, tol, text="shown"):
    entry = {"concept": "c", "track": "pytorch", "name": "x", "value": value}
    entry.update(unit=None, note=None, tolerance=tol)
    return {"output_type": "display_data", "data": {records.MIME: entry, "text/plain": text}}


def test_reconcile_replaces_agreeing_records_and_names_the_others():
    from course_tools import nbval_records

    tol = {"rtol": 1e-5, "atol": 0.0}
    stream = {"output_type": "stream", "name": "stdout", "text": "1.0\n"}
    ref = [stream, _record_output(1.0, tol, "x = 1")]
    fresh, problems = nbval_records.reconcile(
        [stream, _record_output(1.000001, tol, "x = 1.0")], ref
    )
    assert problems == [] and fresh[1] == ref[1] and fresh[0] is stream
    _, problems = nbval_records.reconcile([stream, _record_output(1.1, tol)], ref)
    assert len(problems) == 1 and "record 'x'" in problems[0] and "rtol 1e-05" in problems[0]
    _, problems = nbval_records.reconcile([_record_output(1.0, "exact")], ref[1:])
    assert problems == ["record 'x': tolerance is 'exact', the notebook stored " + repr(tol)]


def test_nbval_with_the_plugin_accepts_last_digit_changes_and_nothing_else(tmp_path):
    """A real nbval run: a stored record off in the 7th digit passes, one off by 1% fails."""
    import nbformat.v4 as nbf

    from conftest import write_nb

    def notebook(name, stored_value, printed="ok"):
        code = (
            "import course_utils as cu\nrecord = cu.recorder('01_demo', 'pytorch')\n"
            f"record('x', 1.2345678, rtol=1e-5)\nprint('{printed}')"
        )
        path = write_nb(tmp_path / f"{name}.ipynb", [("code", code)])
        nb = nbformat.read(path, as_version=4)
        entry = cu.recorder("01_demo", "pytorch").entry("x", stored_value, rtol=1e-5)
        nb.cells[0].outputs = [
            nbf.new_output("display_data", data={records.MIME: entry, "text/plain": "old text"}),
            nbf.new_output("stream", name="stdout", text="ok\n"),
        ]
        nb.cells[0].execution_count = 1
        nbformat.write(nb, path)
        return path

    close = notebook("close", 1.2345679)
    far = notebook("far", 1.25)
    strict = notebook("strict_text", 1.2345679, printed="changed")

    def nbval(*paths, plugin=True):
        """Run nbval on ``paths`` in one pytest; return its output and each notebook's outcome."""
        args = [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "-rA"]
        args += [*map(str, paths), "-p", "no:cacheprovider", "-q"]
        args += ["-p", "course_tools.nbval_records"] * plugin
        result = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=180)
        outcome = {}
        for line in result.stdout.splitlines():
            for word in ("PASSED", "FAILED"):
                if line.startswith(word + " "):
                    outcome[Path(line.split()[1].split("::")[0]).stem] = word
        return result.stdout, outcome

    out, outcome = nbval(close, far, strict)
    assert outcome == {"close": "PASSED", "far": "FAILED", "strict_text": "FAILED"}, out
    assert "outside their declared tolerance" in out  # far: the record, named
    assert "record 'x' (tolerance " in out
    out, outcome = nbval(close, plugin=False)
    assert outcome == {"close": "FAILED"}, out  # plain nbval fails on the 7th digit


# --- checks ------------------------------------------------------------------------------------


@pytest.fixture
def demo_exercise():
    @checks.exercise("99_demo.pytorch.double", "Double it", hint="multiply by two")
    def _(fn):
        checks.expect_close("double(3)", fn(3), 6)
        return "doubles correctly"

    yield "99_demo.pytorch.double"
    checks.REGISTRY.pop("99_demo.pytorch.double")


def not_yet(x):
    raise NotImplementedError("Exercise: write your code here")


@pytest.mark.parametrize(
    "answer, status, words",
    [
        (lambda x: 2 * x, "passed", "doubles correctly"),
        (..., "not solved", "Replace the `...`"),
        (not_yet, "not solved", "NotImplementedError"),
        (lambda x: x + 2, "wrong", "expected: 6"),
        (lambda x: x / 0, "error", "ZeroDivisionError"),
    ],
)
def test_check_statuses(demo_exercise, answer, status, words):
    result = cu.check(demo_exercise, answer)
    assert result.status == status
    assert words in result.text()
    bundle = result._repr_mimebundle_()
    assert bundle[checks.MIME] == {"exercise": demo_exercise, "status": status}
    if status != "passed":
        assert "multiply by two" in bundle["text/plain"]


def test_unknown_exercise_lists_the_known_ones():
    with pytest.raises(CourseError, match="00_setup.pytorch.describe"):
        cu.check("00_setup.pytorch.nope", 1)


def test_expect_close_reports_shape_mismatches():
    with pytest.raises(checks.Mismatch, match="wrong shape"):
        checks.expect_close("x", [1, 2], [1, 2, 3])


# --- doctor and report -------------------------------------------------------------------------


def test_doctor_reports_versions_devices_and_requirements():
    from course_utils import doctor

    report = doctor.environment(frameworks=["torch"])
    assert report["torch"]["version"] == torch.__version__
    assert report["torch"]["available"][-1] == "cpu"
    assert "tensorflow" not in report  # not imported, only its version read
    rows = {r["name"]: r for r in report["requirements"]}
    assert rows["torch"]["ok"] and rows["tensorflow"]["installed"]
    text = doctor.format_report(report)
    assert "PyTorch    " + torch.__version__ in text
    assert report["problems"] == [] and "Everything the course needs is installed." in text


def test_doctor_names_the_cpu_its_extensions_and_each_frameworks_kernels(monkeypatch):
    from course_utils import cpu, doctor

    for knob in cpu.KNOBS:  # the test command may run under a kernel selection: only ours
        monkeypatch.delenv(knob, raising=False)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    report = doctor.environment(frameworks=["torch"])
    assert report["cpu"]["model"] == cpu.model() and report["cpu"]["model"]
    assert report["cpu"]["kernel_selection"] == {"ATEN_CPU_CAPABILITY": "avx2"}
    kernels = report["torch"]["cpu_kernels"]
    assert kernels["threads"] == torch.get_num_threads() >= 1
    text = doctor.format_report(report)
    assert f"CPU        {cpu.model()}" in text and "Kernels    ATEN_CPU_CAPABILITY=avx2" in text
    assert f"BLAS {kernels['blas']}" in text
    assert "ATEN_CPU_CAPABILITY=avx2" in cpu.describe()


def test_cpu_extensions_are_read_from_the_flags(monkeypatch):
    from course_utils import cpu

    fake = "model name\t: Test CPU 9000\nflags\t\t: fpu sse2 avx2 fma avx512f amx_tile\n"
    monkeypatch.setattr(cpu, "_cpuinfo", lambda: fake)
    assert cpu.model() == "Test CPU 9000"
    assert cpu.extensions() == ["avx2", "fma", "avx512f", "amx_tile"]
    arm = "Features\t: fp asimd evtstrm sve i8mm\nCPU part\t: 0xd40\n"
    monkeypatch.setattr(cpu, "_cpuinfo", lambda: arm)
    assert cpu.extensions() == ["neon", "sve", "i8mm"]


def test_every_kernel_selection_uses_only_known_knobs():
    from course_utils import cpu

    for name, env in cpu.SELECTIONS.items():
        assert env and set(env) <= set(cpu.KNOBS), name


def test_doctor_names_missing_and_out_of_range_packages():
    from course_utils import doctor

    report = {
        "requirements": [
            {"name": "onnx", "wanted": ">=1.16", "installed": None, "ok": False},
            {"name": "torch", "wanted": ">=2.4,<2.14", "installed": "2.2.0", "ok": False},
        ],
        "tensorflow": {"error": "cannot import tensorflow: no module"},
    }
    assert doctor.problems(report) == [
        "onnx is not installed (the course needs >=1.16)",
        "torch 2.2.0 is outside >=2.4,<2.14",
        "cannot import tensorflow: no module",
    ]


def test_report_puts_the_tracks_side_by_side(tmp_path):
    from course_tools import report, runner
    from course_tools.notebooks import Entry

    def outcome(track, value, ok=True):
        entry = Entry("notebooks", "01_demo", track, tmp_path / f"{track}.ipynb")
        rec = cu.recorder("01_demo", track).entry("speedup", value, unit="x")
        return runner.Outcome(entry, entry.path, 1.5, ok, None if ok else "boom", [rec])

    outcomes = [outcome("pytorch", 2.0), outcome("tensorflow", 3.0, ok=False)]
    assert report.side_by_side(outcomes) == [
        {"concept": "01_demo", "name": "speedup", "unit": "x", "pytorch": 2.0, "tensorflow": 3.0}
    ]
    paths = report.write(outcomes, tmp_path / "out")
    md = paths[0].read_text()
    assert "| 01_demo | speedup | x | 2 | 3 |" in md
    assert "| notebooks/01_demo/tensorflow | FAILED | 1.5 |" in md and "- boom" in md
    assert "<img" in paths[1].read_text()
    assert "![Speedups (x, higher is faster)](speedups.png)" in md
    assert (tmp_path / "out" / "speedups.png").stat().st_size > 1000
    assert not (tmp_path / "out" / "memory.png").exists()  # no memory figures: no empty chart


def test_a_difference_below_its_resolution_is_printed_as_such_by_every_lesson_helper():
    from course_utils import export, interop, training

    assert records.shown(3.3e-2, 1e-6) == "3.3e-02"
    assert records.shown(4.8e-6, 1e-5) == "below 1e-05"  # rounding: no digits that vary by CPU
    assert records.shown(1e-5, 1e-5) == "1.0e-05"  # the resolution itself is shown
    assert training.shown(1.5e-8) == "below 1e-06"  # 07's weights
    assert interop.shown(3e-5) == "below 5e-05"  # 08's crossed models
    assert (
        export.diff_line("a - b", 3e-6, 1e-4)
        == "max |a - b|: below 1e-05 | agree (threshold 1e-04)"
    )
