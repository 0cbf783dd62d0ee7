"""The command-line fuzz, long form: thousands of generated invocations of every command,
checked against the exit-code contract (tests/cli/fuzzing.py), with counts by command and exit
code, the time taken, and every finding (a contract violation) printed with its command line.

    python benchmarks/fuzz_cli.py [--examples 3000] [--seed 0]

The test suite runs the same property on 200 derandomized cases (tests/cli/test_fuzz.py).
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cli.fuzzing import check, document_corpus, invocations, invoke


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # The sample plugin's MODULE:FUNCTION rows are among the values: put it on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "sample_plugin"))
    corpus = document_corpus(Path(tempfile.mkdtemp(prefix="gelu-audit-fuzz-")))
    counts: collections.Counter[tuple[str, int]] = collections.Counter()
    findings: list[str] = []

    @seed(args.seed)
    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(argv=invocations(lambda: corpus))
    def run(argv: list[str]) -> None:
        outcome = invoke(argv)
        counts[(argv[0], outcome.code)] += 1
        if outcome.seconds > 10:
            print(
                f"slow ({outcome.seconds:.0f} s, exit {outcome.code}): gelu-audit {' '.join(argv)}",
                flush=True,
            )
        try:
            check(argv, outcome)
        except AssertionError as finding:
            findings.append(str(finding))

    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    total = sum(counts.values())
    each = seconds / max(total, 1) * 1000
    print(f"{total} invocations in {seconds:.0f} s ({each:.0f} ms each), seed {args.seed}")
    for command in sorted({c for c, _ in counts}):
        by_code = {code: n for (c, code), n in counts.items() if c == command}
        print(f"  {command:9} " + "  ".join(f"exit {code}: {n}" for code, n in sorted(by_code.items())))
    print(f"findings: {len(findings)}")
    for finding in findings[:20]:
        print("  " + finding.replace("\n", "\n    "))
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
