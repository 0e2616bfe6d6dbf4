"""The course's command line: ``course`` or ``python -m course_tools``.

    course doctor                       what is installed, which devices each framework sees
    course run [--only 01 pytorch]      execute the curriculum headless, write the report
    course exercises generate|check     make exercises/ from solutions/, or check it is current
    course refresh [--only ...]         re-execute source notebooks and store their outputs
    course new NN_name --title T        scaffold a new concept's four notebooks
    course list                         the concepts and their notebooks
    course kernels                      the CPU knobs that select other kernels, and their presets
    course site [--out build/site]      the course as a static website, with the twin view
    course grade SUBMISSIONS_DIR        execute students' exercise notebooks, tabulate the checks
    course stamp --repository O/N       point badges, install cells and links at a fork

Bad input (an unknown concept, a missing or malformed notebook, a missing submissions folder,
an invalid OWNER/NAME) exits with status 2.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from course_utils.errors import CourseError

from . import notebooks


def _parser():
    p = argparse.ArgumentParser(prog="course", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("doctor", help="report versions, devices and missing packages")
    d.add_argument("--frameworks", nargs="*", default=["torch", "tensorflow"])
    d.add_argument("--json", action="store_true", help="print the report as JSON")

    def selection(parser, default_sets):
        parser.add_argument(
            "--only",
            nargs="*",
            default=[],
            metavar="NAME",
            help="concepts (01, 01_graphs, graphs), tracks, or concept/track",
        )
        parser.add_argument(
            "--set",
            nargs="*",
            default=list(default_sets),
            dest="sets",
            choices=notebooks.SETS,
            help="which notebook folders",
        )

    r = sub.add_parser("run", help="execute the notebooks headless and write the report")
    selection(r, ["notebooks"])
    r.add_argument("--full", action="store_true", help="full mode (slow), not quick mode")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="auto")
    r.add_argument("--out", default="build/run", help="folder for executed copies and report")
    r.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")
    r.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="notebooks that time nothing run this many at a time (default: 2 on 2+ cores); "
        "a notebook that times something always runs alone",
    )
    r.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (none is drawn when the output is not a terminal, e.g. a log file)",
    )

    e = sub.add_parser("exercises", help="generate exercises/ from solutions/, or check it")
    e.add_argument("action", choices=["generate", "check"])
    e.add_argument("--only", nargs="*", default=[], metavar="NAME")
    e.add_argument(
        "--force",
        action="store_true",
        help="overwrite edited exercise notebooks (a backup goes to build/)",
    )

    f = sub.add_parser(
        "refresh", help="re-execute source notebooks and store their outputs in place"
    )
    selection(f, ["notebooks", "solutions"])
    f.add_argument("--timeout", type=int, default=600)

    n = sub.add_parser("new", help="scaffold a concept's notebooks from the template")
    n.add_argument("concept", help="folder name, e.g. 09_attention")
    n.add_argument("--title", required=True)
    n.add_argument("--section", action="append", default=[], help="a section heading (repeat)")

    sub.add_parser("list", help="list the concepts and notebooks")

    k = sub.add_parser("kernels", help="the CPU kernel knobs and the course's named selections")
    k.add_argument("--json", action="store_true", help="print as JSON")
    w = sub.add_parser("site", help="build the course as a static website (nothing is executed)")
    w.add_argument("--out", default="build/site", help="folder to write (replaced by each build)")
    w.add_argument(
        "--report", default="build/run", help="folder of the run report to include, when present"
    )
    w.add_argument("--no-report", action="store_true", help="leave the run report out")
    w.add_argument("--verbose", action="store_true", help="name each notebook as it is rendered")
    g = sub.add_parser(
        "grade", help="execute students' exercise notebooks and tabulate the checkers' verdicts"
    )
    g.add_argument("submissions", help="folder of submitted notebooks (any layout)")
    g.add_argument("--out", help="folder for the gradebook (default: build/grades in the checkout)")
    g.add_argument("--timeout", type=int, default=120, help="seconds allowed per notebook")
    g.add_argument("--jobs", type=int, default=1, help="notebooks executed at the same time")
    g.add_argument(
        "--isolation",
        help="how each notebook is isolated: container, bwrap or process (default: the "
        "strongest this machine offers)",
    )

    c = sub.add_parser(
        "claims", help="run the claims lab's measurements and print each claim's verdicts"
    )
    c.add_argument("--repeat", type=int, default=3, help="how many times to measure (default 3)")
    c.add_argument("--full", action="store_true", help="full mode instead of quick mode")
    c.add_argument("--threads", type=int, help="CPU threads for both frameworks (default: cores)")

    u = sub.add_parser(
        "durations",
        help="update tests/durations.json (the order of the test command's files) from a run",
    )
    u.add_argument(
        "--times",
        default="build/test-logs/times-main.json",
        help="a course test run's per-file times (default: the last run's main pass)",
    )

    from .stamp import add_arguments

    add_arguments(sub.add_parser("stamp", help="point badges, install cells and links at a fork"))
    return p


def cmd_claims(args, root):
    """Measure the claims lab ``--repeat`` times and print every claim's verdicts side by side;
    exit status 1 when a claim flips between supported and contradicted."""
    from course_utils import claims, doctor
    from course_utils.quiet import quiet

    quiet()
    print(doctor.machine())
    seen = claims.repeat(args.repeat, quick=not args.full, threads=args.threads)
    flips = [c for c, o in seen.items() if claims.SUPPORTED in o and claims.CONTRADICTED in o]
    return 1 if flips else 0


def cmd_doctor(args, root):
    from course_utils.doctor import environment, format_report

    report = environment(args.frameworks)
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0


def cmd_run(args, root):
    from . import report, runner, timing

    entries = notebooks.select(root, args.only, args.sets)
    for entry in entries:
        notebooks.read(entry.path)  # malformed files fail here, before minutes of work
    out = (root / args.out) if not Path(args.out).is_absolute() else Path(args.out)
    print(f"Running {len(entries)} notebook(s) in {'full' if args.full else 'quick'} mode -> {out}")
    began = time.perf_counter()
    outcomes = runner.run_all(
        root,
        entries,
        out,
        quick=not args.full,
        seed=args.seed,
        device=args.device,
        timeout=args.timeout,
        progress=not args.no_progress and sys.stderr.isatty(),
        jobs=args.jobs,
    )
    paths = report.write(outcomes, out, quick=not args.full)
    print("\n" + timing.run_summary(outcomes))
    print(f"Wall time: {time.perf_counter() - began:.0f} s.")
    failed = [o for o in outcomes if not o.ok]
    print(f"\nReport: {paths[0]}  (also {paths[1].name}, {paths[2].name})")
    if failed:
        print(f"\n{len(failed)} of {len(outcomes)} notebook(s) failed:")
        for o in failed:
            print(f"  - {o.error}\n    executed copy: {o.output}")
        return 1
    print(f"All {len(outcomes)} notebook(s) ran.")
    return 0


def cmd_exercises(args, root):
    from . import exercises

    entries = notebooks.select(root, args.only, ["solutions"])
    if args.action == "check":
        problems = exercises.stale(root, entries)
        for p in problems:
            print(f"  - {p}")
        if problems:
            print("exercises/ is out of date: run `course exercises generate`.")
            return 1
        print(f"exercises/ is current ({len(entries)} notebook(s)).")
        return 0
    written = exercises.generate_all(root, entries, force=args.force)
    for path in written:
        print(f"wrote {path.relative_to(root)}")
    print(
        f"{len(written)} exercise notebook(s) written, {len(entries) - len(written)} already current."
    )
    return 0


def cmd_refresh(args, root):
    import tempfile

    from course_utils import doctor

    from . import runner

    entries = notebooks.select(root, args.only, args.sets)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="course-refresh-") as scratch:
        for entry in entries:
            notebooks.read(entry.path)
            target = Path(scratch) / entry.set / entry.concept / f"{entry.track}.ipynb"
            # Same working folder as nbval (the notebook's own), default parameters, no injection.
            outcome = runner.execute(entry, target, cwd=entry.path.parent, timeout=args.timeout)
            if not outcome.ok:
                failed += 1
                print(f"FAILED {entry.key}: {outcome.error} (left unchanged)")
                continue
            executed = notebooks.clean(notebooks.read(target), root=root)
            # Which CPU recorded these outputs: float digits depend on it (see course kernels).
            executed.metadata.setdefault("course", {})["recorded_on"] = doctor.machine()
            notebooks.write(executed, entry.path)
            print(f"ok     {outcome.seconds:6.1f} s  {entry.key}")
    return 1 if failed else 0


def cmd_new(args, root):
    from .template import scaffold

    if not notebooks.CONCEPT_RE.match(args.concept):
        raise CourseError(
            f"concept folder {args.concept!r} must look like NN_name, e.g. 09_attention"
        )
    for set_name in ("notebooks", "solutions"):
        for track in notebooks.TRACKS:
            path = root / set_name / args.concept / f"{track}.ipynb"
            if path.exists():
                raise CourseError(f"{path.relative_to(root)} exists; not overwriting it")
    for set_name in ("notebooks", "solutions"):
        for track in notebooks.TRACKS:
            nb = scaffold(set_name, args.concept, track, args.title, sections=args.section)
            path = root / set_name / args.concept / f"{track}.ipynb"
            notebooks.write(notebooks.clean(nb), path)
            print(f"wrote {path.relative_to(root)}")
    return 0


def cmd_list(args, root):
    for concept in notebooks.concepts(root):
        present = [
            f"{s}/{t}"
            for s in notebooks.SETS
            for t in notebooks.TRACKS
            if (root / s / concept / f"{t}.ipynb").is_file()
        ]
        print(f"{concept}: {', '.join(present)}")
    return 0


def cmd_kernels(args, root):
    from course_utils import cpu

    from . import cross_cpu

    cross = cpu.cross_selection()
    if args.json:
        facts = {"cpu": cpu.describe(), "knobs": cpu.KNOBS, "no_knob": list(cpu.NO_KNOB)}
        facts.update(selections=cpu.SELECTIONS, cross=cross)
        facts["cross_env"] = cpu.SELECTIONS.get(cross, {})
        facts["cross_paths"] = cross_cpu.select(root)
        print(json.dumps(facts, indent=1))
        return 0
    print(f"CPU: {cpu.describe()}")
    print("Knobs that select other CPU kernels (environment variables):")
    for name, what in cpu.KNOBS.items():
        print(f"  {name:24} {what}")
    print("No knob found for: " + "; ".join(cpu.NO_KNOB))
    print("Named selections (COURSE_KERNELS=<name> python3 course.py test):")
    for name, env in cpu.SELECTIONS.items():
        print(f"  {name:12} " + " ".join(f"{k}={v}" for k, v in env.items()))
    print(f"The test command's cross-CPU pass on this CPU: {cross or 'none (no knob applies)'}")
    print(
        "It re-executes the notebooks whose compared outputs can change with the kernels, up to\n"
        "the last such cell (nbval's cell numbers, code cells from 0):"
    )
    for path in cross_cpu.select(root):
        why = cross_cpu.reasons(root / path)
        last = cross_cpu.last_cell(root / path)
        print(f"  {path}: cell {why[0][0]} {why[0][1]}; cells 0-{last} re-run")
    return 0


def cmd_durations(args, root):
    from . import test_order

    try:
        count = test_order.save(root, root / args.times)
    except FileNotFoundError as err:
        raise CourseError(str(err)) from None
    print(f"{test_order.COMMITTED}: {count} files' durations, from {args.times}")
    return 0


def cmd_site(args, root):
    from . import site

    built = site.build(
        root,
        args.out,
        report=None if args.no_report else args.report,
        log=print if args.verbose else None,
    )
    for warning in built.warnings:
        print(f"warning: {warning}")
    index = built.out / "index.html"
    print(
        f"Site: {len(built.pages)} pages in {built.seconds:.1f} s"
        f"{', with the run report' if built.report else ', no run report (run `course run` first)'}"
    )
    print(f"Open {index.as_uri()}")
    return 0


def cmd_grade(args, root):
    from . import gradebook, grading

    out = Path(args.out) if args.out else (root or Path.cwd()) / "build" / "grades"
    rows, _ = grading.grade(
        args.submissions,
        out,
        root=root,
        timeout=args.timeout,
        jobs=args.jobs,
        isolation=args.isolation,
    )
    print()
    print("\n".join(gradebook.text_summary(rows)))
    notes = {}
    for row in rows:
        if row.notes:
            notes.setdefault(row.notebook, {}).update(dict.fromkeys(row.notes.split("; ")))
    if notes:
        print(f"\n{len(notes)} notebook(s) have notes (the notes column has them in full):")
        for notebook, parts in notes.items():
            text = "; ".join(parts)
            print(f"  - {notebook}: {text if len(text) < 300 else text[:300] + '...'}")
    print(f"\nGradebook: {out / 'grades.html'}  (also grades.csv, summary.csv, grades.json)")
    return 0


def cmd_stamp(args, root):
    from . import stamp

    return stamp.command(root, args.repository, args.branch, dry_run=args.dry_run)


COMMANDS = {
    "doctor": cmd_doctor,
    "run": cmd_run,
    "exercises": cmd_exercises,
    "refresh": cmd_refresh,
    "new": cmd_new,
    "list": cmd_list,
    "kernels": cmd_kernels,
    "site": cmd_site,
    "grade": cmd_grade,
    "stamp": cmd_stamp,
    "claims": cmd_claims,
    "durations": cmd_durations,
}


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        from course_utils.paths import find_root, repo_root

        here = ("doctor", "kernels", "grade", "claims")
        root = find_root() if args.command in here else repo_root()
        return COMMANDS[args.command](args, root)
    except CourseError as err:
        print(f"course {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
