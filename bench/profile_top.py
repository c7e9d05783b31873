"""The top frames of a py-spy profile (`py-spy record --format raw`: one collapsed stack and its
sample count per line), for docs/PERFORMANCE.md.

    py-spy record --nonblocking -r 50 -d 25 --format raw -o order_svc.txt -p PID
    .venv/bin/python bench/profile_top.py order_svc.txt [--top 12]

Prints the share of samples under each frame (inclusive: the frame is anywhere on the stack,
counted once per sample) and where the samples end (self: the innermost frame), frames named
`function (file)` without line numbers so that one function's lines add up.
"""

from __future__ import annotations

import argparse
import collections
import re

_LINE = re.compile(r":\d+\)$")


def frames(stack: str) -> list[str]:
    return [_LINE.sub(")", frame) for frame in stack.split(";")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    total = 0
    with open(args.profile) as lines:
        for line in lines:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            samples, path = int(count), frames(stack)
            total += samples
            leaf[path[-1]] += samples
            for frame in set(path):
                inclusive[frame] += samples
    print(f"{args.profile}: {total} samples")
    for title, counter in (("inclusive", inclusive), ("self", leaf)):
        print(f"  {title}:")
        for frame, samples in counter.most_common(args.top + (8 if title == "inclusive" else 0)):
            print(f"    {100 * samples / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
