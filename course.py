#!/usr/bin/env python3
"""Bootstrap and run the course with nothing installed but Python 3.11+.

    python3 course.py run      # make .venv if needed, execute every lesson, write build/run/report.md
    python3 course.py test     # make .venv if needed, run lint + unit tests + nbval + exercise checks,
                               # then nbval again on the numerically sensitive notebooks under
                               # other CPU kernels (COURSE_KERNELS=avx2 runs everything under one)
    python3 course.py lab      # open the course in JupyterLab (http://127.0.0.1:8888)
    python3 course.py setup    # only (re)create the environment (and web/node_modules with npm)
    python3 course.py format   # format .py files and notebooks with ruff
    python3 course.py site     # build the course as a static website: build/site/index.html
    python3 course.py stamp --repository OWNER/NAME   # point a fork's badges and links at it
    python3 course.py bench [--runs 3] [test] [run]   # time both commands from clean clones

Anything after the command is passed on (e.g. ``python3 course.py run --only 01 pytorch``).
The environment is .venv in this folder; it is rebuilt when pyproject.toml or the pinned
requirements change. On Linux and Windows it gets the exact pins of requirements/ci-cpu.txt
(CPU-only PyTorch and tensorflow-cpu); on macOS, the supported ranges with ``tensorflow``.
Beside it, setup installs the browser runtimes of web/package-lock.json with ``npm ci`` (where
npm exists) and TensorFlow.js's converter into build/tfjs-converter (see setup_extras).
"""

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PINS = ROOT / "requirements" / "ci-cpu.txt"
STAMP = VENV / "course-stamp"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
WEB = ROOT / "web"  # npm packages for the browser (06_deployment): package-lock.json pins them
TFJS_PINS = ROOT / "requirements" / "tfjs-converter.txt"
TFJS_DIR = ROOT / "build" / "tfjs-converter"  # a side folder, never on the course's path


def say(text):
    print(f"[course] {text}", flush=True)


def sh(*cmd, cwd=ROOT, **kw):
    say(" ".join(str(c) for c in cmd))
    return subprocess.run([str(c) for c in cmd], cwd=cwd, **kw).returncode


def digest(*files):
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def wanted_stamp():
    h = hashlib.sha256(platform.python_version().encode())
    for f in (ROOT / "pyproject.toml", PINS):
        h.update(f.read_bytes())
    return h.hexdigest()


# pip's settings that uv is told as options (pip config list names them "<scope>.<key>"); any
# other setting makes setup use pip itself, which reads them all.
PIP_TO_UV = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
}
PIP_HARMLESS = {"cert", "default-timeout", "timeout", "disable-pip-version-check", "progress-bar"}


def installer(pip):
    """Return the ``uv pip install`` command line that installs into .venv as pip would, or None.

    uv (pinned in requirements/ci-cpu.txt) is installed into .venv with pip; pip's own settings
    (index, extra indexes, find-links, constraints, certificate) are passed on to it. Where uv
    cannot be had (no network) or pip has a setting uv is not told, None: setup uses pip.
    """
    if os.environ.get("COURSE_INSTALLER") == "pip":
        return None
    uv = BIN / ("uv.exe" if os.name == "nt" else "uv")
    if not uv.exists() and sh(*pip, "-c", PINS, "uv"):
        say("uv could not be installed: the environment is installed with pip (slower)")
        return None
    listed = subprocess.run(
        [PY, "-m", "pip", "config", "list"], capture_output=True, text=True
    ).stdout.splitlines()
    options = []
    for line in listed:
        key, _, value = line.partition("=")
        name = key.rpartition(".")[2]
        value = value.strip().strip("'\"")
        if name in PIP_TO_UV:
            options += [x for v in value.split() for x in (PIP_TO_UV[name], v)]
        elif name == "cert":
            os.environ.setdefault("SSL_CERT_FILE", value)
        elif name not in PIP_HARMLESS:
            say(f"pip's setting {key} has no uv option here: the environment is installed with pip")
            return None
    # pip looks at every index for the best match; uv's default stops at the first that has
    # the package
    options += ["--index-strategy", "unsafe-best-match"]
    return [uv, "pip", "install", "-q", "--python", PY, *options]


def setup(force=False):
    """Create or update .venv; return the seconds spent (0 when it was already current)."""
    if sys.version_info < (3, 11):  # noqa: UP036  (this script may be started by an older Python)
        sys.exit(f"Python 3.11 or newer is needed, this is {platform.python_version()}")
    if not force and STAMP.exists() and STAMP.read_text() == wanted_stamp() and PY.exists():
        return 0.0
    start = time.perf_counter()
    if not PY.exists():
        say(f"creating the environment in {VENV}")
        if sh(sys.executable, "-m", "venv", VENV):
            sys.exit("could not create the virtual environment (is the venv module installed?)")
    # pip byte-compiles each package as it installs it, on one core; compiling the ~24,000
    # files afterwards on every core saves about half a minute on a 2-core machine.
    pip = [PY, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-compile"]
    extras = "tensorflow" if platform.system() == "Darwin" else "tensorflow-cpu"
    project = f".[torch,{extras},deploy,edge,course,dev]"
    uv = installer(pip)
    if uv:
        # uv resolves the same pins and unpacks in parallel: measured on 2 cores, 11 s for what
        # takes pip about 2 minutes. torch==2.13.0 is named beside the project, as pip's first
        # step does, so that the CPU build (2.13.0+cpu, where the machine offers it) is taken.
        pinned = [] if platform.system() == "Darwin" else ["-c", PINS, "torch==2.13.0"]
        rc = sh(*uv, *pinned, "-e", project)
        if rc:
            say("uv could not install the environment; trying again with pip")
    if not uv or rc:
        if platform.system() == "Darwin":
            rc = sh(*pip, "-e", project)
        else:
            # torch first and alone, so that pip takes the CPU build and never the CUDA one.
            rc = sh(*pip, "-c", PINS, "torch==2.13.0") or sh(*pip, "-c", PINS, "-e", project)
    if rc:
        sys.exit("installing the course's packages failed (see pip's message above)")
    site_packages = subprocess.run(
        [PY, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    # As pip does: files that are not valid Python 3 (templates, tests of old code) are skipped.
    # The packages' own test suites (folders named tests: 4,000 files, a sixth of the source)
    # are never imported by the course: leaving them out saves about 12 s of CPU (6 s on 2 cores).
    skip = re.escape(site_packages) + r".*[/\\]tests[/\\]"
    subprocess.run(
        [PY, "-m", "compileall", "-q", "-q", "-j", "0", "-x", skip, site_packages],
        stdout=subprocess.DEVNULL,
    )
    cuda = subprocess.run(
        [PY, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True
    )
    heavy = [line for line in cuda.stdout.splitlines() if line.lower().startswith("nvidia-")]
    if heavy and platform.system() != "Darwin" and os.environ.get("CI"):
        sys.exit(f"CUDA packages were installed, which CI must not do: {', '.join(heavy)}")
    STAMP.write_text(wanted_stamp())
    spent = time.perf_counter() - start
    say(f"environment ready in {spent:.0f} s")
    return spent


def setup_extras(force=False):
    """Install what lives outside the environment; return the seconds spent (0 when current).

    - web/node_modules: the browser runtimes of web/package-lock.json, with `npm ci`, where npm
      exists (without it, 06_deployment says that the browser was not tried);
    - build/tfjs-converter: TensorFlow.js's converter and what it imports, without their
      dependencies (they would replace the course's TensorFlow), for 06_deployment to try.
    Each is redone only when its pins change; a failed install (no network) is reported once and
    remembered until the pins change or `setup --force`. The rest of the course works without them.
    """

    def npm_ci():
        npm = shutil.which("npm")
        if npm is None:  # nothing tried: look again next time (npm may be installed by then)
            say("npm was not found: 06_deployment will say that the browser was not tried")
            return None
        quiet = ["--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
        return sh(npm, "ci", *quiet, cwd=WEB) == 0

    def converter():
        shutil.rmtree(TFJS_DIR, ignore_errors=True)
        pip = [PY, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps"]
        return sh(*pip, "--target", TFJS_DIR, "-r", TFJS_PINS) == 0

    spent = 0.0
    for what, pins, installed, install in (
        (
            "browser runtimes (web/node_modules)",
            WEB / "package-lock.json",
            WEB / "node_modules" / "onnxruntime-web",
            npm_ci,
        ),
        (
            "TensorFlow.js converter (build/tfjs-converter)",
            TFJS_PINS,
            TFJS_DIR / "tensorflowjs",
            converter,
        ),
    ):
        stamp = ROOT / "build" / "setup" / f"{pins.name}.stamp"
        want = digest(pins)
        done = stamp.read_text() if stamp.is_file() else ""
        if not force and (done == f"failed {want}" or (done == want and installed.exists())):
            continue
        begin = time.perf_counter()
        ok = install()
        if ok is None:
            continue
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(want if ok else f"failed {want}")
        spent += time.perf_counter() - begin
        outcome = "installed" if ok else "NOT installed (06_deployment will say so)"
        say(f"{what}: {outcome} in {time.perf_counter() - begin:.0f} s")
    return spent


def _venv_environment(env):
    """This process's environment plus ``env``, unbuffered, without a PYTHONPATH."""
    full = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    full.pop("PYTHONPATH", None)
    return full


def in_venv(*args, env=None, capture=False):
    """Run the environment's Python with ``args`` (and extra ``env``); return the status or output."""
    result = subprocess.run(
        [str(PY), *map(str, args)],
        cwd=ROOT,
        env=_venv_environment(env),
        capture_output=capture,
        text=capture,
    )
    return result if capture else result.returncode


def background_in_venv(*args, env=None, out=None):
    """Start the environment's Python with ``args`` without waiting; its output goes to ``out``."""
    return subprocess.Popen(
        [str(PY), *map(str, args)],
        cwd=ROOT,
        env=_venv_environment(env),
        stdout=out,
        stderr=subprocess.STDOUT,
    )


NBVAL = [
    "--nbval",
    "--nbval-current-env",
    "--nbval-sanitize-with",
    "tests/sanitize.cfg",
    "-p",
    "course_tools.nbval_records",  # records compared within the tolerance they declare
    "-p",
    "course_tools.test_timing",  # ends with the slowest files and tests, and what they spend
    "-p",
    "course_tools.test_order",  # the longest files first (tests/durations.json, the last run's)
    "--nbval-cell-timeout",
    "300",  # a hung cell fails within minutes, not at CI's time limit
    "-p",
    "no:cacheprovider",
]


def inductor_cache(selection):
    """Environment for one kernel selection's own torch.compile cache.

    Inductor's on-disk cache does not key its compiled CPU kernels on ATEN_CPU_CAPABILITY:
    a kernel cached by an AVX-512 run and loaded by an AVX2 run gave wrong results
    (torch 2.13.0). Each selection therefore compiles into a folder of its own under build/.
    """
    return {"TORCHINDUCTOR_CACHE_DIR": str(ROOT / "build" / "inductor-cache" / selection)}


# The test command runs four processes on two cores (three pytest workers and the cross-CPU
# pass), each with as many threads as cores. An OpenMP thread that has finished its share of a
# parallel region spins before it sleeps, holding a core another process needs: PASSIVE lets it
# sleep at once. Results and thread counts are the same; only the wait differs. Measured on 2
# cores: four PyTorch notebooks on three workers, 55 s by default, 41 s with PASSIVE. `course
# run`, whose figures the lessons print, keeps the libraries' default.
# For the same reason torch.compile compiles in the process that asks (its default on two cores
# is a pool of two worker processes, each importing torch and Inductor again, for every process
# that compiles): the generated code is the same. Measured on 2 cores, nbval on the three
# compiling PyTorch lessons and 04's solution, alone, cold cache, alternating twice: 80.0 / 81.1
# s of CPU with the pool, 75.7 / 76.0 s without (wall 76 / 80 s, 75 / 75 s).
SHARED_CORES = {
    "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
    "TORCHINDUCTOR_COMPILE_THREADS": os.environ.get("TORCHINDUCTOR_COMPILE_THREADS", "1"),
}


# The cross-CPU pass stops each notebook after its last cell whose compared output the kernels
# can change (course_tools/cross_cpu.py, loaded as a pytest plugin, deselects the cells after it).
CROSS = ["-p", "course_tools.cross_cpu"]


class BackgroundPass:
    """nbval on ``paths`` in one process beside the main pass, its output in ``log_path``."""

    def __init__(self, log_path, paths, env):
        self.log_path = log_path
        self.log = open(log_path, "w")  # noqa: SIM115 (closed by finish)
        self.process = background_in_venv(
            "-m", "pytest", *paths, *NBVAL, "-p", "no:xdist", *CROSS, env=env, out=self.log
        )
        self.began = time.perf_counter()
        self.ended = None  # when it ended, which is usually long before the main pass does
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.watcher.start()

    def _watch(self):
        self.process.wait()
        self.ended = time.perf_counter()

    def finish(self):
        """Wait for the pass; return its exit status and its own time in seconds."""
        rc = self.process.wait()
        self.watcher.join()
        self.log.close()
        return rc, self.ended - self.began


def kernel_facts():
    """Return ``course kernels --json``: the CPU, the named kernel selections, the cross pass."""
    result = in_venv("-m", "course_tools", "kernels", "--json", capture=True)
    if result.returncode:
        sys.exit(f"could not read the CPU's kernel selections:\n{result.stderr}")
    return json.loads(result.stdout)


def test(extra):
    """Lint, check exercises are current, one pytest run and, beside it, nbval under other kernels.

    ``COURSE_KERNELS=<name>`` runs everything under one of the named kernel selections
    (``course kernels`` lists them), as if on another CPU.
    """
    facts = kernel_facts()
    chosen = os.environ.get("COURSE_KERNELS")
    # The claims lab's twins measure the same thing: the first one's measurement serves both.
    share = ROOT / "build" / "claims-share" / "test"
    shutil.rmtree(share, ignore_errors=True)
    logs = ROOT / "build" / "test-logs"
    env = {
        **inductor_cache("native"),
        **SHARED_CORES,
        "COURSE_CLAIMS_SHARE": str(share),
        # every test file's wall and CPU seconds (course_tools/test_timing.py)
        "COURSE_TEST_TIMES": str(logs / "times-main.json"),
    }
    if chosen:
        if chosen not in facts["selections"]:
            known = ", ".join(facts["selections"])
            print(f"unknown COURSE_KERNELS {chosen!r}; choose from {known}", file=sys.stderr)
            return 2
        selection = facts["selections"][chosen]
        say(f"kernel selection {chosen}: " + " ".join(f"{k}={v}" for k, v in selection.items()))
        env = {**env, **selection, **inductor_cache(chosen)}
    steps = [
        ("lint", ["-m", "ruff", "check", "."]),
        ("format", ["-m", "ruff", "format", "--check", "."]),
        ("exercises are current", ["-m", "course_tools", "exercises", "check"]),
    ]
    for name, args in steps:
        say(f"step: {name}")
        if in_venv(*args, env=env):
            say(f"FAILED: {name}")
            return 1
    cross = None if chosen else facts["cross"]
    if chosen:
        say(f"the whole run uses the kernel selection {chosen}: no cross-CPU pass")
    elif not cross:
        say(f"cross-CPU pass: no kernel knob applies on this CPU ({facts['cpu']}); nothing to vary")
    # Three workers on two cores: about a sixth of the time a worker waits (a kernel starting, a
    # subprocess, a browser, a timeout under test), and a third one fills it (measured: 431 s
    # with 2 workers, 404 s with 3). The cross-CPU pass runs beside them, in one process and a
    # work folder of its own, for its first few minutes (592 s in all with 2 workers beside it).
    workers = os.environ.get("COURSE_TEST_WORKERS", "3")
    # Whole files to workers, longest first (course_tools/test_order.py): not xdist's own order
    parallel = ["-n", workers, "--dist", "loadfile", "--no-loadscope-reorder"]
    background = None
    if cross:
        # The notebooks whose compared outputs can change with the CPU's kernels, by the rule
        # of course_tools/cross_cpu.py (`course kernels` lists them and why).
        paths = facts["cross_paths"]
        cross_env = facts["cross_env"]
        say(
            f"step: cross-CPU pass, beside the main pass: the stored outputs of {len(paths)} "
            f"notebooks, re-executed up to their last kernel-dependent cell with the {cross} kernels ("
            + " ".join(f"{k}={v}" for k, v in cross_env.items())
            + "); its report follows the main pass's"
        )
        log_path = ROOT / "build" / "test-logs" / f"cross-cpu-{cross}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(ROOT / "build" / "cross-cpu-work" / cross, ignore_errors=True)
        cross_env = {
            **cross_env,
            **SHARED_CORES,
            **inductor_cache(cross),
            # the same notebooks run in the main pass at the same time: their files go elsewhere
            "COURSE_WORKDIR": str(ROOT / "build" / "cross-cpu-work" / cross),
            "COURSE_TEST_TIMES": str(logs / f"times-cross-cpu-{cross}.json"),
        }
        background = BackgroundPass(log_path, paths, cross_env)
    say(
        "step: pytest (unit tests, layout, parity, exercises executed, nbval on notebooks/ and solutions/)"
    )
    start = time.perf_counter()
    try:
        rc = in_venv(
            "-m", "pytest", "tests", "notebooks", "solutions", *NBVAL, *parallel, *extra, env=env
        )
    except BaseException:  # Ctrl+C: the pass beside it stops too
        if background:
            background.process.terminate()
        raise
    say(f"pytest finished with status {rc} in {time.perf_counter() - start:.0f} s")
    if background:
        cross_rc, seconds = background.finish()
        print(background.log_path.read_text(), end="", flush=True)
        say(
            f"cross-CPU pass finished with status {cross_rc} in {seconds:.0f} s, beside "
            f"the main pass (log: {background.log_path.relative_to(ROOT)})"
        )
        rc = rc or cross_rc
    return rc


def stamp(extra):
    """Point the checkout at a fork: course_tools/stamp.py needs only the standard library."""
    import importlib.util
    import types

    for name in ("course_utils", "course_tools"):  # their __init__ may need the environment
        package = types.ModuleType(name)
        package.__path__ = [str(ROOT / name)]
        sys.modules.setdefault(name, package)
    spec = importlib.util.spec_from_file_location(
        "course_tools.stamp", ROOT / "course_tools" / "stamp.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.main(extra, ROOT)


def _tree_rss(root_pid):
    """Return the resident memory, in bytes, of ``root_pid`` and all its descendants (Linux)."""
    children, rss = {}, {}
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            pid = int(entry.name)
            children.setdefault(int(fields[1]), []).append(pid)
            rss[pid] = int(fields[21]) * page
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


# The budgets on two cores (README, "Budgets"): the test command with its setup, the main job
# (quick mode) without it.
BUDGETS = {
    "test": ("the test command, setup included", 600),
    "run": ("the main job, after setup", 240),
}


def machine_cpu_seconds():
    """Return the CPU seconds every process on this machine has used since boot (Linux's
    /proc/stat: user, nice, system, irq, softirq), or None where there is no such file."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        ticks = [int(x) for x in first[1:8]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq = ticks
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def budget_lines(command, rows, cores):
    """Return what the bench says of ``command``'s budget, from its runs' ``rows`` of
    ``(wall s, setup s, peak bytes, status, CPU s or None)``: the median against the budget, and
    the least time the same work can take on ``cores`` cores, whatever the scheduling."""
    import statistics

    label, budget = BUDGETS[command]
    walls = [r[0] - (r[1] if command == "run" else 0) for r in rows]
    timed = statistics.median(walls)
    verdict = "met" if timed <= budget else f"not met, by {timed - budget:.0f} s"
    lines = [f"{command}: {label}, median {timed:.0f} s; budget {budget} s: {verdict}"]
    cpus = [r[4] for r in rows if r[4] is not None]
    if cpus:
        cpu = statistics.median(cpus)
        wall = statistics.median(r[0] for r in rows)
        lines.append(
            f"  the whole command used {cpu:.0f} s of CPU (every process on the machine): on "
            f"{cores} cores it cannot take less than {cpu / cores:.0f} s; it took {wall:.0f} s "
            f"({cpu / wall:.2f} cores busy on average)"
        )
    return lines


def bench(extra):
    """Time the README's two commands from a clean clone, several times; print min/median/max.

    ``python3 course.py bench [--runs N] [test] [run]``: each run clones this checkout's HEAD
    into build/bench/ (no .venv, no build outputs: setup is part of what is timed, as on a fresh
    machine), runs ``python3 course.py COMMAND`` there with ``CI=true``, and samples the resident
    memory of the whole process tree every half second. Prints, per command, the wall time, the
    environment setup inside it (from the command's last line), the peak memory, the CPU seconds
    the whole machine used meanwhile (run it with nothing else running), and the budget: met or
    not, and the least time the same work could take on this machine's cores.
    """
    import statistics

    runs = 3
    if "--runs" in extra:
        i = extra.index("--runs")
        runs = int(extra[i + 1])
        extra = extra[:i] + extra[i + 2 :]
    commands = [c for c in extra if c in ("test", "run")] or ["test", "run"]
    if subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT).returncode:
        say("the working tree has changes that are not committed: the clones measure HEAD")
    base = ROOT / "build" / "bench"
    results = {c: [] for c in commands}
    for n in range(runs):
        for command in commands:
            clone = base / f"clone-{command}"
            shutil.rmtree(clone, ignore_errors=True)
            base.mkdir(parents=True, exist_ok=True)
            subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
            log = base / f"{command}-{n + 1}.log"
            say(f"bench {n + 1}/{runs}: python3 course.py {command} (log: {log.relative_to(ROOT)})")
            peak, done = [0], threading.Event()
            cpu_before = machine_cpu_seconds()
            start = time.perf_counter()
            with open(log, "w") as out:
                child = subprocess.Popen(
                    [sys.executable, "course.py", command],
                    cwd=clone,
                    env=dict(os.environ, CI="true"),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )

                def sample(pid=child.pid, peak=peak, done=done):
                    while not done.wait(0.5):
                        peak[0] = max(peak[0], _tree_rss(pid))

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                rc = child.wait()
                done.set()
                sampler.join()
            wall = time.perf_counter() - start
            cpu_after = machine_cpu_seconds()
            cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
            text = log.read_text(errors="replace")
            setup_s = [float(m) for m in re.findall(r"environment setup (\d+) s\)", text)]
            setup = setup_s[-1] if setup_s else float("nan")
            results[command].append((wall, setup, peak[0], rc, cpu))
            used = "" if cpu is None else f", {cpu:.0f} s of CPU"
            say(f"  {wall:.0f} s{used}, status {rc}, peak memory {peak[0] / 2**30:.1f} GiB")
    print()
    print(
        f"{'command':26} {'runs':>4}  {'min':>7} {'median':>7} {'max':>7}  {'setup (median)':>14}  peak memory"
    )
    for command, rows in results.items():
        walls = [r[0] for r in rows]
        failed = sum(1 for r in rows if r[3])
        print(
            f"{'python3 course.py ' + command:26} {len(rows):>4}  {min(walls):6.0f}s "
            f"{statistics.median(walls):6.0f}s {max(walls):6.0f}s  "
            f"{statistics.median(r[1] for r in rows):13.0f}s  "
            f"{max(r[2] for r in rows) / 2**30:.1f} GiB"
            + (f"  ({failed} failed)" if failed else "")
        )
    print(f"machine: {platform.platform(terse=True)}, {os.cpu_count()} CPUs")
    for command, rows in results.items():
        for line in budget_lines(command, rows, os.cpu_count() or 1):
            print(line)
    return 1 if any(r[3] for rows in results.values() for r in rows) else 0


def main(argv):
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    command, extra = argv[0], argv[1:]
    if command == "stamp":  # no environment needed
        return stamp(extra)
    if command == "bench":  # clean clones, each with its own environment
        return bench(extra)
    if command not in ("setup", "run", "test", "lab", "format", "site"):
        print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    force = command == "setup" and "--force" in extra
    spent = setup(force=force)
    spent += setup_extras(force=force)
    if command == "setup":
        return 0
    if command == "run":
        rc = in_venv("-m", "course_tools", "run", *extra)
    elif command == "test":
        rc = test(extra)
    elif command == "site":
        rc = in_venv("-m", "course_tools", "site", *extra)
    elif command == "format":
        rc = in_venv("-m", "ruff", "format", ".") or in_venv("-m", "ruff", "check", "--fix", ".")
    else:
        as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        rc = in_venv("-m", "jupyter", "lab", "--ip", "127.0.0.1", "--no-browser", *as_root, *extra)
    total = time.perf_counter() - start
    say(f"{command} finished with status {rc} in {total:.0f} s (environment setup {spent:.0f} s)")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
