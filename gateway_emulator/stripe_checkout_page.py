"""The hosted page of a Stripe Checkout Session (its `url`): `GET /checkout/sessions/{id}` shows
what is bought and the amount, a **Pay** (`#pay-button`) and a **Fail** (`#fail-button`) button
(plain HTML forms, no script) and a link back to cancel_url (`#cancel-link`).

- Pay → 303 to success_url (`{CHECKOUT_SESSION_ID}` replaced), as Stripe after a payment.
- Fail → the page again, saying the card was declined (`#error`), with both buttons: a Checkout
  Session takes another try until it completes or expires.
- A complete session shows that it is paid; an expired one that it has expired; neither has
  buttons.
"""

from __future__ import annotations

import html
import re

from .checkout_page import format_amount
from .httpserver import Request, Response
from .responses import html_response, json_response, redirect
from .settlement import Options, SettlementError
from .store import CheckoutSession
from .stripe_checkout import CheckoutSessions
from .stripe_checkout_settle import SessionSettlement

PAGE = re.compile(r"^/checkout/sessions/([^/]+)(?:/(pay|fail))?$")

_STYLE = """
*{box-sizing:border-box}body{margin:0;font-family:system-ui,sans-serif;background:#f6f9fc;color:#1a1f36}
main{max-width:440px;margin:0 auto;padding:24px 16px}.card{background:#fff;border-radius:12px;padding:20px;
box-shadow:0 1px 4px rgba(0,0,0,.08)}h1{font-size:1.1rem;margin:0 0 4px}.muted{color:#697386;font-size:.85rem}
.amount{font-size:2rem;font-weight:700;margin:16px 0}button{display:block;width:100%;min-height:48px;
margin-top:12px;border:0;border-radius:8px;font-size:1rem;font-weight:600;cursor:pointer}
#pay-button{background:#635bff;color:#fff}#fail-button{background:#e5e7eb;color:#a11}
#error{color:#a11;font-weight:600}a{display:block;margin-top:16px;color:#635bff}
"""


def _page(title: str, content: str) -> str:
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
            f"<body><main><div class='card'>{content}</div></main></body></html>")


class CheckoutSessionPage:
    def __init__(self, sessions: CheckoutSessions, settlement: SessionSettlement) -> None:
        self._sessions = sessions
        self._settlement = settlement

    async def handle(self, request: Request, session_id: str, action: str | None) -> Response:
        session = self._sessions.get(session_id)
        if session is None:
            return html_response(404, _page("Not found", "<p id='error'>No such checkout session.</p>"))
        if action is None:
            if request.method not in ("GET", "HEAD"):
                return json_response(405, {"error": {"message": "use GET"}})
            return html_response(200, self._render(session))
        if request.method != "POST":
            return json_response(405, {"error": {"message": "use POST"}})
        try:
            outcome = self._settlement.settle(session_id, action == "pay", Options())
        except SettlementError as exc:
            return html_response(exc.status, self._render(session, error=exc.message))
        if outcome.redirect_url:
            return redirect(outcome.redirect_url)
        return html_response(200, self._render(session, error="Your card was declined. Try again."))

    def _render(self, session: CheckoutSession, error: str = "") -> str:
        sid = html.escape(session.id)
        names = ", ".join(str(item["name"]) for item in session.line_items)
        content = (f"<h1>Stripe test checkout</h1><div class='muted' id='session-id'>{sid}</div>"
                   f"<div class='muted' id='description'>{html.escape(names)}</div>"
                   f"<div class='amount' id='amount' data-amount='{session.amount_total}' "
                   f"data-currency='{html.escape(session.currency.upper())}'>"
                   f"{html.escape(format_amount(session.amount_total, session.currency))}</div>"
                   f"<div class='muted' id='status'>status: {html.escape(session.status)}</div>")
        if error:
            content += f"<p id='error'>{html.escape(error)}</p>"
        if session.status == "open":
            content += (f"<form method='post' action='/checkout/sessions/{sid}/pay'>"
                        "<button id='pay-button' type='submit'>Pay</button></form>"
                        f"<form method='post' action='/checkout/sessions/{sid}/fail'>"
                        "<button id='fail-button' type='submit'>Fail</button></form>")
        elif session.status == "complete":
            content += "<p id='result'>This payment is complete.</p>"
        else:
            content += "<p id='result'>This checkout session has expired.</p>"
        if session.cancel_url and session.status == "open":
            content += f"<a id='cancel-link' href='{html.escape(session.cancel_url)}'>Cancel and go back</a>"
        return _page("Checkout", content)
