"""open_attempt(): the first call of an attempt claims its row in one statement, so that it needs
no transaction of its own (payment_svc/open_session.py).

One call takes the order's advisory lock (the one every opener of the order's attempts takes,
held until the call's transaction ends) and then inserts the attempt's row, pending, with the
caller's lease, only if no other attempt of the order is open (pending and not past its expiry)
and the row is not there yet; it returns the row, or nothing. The function is VOLATILE, so its
INSERT runs on a snapshot taken after the lock was granted and sees every attempt another opener
committed under it: the statement that calls it could not, its own snapshot being older than the
lock. The rule is domain/sessions.py `other_open_attempt`; this must never be laxer than it.

Revision ID: payment_0005_open_attempt
Revises: payment_0004_trace_context
Create Date: 2026-12-03
"""

from alembic import op

revision = "payment_0005_open_attempt"
down_revision = "payment_0004_trace_context"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE FUNCTION open_attempt(lock_high integer, lock_low integer, new_token uuid, new_order_token uuid,
                             new_attempt integer, new_user_id uuid, new_gateway varchar, new_payment_method text,
                             new_amount numeric, new_currency char(3), new_expires_at timestamptz,
                             new_order_expires_at timestamptz, new_leased_until timestamptz, new_trace_context text,
                             at timestamptz)
RETURNS SETOF payment.payment_sessions LANGUAGE sql VOLATILE AS $$
SELECT pg_advisory_xact_lock(lock_high, lock_low);
INSERT INTO payment.payment_sessions (token, order_token, attempt, user_id, gateway, payment_method, amount, currency,
                                      status, expires_at, order_expires_at, leased_until, trace_context)
SELECT new_token, new_order_token, new_attempt, new_user_id, new_gateway, new_payment_method, new_amount, new_currency,
       'pending', new_expires_at, new_order_expires_at, new_leased_until, new_trace_context
 WHERE NOT EXISTS (SELECT FROM payment.payment_sessions other
                    WHERE other.order_token = new_order_token AND other.attempt <> new_attempt
                      AND other.status = 'pending' AND other.expires_at > at)
ON CONFLICT (order_token, attempt) DO NOTHING
RETURNING *;
$$;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("DROP FUNCTION open_attempt(integer, integer, uuid, uuid, integer, uuid, varchar, text, numeric, "
               "char(3), timestamptz, timestamptz, timestamptz, text, timestamptz)")
