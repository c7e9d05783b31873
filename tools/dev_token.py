"""A development bearer token on stdout: `make token [ROLE=admin] [USER=<uuid, e-mail or name>]`.

Signed with this machine's JWT_SECRET (the development default unless set), valid for an hour.
USER may be a UUID, or any e-mail or name: the id is derived from it (uuid5, lower-cased), so the
same name always gives the same student (common/dev_users.py; the page's dev sign-in derives the same). Without USER, a fixed demo student.

    TOKEN=$(make -s token ROLE=admin)
    curl -H "Authorization: Bearer $TOKEN" localhost:8080/api/v1/admin/dead-letters
"""

from __future__ import annotations

import argparse
import sys

from common.auth import mint_token
from common.dev_users import user_id_for
from common.settings import load_settings

DEMO_USER = "student@example.com"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", action="append", default=[], help="a role claim (repeatable), e.g. admin")
    parser.add_argument("--user", default=DEMO_USER, help="UUID, e-mail or name (default: %(default)s)")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds the token is valid (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.user.strip():
        parser.error("--user must not be empty")
    settings = load_settings()
    user_id = user_id_for(args.user)
    roles = [role for role in args.role if role]
    print(mint_token(settings, user_id, roles or None, ttl_seconds=args.ttl))
    dev = " (the DEVELOPMENT secret)" if settings.jwt_secret_is_dev_default else ""
    print(f"user {user_id} roles {roles or '[]'}, valid {args.ttl} s{dev}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
