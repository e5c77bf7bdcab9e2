"""What masking secret query values costs an HTTP request: the access log
line and the ``url.query`` span attribute each run `redact_target` /
`redact_query` once per request. Prints nanoseconds per call next to a
baseline that only reads the target (what the code did before), best of
several repetitions; a few seconds in all."""

from __future__ import annotations

import argparse
import timeit

from nameko._redaction import redact_query, redact_target

CASES = {
    "no query": "/orders/12345",
    "query, no secret name": "/orders?page=2&sort=name&lang=en",
    "query with a token": "/orders?page=2&access_token=abcdef123456&lang=en",
}


def per_call_ns(function, argument: str, number: int) -> float:
    return min(timeit.repeat(lambda: function(argument), number=number, repeat=7)) / number * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=100_000, help="calls per repetition")
    args = parser.parse_args()
    print(f"{'request target':24} {'baseline':>9} {'redact_target':>14} {'redact_query':>13}")
    for name, target in CASES.items():
        query = target.partition("?")[2]
        base = per_call_ns(str, target, args.number)
        masked = per_call_ns(redact_target, target, args.number)
        only_query = per_call_ns(redact_query, query, args.number)
        print(f"{name:24} {base:7.0f}ns {masked:12.0f}ns {only_query:11.0f}ns")


if __name__ == "__main__":
    main()
