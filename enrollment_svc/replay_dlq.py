"""Replay parked dead letters through the consumer's own handler:
python -m enrollment_svc.replay_dlq --all | DEAD_LETTER_ID [...]   (make replay-dlq)

Exit status 0 when every named (or parked) dead letter is now replayed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from common.config import load_settings
from common.db import create_engine
from common.errors import CheckoutError
from common.request_context import correlation_id_var, new_correlation_id
from enrollment_svc import dead_letters, repository

ACTOR = "replay-dlq"


async def replay_all(ids: list[str], every_parked: bool) -> int:
    engine = create_engine(load_settings(), pool_size=1)
    correlation_id_var.set(new_correlation_id())
    failed = 0
    try:
        if every_parked:
            async with engine.connect() as conn:
                ids = [r.dead_letter_id for r in reversed(await repository.list_dead_letters(conn, status="parked"))]
            if not ids:
                print("no parked dead letters")
        for dead_letter_id in ids:
            try:
                record = await dead_letters.replay(engine, dead_letter_id, actor=ACTOR)
            except CheckoutError as error:
                failed += 1
                print(f"{dead_letter_id}: not replayed: {error.message}")
            else:
                print(f"{dead_letter_id}: {record.status}")
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
    return asyncio.run(replay_all(args.ids, args.all))


if __name__ == "__main__":
    sys.exit(main())
