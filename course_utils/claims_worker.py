"""The claims lab's harness: each framework measured in fresh Python processes of its own.

:func:`measure` runs short-lived processes in stages (:func:`schedule`), so that neither
framework's import, memory allocator or thread pools can disturb the other's figures:

1. side by side, one process per framework: training memory in its default mode (the first
   thing the process does), then the demonstrations and accuracy over seeds (nothing timed);
   beside them, one more process per framework for the training memory of its other mode
   (eager TensorFlow for C6; ``torch.compile``, for comparison, in full mode only: compiling
   takes long on a small CPU); memory does not depend on how much CPU a process gets;
2. one after the other, alone: ``plan["rounds"]`` rounds of timing processes, PyTorch and
   TensorFlow alternating and the first framework swapped each round (PT TF, TF PT, PT TF, ...).
   Each times every training step and operation after warm-up steps; its figure per entry is the
   median of its repeats. The lab's figure is the median over processes and its spread the
   range between processes (:func:`course_utils.claims.decide_timing`). Importing a framework
   is not timed, so the first :data:`AHEAD` timing processes start with stage 1 and import
   their framework beside it; each then waits, idle, until its turn (nothing runs beside a
   timing process but idle ones), and stage 2 begins once every one of them is ready.

Every process gets the same plan (:func:`course_utils.claims.settings`: model sizes, batch, data,
float32, thread count) and runs ``python -m course_utils.claims_worker FRAMEWORK`` with the plan on
standard input. It reports each task as it starts and ends and prints its result as one JSON
line; the experiments themselves are the functions of :mod:`course_utils.claims_torch` and
:mod:`course_utils.claims_tf`. A timing process also measures other programs' CPU use once it
has set up its framework (before its first task) and after its last task (:func:`machine_load`).
"""

import importlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

from .claims.catalogue import DEFAULT_MODE, FRAMEWORKS, MODES
from .memory import memory_figures  # noqa: F401  (claims_worker.memory_figures, shown in 09)
from .quiet import ENV

SIDES = {"pytorch": "course_utils.claims_torch", "tensorflow": "course_utils.claims_tf"}
DEMOS = {
    "c1": "define_by_run",
    "c2": "debugging_inside",
    "c8": "gpu_code_change",
    "c11": "graph_transition",
    "c12": "distributed_scripts",
}


# ---------------------------------------------------------------- the plan


OTHER_MODE = {"pytorch": "compiled", "tensorflow": "eager"}  # the memory of the second process
# Timing processes started with stage 1, imported and idle until their turn: quick mode's six
# (three rounds); full mode's later ones import in their turn (each idle process holds its
# framework's memory, about 0.3 GB for PyTorch and 0.6 GB for TensorFlow).
AHEAD = 6
TIMED_MODELS = ("small", "large", "cnn")  # C3: small; C4: large and cnn; C9: large's step


def tasks(framework, plan, role):
    """Return the list of tasks one process runs, in order: ``[kind, *arguments]`` lists.

    ``role`` "main": the memory of the default mode first, while the process is fresh, then the
    demonstrations and accuracy; "memory": the memory of the other mode only; "timing": every
    model in every mode, then the operations.
    """
    if role == "main":
        todo = [["memory", DEFAULT_MODE[framework]]]
        todo += [["demo", name] for name in DEMOS]
        return [*todo, ["accuracy"]]
    if role == "memory":
        return [["memory", OTHER_MODE[framework]]]
    if role == "timing":
        todo = [
            ["timing", size, mode]
            for size in TIMED_MODELS
            if size in plan
            for mode in MODES[framework]
        ]
        return [*todo, ["ops", "cpu"]]
    raise ValueError(f"unknown role {role!r}")


def timing_order(rounds):
    """Return the frameworks' timing processes in order: alternating, and the first framework
    swapped each round (round 1 PyTorch first, round 2 TensorFlow first, ...)."""
    order = []
    for r in range(rounds):
        order += list(FRAMEWORKS) if r % 2 == 0 else list(reversed(FRAMEWORKS))
    return order


def schedule(plan):
    """Return the stages :func:`measure` runs one after the other; each stage is a list of
    ``(framework, role, tasks)`` processes run side by side (a timing stage holds one)."""
    other = [fw for fw in FRAMEWORKS if fw != "pytorch" or not plan["quick"]]
    stages = [  # nothing in the first stage is timed: its processes run side by side
        [(fw, "main", tasks(fw, plan, "main")) for fw in FRAMEWORKS]
        + [(fw, "memory", tasks(fw, plan, "memory")) for fw in other],
    ]
    counts = dict.fromkeys(FRAMEWORKS, 0)
    for fw in timing_order(plan["rounds"]):
        counts[fw] += 1
        stages.append([(fw, f"timing {counts[fw]}", tasks(fw, plan, "timing"))])
    return stages


def run_task(side, plan, setup, task, result):
    """Run one task with a framework's module ``side`` and store what it returns in ``result``."""
    kind, *args = task
    device = setup["device"]
    if kind == "memory":
        size = plan["large"]
        result["memory"][args[0]] = side.training_memory(
            size, args[0], plan["memory_steps"], plan["lr"], plan["seed"], device
        )
    elif kind == "demo":
        demo = getattr(side, DEMOS[args[0]])
        result["demos"][args[0]] = demo(device) if args[0] == "c8" else demo()
    elif kind == "accuracy":
        result["accuracy"] = {
            **side.seed_accuracies(
                plan["seeds"], plan["epochs"], plan["accuracy_batch"], 0.1, device
            ),
            "epochs": plan["epochs"],
        }
    elif kind == "timing":
        size, mode = args
        sized = plan[size]
        entry = side.step_time(
            sized, mode, plan["lr"], plan["seed"], device, sized["warmup"], sized["repeats"]
        )
        result["timing"].setdefault(size, {})[mode] = entry
    elif kind == "ops":
        where = device if args[0] == "gpu" else ("cpu" if side.FRAMEWORK == "pytorch" else "/CPU:0")
        result["ops"][args[0]] = side.op_times(plan["ops"], where, plan["warmup"], plan["repeats"])
    else:
        raise ValueError(f"unknown task {task!r}")


def _cpu_times():
    """Return (busy, total) CPU time in clock ticks since boot from /proc/stat, or None."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user time
    return total - idle, total


def machine_load(seconds=0.5):
    """Return ``(value, kind)``: how much CPU other programs use, before this process works.

    On Linux, measured over ``seconds`` while this process sleeps: ``kind`` is "cpu use" and
    ``value`` the CPUs' worth of time others used (0.5: half of one CPU). Elsewhere the 1-minute
    load average ("load average"), which also remembers the last minute; (None, None) without it.
    """
    first = _cpu_times()
    if first is not None:
        time.sleep(seconds)
        second = _cpu_times()
        busy, total = second[0] - first[0], second[1] - first[1]
        if total > 0:
            return busy / total * (os.cpu_count() or 1), "cpu use"
    try:
        return os.getloadavg()[0], "load average"
    except (AttributeError, OSError):
        return None, None


def _main(framework):
    """The worker process: read the plan, run the tasks, print progress and the result."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)  # our own channel to the parent
    os.dup2(2, 1)  # anything else written to stdout (libraries, prints) goes to stderr
    sys.stdout = sys.stderr

    def say(**message):
        protocol.write(json.dumps(message) + "\n")

    plan = json.loads(sys.stdin.readline())  # one line; a process started ahead gets "go" later
    from .quiet import quiet

    quiet()  # before the framework import
    if plan.get("tf_onednn") is None:
        os.environ.pop("TF_ENABLE_ONEDNN_OPTS", None)  # TensorFlow's own default
    else:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if plan["tf_onednn"] else "0"
    start = time.perf_counter()
    side = importlib.import_module(SIDES[framework])
    setup = side.configure(plan["threads"], plan["device"])
    import_s = time.perf_counter() - start
    if plan.get("ahead"):  # started ahead of its turn: wait, imported and idle, for the parent
        say(event="ready")
        if sys.stdin.readline().strip() != "go":
            return  # the parent ended without giving this process its turn
    busy, load_kind = machine_load()  # before this process adds its tasks' work
    load = [busy]
    setup.update(import_s=import_s, cpus=os.cpu_count(), load=load, load_kind=load_kind)
    todo = plan["tasks"]
    if setup["accelerator"] and ["ops", "cpu"] in todo:
        todo = [*todo, ["ops", "gpu"]]
    say(event="setup", setup=setup, tasks=len(todo))
    result = {
        "seconds": [],
        "framework": framework,
        "setup": setup,
        "memory": {},
        "timing": {},
        "ops": {},
        "demos": {},
    }
    for task in todo:
        say(event="start", task=task)
        began = time.perf_counter()
        run_task(side, plan, setup, task, result)
        seconds = time.perf_counter() - began
        result["seconds"].append([" ".join(task), seconds])
        say(event="done", task=task, seconds=seconds)
    load.append(machine_load(0.25)[0])
    say(event="result", result=result)


# ---------------------------------------------------------------- the parent side


def _read_lines(stream, lines):
    """Put every line of ``stream`` on the queue ``lines``, then None at its end."""
    for line in stream:
        lines.put(line)
    lines.put(None)


class WorkerFailed(RuntimeError):
    """A worker process ended without a result: its exit status and the end of its stderr."""


class Worker:
    """One worker process for ``framework`` running ``todo`` (tasks) with ``plan``.

    ``ahead=True`` starts it ahead of its turn: it imports its framework, says it is ready and
    waits for :meth:`go`. :meth:`result` waits for its result; :meth:`stop` ends it (always
    call it, or use :func:`run`). Its standard error is kept for the message of a failure.
    """

    def __init__(self, framework, plan, todo, *, ahead=False):
        self.framework, self.todo, self.ahead = framework, todo, ahead
        env = {**os.environ, **ENV, "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "course_utils.claims_worker", framework]
        self.errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by stop)
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
            env=env,
        )
        self.lines = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(self.proc.stdout, self.lines))
        reader.daemon = True
        reader.start()
        self.proc.stdin.write(json.dumps({**plan, "tasks": todo, "ahead": ahead}) + "\n")
        self.proc.stdin.flush()
        if not ahead:
            self.proc.stdin.close()
        self.is_ready = not ahead

    def _failed(self, why=None):
        if why is None:
            self.stop(keep_errors=True)
            self.errors.seek(0)
            tail = self.errors.read()[-3000:]
            why = f"the {self.framework} worker stopped (status {self.proc.returncode}):\n{tail}"
        self.stop()
        return WorkerFailed(why)

    def _message(self, deadline, waiting_for):
        try:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise self._failed(f"the {self.framework} worker ran past {waiting_for}") from None
        return None if line is None else json.loads(line)

    def ready(self, timeout=600):
        """Wait until a process started ahead has imported its framework."""
        deadline = time.monotonic() + timeout
        while not self.is_ready:
            message = self._message(deadline, f"{timeout} s before it was ready")
            if message is None:  # it ended before it was ready
                raise self._failed()
            self.is_ready = message["event"] == "ready"

    def go(self):
        """Give a process started ahead its turn."""
        self.proc.stdin.write("go\n")
        self.proc.stdin.close()

    def result(self, *, bar=None, timeout=1200):
        """Wait for the result (a dict); raise :class:`WorkerFailed` if it fails or runs past
        ``timeout`` seconds from now. ``bar`` (a tqdm bar) advances by one per finished task."""
        deadline = time.monotonic() + timeout
        result = None
        try:
            while True:
                message = self._message(deadline, f"{timeout} s")
                if message is None:  # the process closed its output: it has ended
                    break
                if message["event"] == "start" and bar is not None:
                    bar.set_postfix_str(f"{self.framework}: {' '.join(message['task'])}")
                elif message["event"] == "done" and bar is not None:
                    bar.update(1)
                elif message["event"] == "setup" and bar is not None:
                    bar.total += message["tasks"] - len(self.todo)  # a GPU adds a task
                    bar.refresh()
                elif message["event"] == "result":
                    result = message["result"]
            self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise
        if result is None or self.proc.returncode != 0:
            raise self._failed()
        self.stop()
        return result

    def stop(self, keep_errors=False):
        """End the process if it still runs (one that waits for its turn is told to end, any
        other is killed), and close what it used."""
        if self.proc.poll() is None:
            if self.ahead and self.is_ready and not self.proc.stdin.closed:
                self.proc.stdin.close()  # it reads no "go" and returns
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        if not keep_errors and not self.errors.closed:
            self.errors.close()


def run(framework, plan, todo, *, bar=None, timeout=1200):
    """Run ``todo`` (tasks) for ``framework`` in a fresh process; return its result dict.

    ``bar`` (a tqdm bar) advances by one per finished task. The process is stopped when it
    runs past ``timeout`` seconds, when the caller is interrupted, or when anything fails.
    """
    return Worker(framework, plan, todo).result(bar=bar, timeout=timeout)


def _median(values):
    import statistics

    return statistics.median(values)


def merge(results, framework, role, got):
    """Add one process's result ``got`` to ``results[framework]``: memory and demonstrations as
    they are; a timing process's entries as one figure per process (its median step, its first
    call, its median operation time), and its CPU-use readings to ``loads``."""
    if role == "main":
        results[framework] = {
            **got,
            "timing": {},
            "ops": {},
            "loads": [],
            "processes": {"timing": 0},
        }
        return
    mine = results[framework]
    mine["seconds"] += got["seconds"]
    if role == "memory":
        mine["memory"].update(got["memory"])
        return
    mine["processes"]["timing"] += 1
    for size, modes in got["timing"].items():
        for mode, e in modes.items():
            entry = (
                mine["timing"].setdefault(size, {}).setdefault(mode, {"first_s": [], "times": []})
            )
            entry["first_s"].append(e["first_s"])
            entry["times"].append(_median(e["times"]))
    for where, ops in got["ops"].items():
        if ops is None:
            continue
        for op, e in ops.items():
            mine["ops"].setdefault(where, {}).setdefault(op, {"times": []})["times"].append(
                _median(e["times"])
            )
    setup = got["setup"]
    before = (setup.get("load") or [None])[0]  # measured before its first task
    add_load(results, framework, role, "before", before, setup.get("load_kind"))


def add_load(results, framework, role, when, value, kind):
    """Add one reading of other programs' CPU use around a timing process to ``loads``."""
    results[framework]["loads"].append(
        {
            "process": f"the {framework} {role} process",
            "when": when,
            "value": value,
            "kind": kind,
            "cpus": os.cpu_count(),
        }
    )


SHARE = "COURSE_CLAIMS_SHARE"  # a folder: one measurement per plan, shared by a run's notebooks


def measure(plan, *, progress="lines", timeout=1200):
    """Measure both frameworks with ``plan`` (see :func:`measure_now`); return the results.

    Both twins of the claims lab measure the same thing: both frameworks, with the same plan.
    Where a command runs both (``course run``, ``course test``), it sets ``COURSE_CLAIMS_SHARE``
    to a folder of its own, and the first twin's measurement serves the second, which waits for
    it rather than measuring again beside it. A notebook run on its own always measures.
    """
    folder = os.environ.get(SHARE)
    if not folder:
        return measure_now(plan, progress=progress, timeout=timeout)
    try:
        import fcntl
    except ImportError:  # Windows: no shared measurement
        return measure_now(plan, progress=progress, timeout=timeout)
    import hashlib
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]
    saved = folder / f"{key}.json"
    with open(folder / f"{key}.lock", "w") as lock:
        waited = time.perf_counter()
        fcntl.flock(lock, fcntl.LOCK_EX)  # held while another notebook of the run measures
        if saved.exists():
            shared = json.loads(saved.read_text())
            print(
                f"The other notebook of this run measured the same plan {time.time() - shared['at']:.0f} s "
                f"ago (this one waited {time.perf_counter() - waited:.0f} s): its figures are "
                f"used here, one measurement per run ({SHARE}={folder})."
            )
            return shared["results"]
        results = measure_now(plan, progress=progress, timeout=timeout)
        partial = saved.with_suffix(".part")
        partial.write_text(json.dumps({"at": time.time(), "results": results}))
        partial.replace(saved)
        return results


def measure_now(plan, *, progress="lines", timeout=1200):
    """Measure both frameworks with ``plan`` (from :func:`course_utils.claims.settings`) in fresh
    processes (:func:`schedule`); return ``{"pytorch": result, "tensorflow": result}`` (see
    :mod:`course_utils.claims`), timings as one figure per timing process. Other programs' CPU
    use is read before each timing process imports its framework (by the process) and after it
    has ended (here), for :func:`course_utils.claims.machine_busy`.

    ``progress``: "lines" prints one line per finished process (what a notebook stores is then
    the final state), True shows a tqdm bar, False nothing.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    stages = schedule(plan)
    total = sum(len(t) for stage in stages for _, _, t in stage)
    results = {}
    began = time.perf_counter()

    def done(framework, role, got):
        merge(results, framework, role, got)
        if role.startswith("timing"):
            # measured here, once the process has ended: its own threads, which may still spin
            # for a moment after their last task, are not counted
            add_load(results, framework, role, "after", *machine_load())
        if progress == "lines":
            print(
                f"{framework} {role} process done "
                f"({time.perf_counter() - began:.0f} s since the start)"
            )

    first, timed = stages[0], [stage[0] for stage in stages[1:]]  # a timing stage holds one
    # The first AHEAD timing processes import their framework beside stage 1 (nothing timed)
    ahead = [Worker(fw, plan, work, ahead=True) for fw, _, work in timed[:AHEAD]]
    try:
        with tqdm(total=total, desc="claims lab", disable=progress is not True) as bar:
            with ThreadPoolExecutor(len(first)) as pool:
                running = [
                    (fw, role, pool.submit(run, fw, plan, work, bar=bar, timeout=timeout))
                    for fw, role, work in first
                ]
                for framework, role, future in running:
                    done(framework, role, future.result())
            for worker in ahead:  # no timing starts while one of them is still importing
                worker.ready(timeout=timeout)
            for index, (framework, role, work) in enumerate(timed):
                if index < len(ahead):
                    worker = ahead[index]
                    worker.go()
                else:
                    worker = Worker(framework, plan, work)
                done(framework, role, worker.result(bar=bar, timeout=timeout))
    finally:
        for worker in ahead:
            worker.stop()
    return results


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in SIDES:
        raise SystemExit(f"usage: python -m course_utils.claims_worker {{{','.join(SIDES)}}}")
    _main(sys.argv[1])
