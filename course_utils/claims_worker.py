"""The claims lab's harness: each framework measured in a fresh Python process of its own.

:func:`measure` runs four short-lived processes, the timing ones one after the other, so that neither
framework's import, memory allocator or thread pools can disturb the other's figures:

1. PyTorch: training memory in its default mode (the first thing the process does), then the
   demonstrations, accuracy over seeds, training-step times and operation times;
2. TensorFlow: the same, in the same order, with the same settings;
3. and 4., side by side: PyTorch and TensorFlow again, each for the training memory of its
   other mode (``torch.compile``; eager TensorFlow).

Every process gets the same plan (:func:`course_utils.claims.settings`: model sizes, batch, data,
float32, thread count) and runs ``python -m course_utils.claims_worker FRAMEWORK`` with the plan on
standard input. It reports each task as it starts and ends (the progress bar follows them) and
prints its result as one JSON line; the experiments themselves are the functions of
:mod:`course_utils.claims_torch` and :mod:`course_utils.claims_tf`.
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

from .claims import DEFAULT_MODE, FRAMEWORKS, MODES
from .quiet import ENV

SIDES = {"pytorch": "course_utils.claims_torch", "tensorflow": "course_utils.claims_tf"}
DEMOS = {
    "c1": "define_by_run",
    "c2": "debugging_inside",
    "c8": "gpu_code_change",
    "c11": "graph_transition",
}


def memory_figures(step, steps, device, parameters):
    """Run ``step()`` ``steps`` times in this process and return its memory, in MiB::

        {"runtime": resident memory before training (framework, data, model),
         "first_step_delta": what the first step (tracing/compiling included) added at its peak,
         "steady_delta": what the later steps needed at their peak, above the runtime,
         "train_peak": the process peak over the whole run, "train_delta": that minus runtime,
         "accelerator_peak": the framework allocator's peak on a GPU (None on a CPU),
         "peak_was_reset": bool, "parameters": int, "steps": int}

    Uses :func:`course_utils.training.measure_memory` (process RSS, allocator peak on a GPU),
    once for the first step and once for the rest.
    """
    from .bench import process_rss
    from .training import measure_memory

    if steps < 2:
        raise ValueError("steps must be at least 2: a first step and steady steps")
    runtime = process_rss()
    first = measure_memory(step, device)
    rest = measure_memory(lambda: [step() for _ in range(steps - 1)], device)
    mib = 2**-20
    peak = max(first.rss_peak, rest.rss_peak)
    accel = [m.accelerator_peak for m in (first, rest) if m.accelerator_peak is not None]
    return {
        "runtime": runtime * mib,
        "first_step_delta": (first.rss_peak - runtime) * mib,
        "steady_delta": (rest.rss_peak - runtime) * mib,
        "train_peak": peak * mib,
        "train_delta": (peak - runtime) * mib,
        "accelerator_peak": max(accel) * mib if accel else None,
        "peak_was_reset": first.peak_was_reset and rest.peak_was_reset,
        "parameters": parameters,
        "steps": steps,
    }


# ---------------------------------------------------------------- the plan


def tasks(framework, plan, memory_mode=None, everything=True):
    """Return the list of tasks one process runs, in order: ``[kind, *arguments]`` lists.

    ``memory_mode`` (default: the framework's default mode) is measured first, while the process
    is fresh; ``everything=False`` stops there.
    """
    todo = [["memory", memory_mode or DEFAULT_MODE[framework]]]
    if not everything:
        return todo
    todo += [["demo", name] for name in DEMOS]
    todo.append(["accuracy"])
    todo += [["timing", size, mode] for size in ("small", "large") for mode in MODES[framework]]
    todo.append(["ops", "cpu"])
    return todo


OTHER_MODE = {"pytorch": "compiled", "tensorflow": "eager"}  # the memory of the second process


def jobs(plan):
    """Return the processes :func:`measure` runs: ``(one after the other, side by side)``, each a
    list of ``(framework, tasks)``."""
    sequential = [(fw, tasks(fw, plan)) for fw in FRAMEWORKS]
    side_by_side = [(fw, tasks(fw, plan, OTHER_MODE[fw], everything=False)) for fw in FRAMEWORKS]
    return sequential, side_by_side


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

    plan = json.loads(sys.stdin.read())
    from .quiet import quiet

    quiet()  # before the framework import
    if plan.get("tf_onednn") is None:
        os.environ.pop("TF_ENABLE_ONEDNN_OPTS", None)  # TensorFlow's own default
    else:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if plan["tf_onednn"] else "0"
    busy, load_kind = machine_load()  # before this process adds its own work
    load = [busy]
    start = time.perf_counter()
    side = importlib.import_module(SIDES[framework])
    setup = side.configure(plan["threads"], plan["device"])
    setup.update(
        import_s=time.perf_counter() - start, cpus=os.cpu_count(), load=load, load_kind=load_kind
    )
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


def run(framework, plan, todo, *, bar=None, timeout=1200):
    """Run ``todo`` (tasks) for ``framework`` in a fresh process; return its result dict.

    ``bar`` (a tqdm bar) advances by one per finished task. The process is stopped when it
    runs past ``timeout`` seconds, when the caller is interrupted, or when anything fails.
    """
    env = {**os.environ, **ENV, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "course_utils.claims_worker", framework]
    with tempfile.TemporaryFile(mode="w+") as errors:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=env,
        )
        lines = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        result = None
        try:
            proc.stdin.write(json.dumps({**plan, "tasks": todo}))
            proc.stdin.close()
            while True:
                try:
                    line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    raise WorkerFailed(f"the {framework} worker ran past {timeout} s") from None
                if line is None:  # the process closed its output: it has ended
                    break
                message = json.loads(line)
                if message["event"] == "start" and bar is not None:
                    bar.set_postfix_str(f"{framework}: {' '.join(message['task'])}")
                elif message["event"] == "done" and bar is not None:
                    bar.update(1)
                elif message["event"] == "setup" and bar is not None:
                    bar.total += message["tasks"] - len(todo)  # a GPU adds a task
                    bar.refresh()
                elif message["event"] == "result":
                    result = message["result"]
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if result is None or proc.returncode != 0:
            errors.seek(0)
            tail = errors.read()[-3000:]
            raise WorkerFailed(
                f"the {framework} worker stopped (status {proc.returncode}):\n{tail}"
            )
    return result


def measure(plan, *, progress=True, timeout=1200):
    """Measure both frameworks with ``plan`` (from :func:`course_utils.claims.settings`) in fresh
    processes; return ``{"pytorch": result, "tensorflow": result}`` (see :mod:`course_utils.claims`).

    The two main processes run one after the other, alone, because they time things. The two
    memory-only processes then run side by side: a process's resident memory does not depend on
    how much CPU time it gets, and this saves a TensorFlow start-up.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    sequential, side_by_side = jobs(plan)
    total = sum(len(t) for _, t in sequential + side_by_side)
    results = {}
    with tqdm(total=total, desc="claims lab", disable=not progress) as bar:
        for framework, work in sequential:
            results[framework] = run(framework, plan, work, bar=bar, timeout=timeout)
        with ThreadPoolExecutor(len(side_by_side)) as pool:
            running = [
                (fw, pool.submit(run, fw, plan, work, bar=bar, timeout=timeout))
                for fw, work in side_by_side
            ]
            for framework, future in running:
                got = future.result()
                results[framework]["memory"].update(got["memory"])
                results[framework]["seconds"] += got["seconds"]
    return results


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in SIDES:
        raise SystemExit(f"usage: python -m course_utils.claims_worker {{{','.join(SIDES)}}}")
    _main(sys.argv[1])
