"""ONNX Runtime Web in a real headless Chromium: serve a model with the runtime, run it, compare.

    folder = web.prepare_page(work / "browser", {"digits": onnx_path})
    with browser.static_server(folder) as url:
        runs = browser.in_browser(lambda b: web.run_in_page(b, url, X, ["digits"]))

The runtime is the npm package ``onnxruntime-web`` at the exact version of ``web/package.json``
and ``web/package-lock.json``; ``python3 course.py setup`` installs it into ``web/node_modules``
with ``npm ci`` where npm exists. The page loads its WebAssembly build (``ort.wasm.min.js``),
single-threaded: a page served without cross-origin isolation has no shared memory for threads.
Nothing is fetched from the internet: the page, the runtime and the model come from a server
on 127.0.0.1.
"""

import json
import os
import shutil
from pathlib import Path

PACKAGE = "onnxruntime-web"
RUNTIME_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>ONNX Runtime Web: the course's models</title>
<script src="ort/ort.wasm.min.js"></script>
<script>
ort.env.wasm.numThreads = 1;  // no cross-origin isolation here, so no threads
ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
// Run one model on a float32 batch: the outputs once, `warmup` untimed runs, then `repeats`
// samples of `inner` runs each (the page's clock ticks in 0.1 ms steps: one run is too short).
window.courseRun = async ({model, data, shape, warmup, repeats, inner}) => {
  const session = await ort.InferenceSession.create(model, {executionProviders: ["wasm"]});
  const input = new ort.Tensor("float32", Float32Array.from(data), shape);
  const feeds = {[session.inputNames[0]]: input};
  const first = await session.run(feeds);
  const output = first[session.outputNames[0]];
  for (let i = 0; i < warmup; i++) await session.run(feeds);
  const times = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    for (let j = 0; j < inner; j++) await session.run(feeds);
    times.push((performance.now() - start) / inner);
  }
  await session.release();
  return {scores: Array.from(output.data), dims: Array.from(output.dims), times,
          version: ort.env.versions.web || null, userAgent: navigator.userAgent};
};
</script>
<p>In the console: <code>await courseRun({model: "digits.onnx", data, shape, warmup: 10,
repeats: 20, inner: 10})</code> (<code>data</code>: the rows, flattened).</p>
"""


def web_folder():
    """Return the repository's ``web/`` folder (where ``package.json`` lives), or None.

    ``COURSE_WEB`` names another folder; otherwise the checkout that holds this package, then
    the checkout found from the current folder.
    """
    named = os.environ.get("COURSE_WEB")
    if named:
        return Path(named)
    from .paths import find_root

    candidates = [Path(__file__).resolve().parents[1], find_root()]
    for root in candidates:
        if root is not None and (root / "web" / "package.json").is_file():
            return root / "web"
    return None


def pinned_version(package=PACKAGE):
    """Return the exact version ``web/package.json`` asks for (a string), or None."""
    folder = web_folder()
    if folder is None:
        return None
    return json.loads((folder / "package.json").read_text()).get("dependencies", {}).get(package)


def installed_version(package=PACKAGE):
    """Return the version installed in ``web/node_modules`` (a string), or None."""
    folder = web_folder()
    manifest = folder / "node_modules" / package / "package.json" if folder else None
    if manifest is None or not manifest.is_file():
        return None
    return json.loads(manifest.read_text()).get("version")


def runtime_dir():
    """Return the folder of ONNX Runtime Web's browser files (``dist``), or None."""
    folder = web_folder()
    dist = folder / "node_modules" / PACKAGE / "dist" if folder else None
    return dist if dist and all((dist / f).is_file() for f in RUNTIME_FILES) else None


def why_unavailable():
    """Return why ONNX Runtime Web cannot run in a browser here (a sentence), or None."""
    from . import browser

    if web_folder() is None:
        return "the course's web/ folder (package.json) was not found."
    if runtime_dir() is None:
        npm = shutil.which("npm")
        how = (
            "run `python3 course.py setup`, or `npm ci --prefix web`"
            if npm
            else "npm is not installed here (install Node.js, then run `python3 course.py setup`)"
        )
        return f"{PACKAGE} is not installed in web/node_modules: {how}."
    if installed_version() != pinned_version():
        return (
            f"web/node_modules holds {PACKAGE} {installed_version()}, but web/package.json pins "
            f"{pinned_version()}: run `npm ci --prefix web`."
        )
    problem = browser.why_unavailable()
    return f"no browser can be started: {problem}" if problem else None


def prepare_page(folder, models):
    """Write a page that runs ONNX models with ONNX Runtime Web into ``folder``; return ``folder``.

    ``models`` maps a name to an ``.onnx`` path; each is copied as ``<name>.onnx``. The runtime's
    files are linked (or copied where links are not allowed) under ``ort/``.
    """
    dist = runtime_dir()
    if dist is None:
        raise FileNotFoundError(why_unavailable() or f"{PACKAGE} is not installed")
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "ort").mkdir(parents=True)
    for name in RUNTIME_FILES:
        target = folder / "ort" / name
        try:
            target.symlink_to(dist / name)
        except OSError:  # e.g. Windows without the right to make links
            shutil.copyfile(dist / name, target)
    for name, path in models.items():
        shutil.copyfile(path, folder / f"{name}.onnx")
    (folder / "index.html").write_text(PAGE)
    return folder


def run_in_page(browser, url, X, names, *, warmup=10, repeats=20, inner=10, timeout_ms=60_000):
    """Open the page at ``url`` in ``browser`` and run each named model on ``X``.

    Returns ``{name: {"outputs": float32 array, "latency_s": median seconds per run,
    "times_s": every sample (seconds per run, averaged over ``inner`` runs), "version": the
    runtime's own version string}}`` plus the key ``"user_agent"`` (the browser's). An error in
    the page (a failed load, a model the runtime refuses) raises RuntimeError with its message.
    """
    import numpy as np

    X = np.ascontiguousarray(X, dtype=np.float32)
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    try:
        page.goto(f"{url}/index.html", timeout=timeout_ms)
        page.wait_for_function("typeof window.courseRun === 'function'", timeout=timeout_ms)
        results = {}
        for name in names:
            try:
                got = page.evaluate(
                    "args => window.courseRun(args)",
                    {
                        "model": f"{name}.onnx",
                        "data": X.ravel().tolist(),
                        "shape": list(X.shape),
                        "warmup": warmup,
                        "repeats": repeats,
                        "inner": inner,
                    },
                )
            except Exception as err:
                detail = "; ".join(errors) or str(err).splitlines()[0]
                raise RuntimeError(f"ONNX Runtime Web failed on {name}: {detail}") from None
            outputs = np.asarray(got["scores"], dtype=np.float32).reshape(got["dims"])
            times = [t / 1e3 for t in got["times"]]
            results[name] = {
                "outputs": outputs,
                "latency_s": float(np.median(times)) if times else None,
                "times_s": times,
                "version": got["version"],
            }
            results["user_agent"] = got["userAgent"]
        return results
    finally:
        page.close()
