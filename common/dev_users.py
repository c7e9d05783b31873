"""Development students named by an e-mail or a name: the id is derived from it (uuid5 in a fixed
namespace, the name trimmed and lower-cased), so the same name is the same student on every machine.
`make token` (tools/dev_token.py) derives it here; the page's dev sign-in derives it in the browser from
the namespace the edge puts in its config.js (edge.config.page_config_js)."""

from __future__ import annotations

import uuid

USER_NAMESPACE = uuid.UUID("6f1d4c52-6a8e-4f0b-9a57-1d2c3b4a5e60")


def user_id_for(user: str) -> str:
    """A UUID as given (canonical form), anything else → the id derived from it."""
    try:
        return str(uuid.UUID(user))
    except ValueError:
        return str(uuid.uuid5(USER_NAMESPACE, user.strip().lower()))
