"""Wake the outbox relay at once: NOTIFY outbox_inserted after every statement that inserts
outbox rows. The notification is delivered when the inserting transaction commits (never for a
rolled-back one) and carries no payload: the relay reads the table, which stays the truth; its
1-second poll covers a notification missed while it was reconnecting.

Revision ID: 0002_outbox_notify
Revises: 0001
Create Date: 2026-11-26
"""

from alembic import op

revision = "0002_outbox_notify"
down_revision = "0001"
branch_labels = None
depends_on = None

CHANNEL = "outbox_inserted"  # common/outbox_relay.py listens on it


def upgrade() -> None:
    op.execute(f"""
CREATE FUNCTION outbox_notify_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER outbox_notify_inserted AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify_inserted();
""")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS outbox_notify_inserted ON outbox")
    op.execute("DROP FUNCTION IF EXISTS outbox_notify_inserted()")
