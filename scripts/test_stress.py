"""The test suite under stress, to find tests that pass only on a quiet machine (`make test-stress`).

    python scripts/test_stress.py                              # the whole suite, three passes
    python scripts/test_stress.py -- tests/test_config.py -x   # pytest arguments after "--"
    python scripts/test_stress.py --passes random --seed 7     # one pass, a chosen order

Three passes, each a full pytest run:

- `one-core`: pinned to CPU 0 with `taskset -c 0`, so every thread, subprocess and server the
  tests start shares one core (timeouts and thread-count assumptions show up here);
- `busy`: beside a pure-Python busy loop on every core the suite may use, killed at the end
  (CI shares its 2 cores with other work);
- `random`: in a random order (pytest-random-order, module buckets: modules shuffled, and tests
  within each module), which finds tests that depend on another test's leftovers. The plugin is
  off unless asked for, so `make test` keeps its order; the seed is printed and saved, and
  `--seed N` replays an order.

Each pass writes `<pass>.xml` (JUnit) and `<pass>.log` into the output folder (default
runs/stress-<time>/), and `summary.json` lists every failed test with the passes it failed in.
The exit code is 1 when any test failed or any pass did not finish cleanly, else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PASSES = ("one-core", "busy", "random")
# pytest's exit codes 0 (all passed) and 1 (some failed) mean the run itself finished;
# 5 is "no tests collected" (a filter that matched nothing), which is not a finished check.
FINISHED = (0, 1)


def cpus() -> list[int]:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


@contextmanager
def busy_loops(n: int) -> Iterator[list[int]]:
    """`n` processes spinning in pure Python (one core each) until the block ends."""
    loops = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
        for _ in range(n)
    ]
    try:
        yield [p.pid for p in loops]
    finally:
        for p in loops:
            p.kill()
        for p in loops:
            p.wait()


def pytest_command(name: str, junit: Path, seed: int, extra: list[str]) -> list[str]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += [f"--junitxml={junit}", "-o", "junit_family=xunit1"]  # xunit1 names each file
    if name == "one-core":
        command = ["taskset", "-c", str(cpus()[0]), *command]
    if name == "random":
        command += ["--random-order-bucket=module", f"--random-order-seed={seed}"]
    return command + extra


def run_pass(command: list[str], log: Path) -> int:
    """Run pytest, its output shown as it comes and kept in `log`; its exit code."""
    with log.open("w", encoding="utf-8") as kept:
        kept.write(" ".join(command) + "\n")
        process = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            kept.write(line)
        return process.wait()


def test_id(case: ET.Element) -> str:
    """A pytest node id from a JUnit (xunit1) test case: file::Class::name or file::name."""
    file, classname, name = (case.get(k, "") for k in ("file", "classname", "name"))
    if not classname:  # a collection error: no class, the name is the module's
        return file or name
    module = file.removesuffix(".py").replace("/", ".").replace("\\", ".")
    inner = classname[len(module) + 1 :] if classname.startswith(module + ".") else ""
    return "::".join(part for part in (file, inner, name) if part)


def failures(junit: Path) -> tuple[int, dict[str, str]]:
    """(tests run, {failed or errored test: the first line of its message})."""
    if not junit.is_file():
        return 0, {}
    root = ET.parse(junit).getroot()
    cases = list(root.iter("testcase"))
    failed = {}
    for case in cases:
        for outcome in ("failure", "error"):
            found = case.find(outcome)
            if found is not None:
                message = (found.get("message") or outcome).strip().splitlines()
                failed[test_id(case)] = f"{outcome}: {message[0] if message else ''}"[:300]
    return len(cases), failed


def stress(names: list[str], out: Path, seed: int, extra: list[str]) -> dict:
    """Run the passes one after the other; the summary that summary.json holds."""
    summary: dict = {"seed": seed, "pytest_args": extra, "cpus": cpus(), "passes": {}}
    for name in names:
        junit = out / f"{name}.xml"
        command = pytest_command(name, junit, seed, extra)
        print(f"\n=== pass {name}: {' '.join(command)}", flush=True)
        start = time.monotonic()
        if name == "busy":
            with busy_loops(len(cpus())) as pids:
                print(f"=== busy loops: pids {pids}", flush=True)
                code = run_pass(command, out / f"{name}.log")
        else:
            code = run_pass(command, out / f"{name}.log")
        tests, failed = failures(junit)
        summary["passes"][name] = {
            "exit_code": code,
            "finished": code in FINISHED,
            "seconds": round(time.monotonic() - start, 1),
            "tests": tests,
            "failed": failed,
            "command": command,
        }
    flaky: dict[str, dict[str, str]] = {}
    for name, result in summary["passes"].items():
        for test, message in result["failed"].items():
            flaky.setdefault(test, {})[name] = message
    summary["failed_tests"] = dict(sorted(flaky.items()))
    return summary


def report(summary: dict, out: Path) -> bool:
    """Print what failed where; whether everything passed."""
    print(f"\n=== stress summary (random-order seed {summary['seed']}; {out / 'summary.json'})")
    for name, result in summary["passes"].items():
        state = (
            "finished"
            if result["finished"]
            else f"did NOT finish (pytest exit {result['exit_code']})"
        )
        print(
            f"  {name:<9} {result['tests']:>5} tests  {len(result['failed']):>3} failed  "
            f"{result['seconds']:>7.1f} s  {state}"
        )
    if summary["failed_tests"]:
        print(f"\nfailed tests ({len(summary['failed_tests'])}), with the passes they failed in:")
        for test, where in summary["failed_tests"].items():
            kind = "every pass" if len(where) == len(summary["passes"]) else "flaky"
            print(f"  {test}  [{', '.join(where)}] ({kind})")
            for name, message in where.items():
                print(f"      {name}: {message}")
    ok = not summary["failed_tests"] and all(r["finished"] for r in summary["passes"].values())
    print("\nstress: all passes clean" if ok else "\nstress: FAILED")
    return ok


def check_tools(names: list[str]) -> str | None:
    """Why a pass cannot run here, or None."""
    if "one-core" in names and shutil.which("taskset") is None:
        return "the one-core pass needs taskset (util-linux)"
    if "random" in names:
        import importlib.util

        if importlib.util.find_spec("random_order") is None:
            return "the random pass needs pytest-random-order: pip install -e '.[dev]'"
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--passes", default=",".join(PASSES), help="comma-separated, of " + ", ".join(PASSES)
    )
    parser.add_argument("--seed", type=int, default=None, help="random-order seed (default: new)")
    parser.add_argument(
        "--out", type=Path, default=None, help="results folder (default runs/stress-<time>)"
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.passes.split(",") if n.strip()]
    unknown = [n for n in names if n not in PASSES]
    if unknown or not names:
        parser.error(f"unknown pass {unknown}; known: {', '.join(PASSES)}")
    if (why := check_tools(names)) is not None:
        print(f"error: {why}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    out = args.out or REPO / "runs" / f"stress-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    summary = stress(names, out, seed, extra)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if report(summary, out) else 1


if __name__ == "__main__":
    sys.exit(main())
