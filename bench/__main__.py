"""`python -m bench [--size tiny|full] [--json FILE] [NAME ...]`: run the benchmarks, one line per figure.

Exit status 1 when a figure misses its target, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench import SIZES, bench_size, load_all, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run Seen's benchmarks.")
    parser.add_argument("names", nargs="*", help="only these benchmarks (default: all)")
    parser.add_argument(
        "--size", choices=SIZES, help="tiny (smoke) or full (default: $SEEN_BENCH_SIZE, else full)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as a JSON list")
    args = parser.parse_args(argv)
    try:
        size = args.size or bench_size()
    except ValueError as e:
        parser.error(str(e))
    unknown = set(args.names) - set(load_all())
    if unknown:
        parser.error(f"no benchmark called {', '.join(sorted(unknown))}; there are: {', '.join(load_all())}")
    figures = run(size, args.names or None, report=lambda f: print(f.line(), flush=True))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump([f.to_json() for f in figures], out, indent=2)
            out.write("\n")
    return 1 if any(f.met is False for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
