"""``make test``: every test file in its own ``pytest`` process, two at a time (this is a 2-core CI machine).

Most tests wait on real processes, sockets and timers rather than on the CPU, so two files at once halve the
wall time. Each file is a plain pytest process: its fixtures, targets and gevent hub are its own, exactly as
in a serial run. The biggest files start first, so no long file is left running alone at the end.

    python tests/parallel.py [-j N] [PYTEST ARGS...]

Prints one line per file as it ends, the whole output of any file that failed, and the totals. A file that
failed is run again alone at the end: if it fails again the run fails (exit 1); if it passes alone it is
named FLAKY in the totals, with its first output printed, so a test that only fails in company is seen.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
_SUMMARY = re.compile(r"^=* ?(\d+ [a-z].*?) in [\d.]+s", re.M)  # "12 passed, 1 failed in 3.2s" (-q)
_COUNTS = re.compile(r"(\d+) (passed|failed|error|errors|skipped|xfailed|xpassed|deselected)")


def files_to_run() -> list[Path]:
    """Every test file under tests/ (the fault and deploy suites have their own targets), biggest first."""
    files = [p for p in TESTS.rglob("test_*.py")
             if not {"faults", "deploy"} & set(p.relative_to(TESTS).parts)]
    return sorted(files, key=lambda p: (-p.stat().st_size, str(p)))


def run_file(path: Path, args: list[str]) -> tuple[int, str, float]:
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                str(path.relative_to(REPO)), *args], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
        out.seek(0)
        text = out.read().decode(errors="replace")
    return code, text, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-j", "--jobs", type=int, default=int(os.environ.get("LOADGEN_TEST_JOBS", "2")))
    known, rest = parser.parse_known_args(argv)
    queue = files_to_run()
    lock = threading.Lock()
    totals: dict[str, int] = {}
    failed: list[tuple[Path, str]] = []
    started = time.monotonic()

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                path = queue.pop(0)
            code, text, seconds = run_file(path, rest)
            summary = _SUMMARY.findall(text)
            line = summary[-1] if summary else f"exit {code}"
            with lock:
                for count, kind in _COUNTS.findall(line):
                    totals[kind] = totals.get(kind, 0) + int(count)
                # 5: no test collected (a -k that selects nothing in this file) is not a failure
                if code not in (0, 5):
                    failed.append((path, text))
                print(f"{path.relative_to(REPO)}: {line} ({seconds:.0f} s)", flush=True)

    threads = [threading.Thread(target=worker) for _ in range(max(1, known.jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for path, text in failed:
        print(f"\n===== {path.relative_to(REPO)} =====\n{text}", flush=True)
    # a file that failed beside another is run again alone: a real failure fails again, and a file that only
    # fails in company is named as FLAKY (its first output is above), never hidden
    still, flaky = [], []
    for path, _ in failed:
        code, text, seconds = run_file(path, rest)
        if code in (0, 5):
            flaky.append(path)
            print(f"FLAKY: {path.relative_to(REPO)} failed beside another file and passed alone ({seconds:.0f} s)",
                  flush=True)
        else:
            still.append(path)
            print(f"\n===== {path.relative_to(REPO)}, alone =====\n{text}", flush=True)
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(totals.items()))
    print(f"\n{counts or 'no tests'} in {time.monotonic() - started:.0f} s ({known.jobs} files at a time)"
          + (f"; FLAKY (passed alone): {', '.join(str(p.relative_to(REPO)) for p in flaky)}" if flaky else "")
          + (f"; FAILED: {', '.join(str(p.relative_to(REPO)) for p in still)}" if still else ""), flush=True)
    return 1 if still else 0


if __name__ == "__main__":
    sys.exit(main())
