"""Replay parked dead letters of enrollment_svc's consumer through its own handler:
python -m enrollment_svc.replay_dlq --all | DEAD_LETTER_ID [...]   (make replay-dlq)

Exit status 0 when every named (or parked) dead letter is now replayed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from common.db import create_engine
from common.errors import CheckoutError
from common.logs import configure_logging
from common.request_context import correlation_id_var, new_correlation_id
from common.settings import process_settings
from enrollment_svc.app import parts

ACTOR = "replay-dlq"


async def replay(ids: list[str], every_parked: bool) -> int:
    settings = process_settings()
    configure_logging("enrollment_svc.replay_dlq", settings.log_level)
    engine = create_engine(settings, "enrollment", pool_size=1)
    correlation_id_var.set(new_correlation_id())
    desk = parts(engine).dead_letters
    failed = 0
    try:
        if every_parked:
            ids = await desk.parked()
            if not ids:
                print("no parked dead letters")
        for dead_letter_id in ids:
            try:
                letter = await desk.replay(dead_letter_id, actor=ACTOR)
            except CheckoutError as error:
                failed += 1
                print(f"{dead_letter_id}: not replayed: {error.message}")
            else:
                print(f"{dead_letter_id}: {letter.status}")
    finally:
        await engine.dispose()
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m enrollment_svc.replay_dlq", description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="replay every parked dead letter, oldest first")
    parser.add_argument("ids", nargs="*", metavar="DEAD_LETTER_ID")
    args = parser.parse_args(argv)
    if args.all == bool(args.ids):
        parser.error("give --all or one or more dead letter ids")
    return asyncio.run(replay(args.ids, args.all))


if __name__ == "__main__":
    sys.exit(main())
