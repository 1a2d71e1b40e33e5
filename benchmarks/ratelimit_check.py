"""
A rate-limit check that can fail: the LLM stages against a server enforcing the limit.

    python benchmarks/ratelimit_check.py [--limit 20] [--period 10] [--latency 0.2]
    python benchmarks/ratelimit_check.py --client-rate 22/10   # a client over the limit: FAIL

See ``docbench/_ratecheck.py`` for what is counted.  Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docbench import run_rate_check

__all__ = ["main"]


def main() -> int:
    """Run the check and print its line and JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--period", type=float, default=10.0)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument(
        "--client-rate",
        help="give the client this limit, CALLS/SECONDS, instead of the server's (to see the "
        "check fail)",
    )
    args = parser.parse_args()
    client_rate = None
    if args.client_rate:
        calls, _, seconds = args.client_rate.partition("/")
        client_rate = (int(calls), float(seconds))
    result = run_rate_check(args.limit, args.period, args.latency, client_rate=client_rate)
    print(json.dumps({**result.to_json(), "load": round(os.getloadavg()[0], 2)}))
    print(result.line())
    return 0 if result.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
