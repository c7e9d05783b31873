"""The hosted checkout page: `GET /checkout/{id}` shows the amount with Pay and Fail buttons;
the buttons POST back, the payment is settled and the browser is sent (303) to the callback /
return URL with the gateway's redirect parameters, or shown a result page when there is none.

No open redirect: the browser is only ever sent to the URL registered with the order (Razorpay
`notes.callback_url` / `callback_url`, Stripe `metadata[return_url]`). A URL in the link's query
(`callback_url`, `return_url`, `redirect_url`) is honoured only on that URL's origin, so a link
crafted by someone else cannot send a payer, with fresh payment parameters, to another site."""

from __future__ import annotations

import html
from urllib.parse import parse_qsl, urlencode, urlsplit

from .httpserver import Request, Response
from .responses import html_response, redirect, with_query
from .settlement import Options, Outcome, Settlement, SettlementError
from .store import Store

_SYMBOLS = {"INR": "₹", "USD": "$", "EUR": "€", "GBP": "£"}
_ZERO_DECIMAL = {"JPY"}

_STYLE = """
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330}
main{max-width:420px;margin:0 auto;padding:24px 16px}
.card{background:#fff;border-radius:12px;padding:20px;box-shadow:0 1px 4px rgba(0,0,0,.08)}
h1{font-size:1.1rem;margin:0 0 4px}.muted{color:#667;font-size:.85rem;word-break:break-all}
.amount{font-size:2rem;font-weight:700;margin:16px 0}
button{display:block;width:100%;min-height:48px;margin-top:12px;border:0;border-radius:8px;
font-size:1rem;font-weight:600;cursor:pointer}
#pay-button{background:#2463eb;color:#fff}#fail-button{background:#e5e7eb;color:#a11}
button:disabled{opacity:.5;cursor:not-allowed}dl{word-break:break-all}dt{font-weight:600}
"""


def format_amount(amount: int, currency: str) -> str:
    code = currency.upper()
    value = str(amount) if code in _ZERO_DECIMAL else f"{amount / 100:,.2f}"
    return f"{_SYMBOLS.get(code, code + ' ')}{value}"


def _page(title: str, content: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{content}</main></body></html>"
    )


def render_checkout(store: Store, gateway_order_id: str, request: Request) -> Response:
    gateway, amount, currency, status = _describe(store, gateway_order_id)
    if gateway is None:
        return html_response(404, _page("Not found", "<p id='error'>No such checkout.</p>"))
    asked = request.query_value("callback_url") or request.query_value("return_url")
    redirect_url = allowed_redirect(store, gateway_order_id, asked) or ""
    query = f"?{urlencode({'redirect_url': redirect_url})}" if redirect_url else ""
    done = status in ("paid", "succeeded")
    disabled = " disabled" if done else ""
    oid = html.escape(gateway_order_id)
    brand = "Razorpay" if gateway == "razorpay" else "Stripe"
    code = html.escape(currency.upper())
    content = (
        f"<div class='card'><h1>{brand} test checkout</h1>"
        f"<div class='muted' id='order-id'>{oid}</div>"
        f"<div class='amount' id='amount' data-amount='{amount}' data-currency='{code}'>"
        f"{html.escape(format_amount(amount, currency))}</div>"
        f"<div class='muted' id='status'>status: {html.escape(status)}</div>"
        f"<form method='post' action='/checkout/{oid}/pay{html.escape(query)}'>"
        f"<button id='pay-button' type='submit'{disabled}>Pay</button></form>"
        f"<form method='post' action='/checkout/{oid}/fail{html.escape(query)}'>"
        f"<button id='fail-button' type='submit'{disabled}>Fail</button></form></div>"
    )
    return html_response(200, _page("Checkout", content))


def submit_checkout(
    settlement: Settlement, store: Store, gateway_order_id: str, succeed: bool, request: Request
) -> Response:
    form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
    asked = request.query_value("redirect_url") or form.get("redirect_url")
    target = allowed_redirect(store, gateway_order_id, asked)
    try:
        outcome = settlement.settle(gateway_order_id, succeed, Options(redirect_url=target))
    except SettlementError as exc:
        content = f"<div class='card'><p id='error'>{html.escape(exc.message)}</p></div>"
        return html_response(exc.status, _page("Checkout", content))
    if outcome.redirect_url:
        return redirect(with_query(outcome.redirect_url, outcome.redirect_params))
    return html_response(200, _result_page(outcome, succeed))


def _result_page(outcome: Outcome, succeed: bool) -> str:
    rows = "".join(
        f"<dt>{html.escape(k)}</dt><dd id='{html.escape(k.replace('[', '-').replace(']', ''))}'>"
        f"{html.escape(v)}</dd>"
        for k, v in outcome.redirect_params.items()
    )
    verdict = "Payment successful" if succeed else "Payment failed"
    return _page(verdict, f"<div class='card'><h1 id='result'>{verdict}</h1><dl>{rows}</dl></div>")


def allowed_redirect(store: Store, gateway_order_id: str, asked: str | None) -> str | None:
    """`asked` when it is on the origin of the URL registered with the order, else None (the
    registered URL, if any, then applies)."""
    if not asked:
        return None
    registered = registered_redirect(store, gateway_order_id)
    if not registered or _origin(asked) is None or _origin(asked) != _origin(registered):
        return None
    return asked


def registered_redirect(store: Store, gateway_order_id: str) -> str | None:
    if (order := store.razorpay_orders.get(gateway_order_id)) is not None:
        return order.callback_url
    if (intent := store.payment_intents.get(gateway_order_id)) is not None:
        return intent.return_url
    return None


def _origin(url: str) -> tuple[str, str] | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    return parts.scheme, parts.netloc.lower()


def _describe(store: Store, gateway_order_id: str) -> tuple[str | None, int, str, str]:
    if (order := store.razorpay_orders.get(gateway_order_id)) is not None:
        return "razorpay", order.amount, order.currency, order.status
    if (intent := store.payment_intents.get(gateway_order_id)) is not None:
        return "stripe", intent.amount, intent.currency, intent.status
    return None, 0, "", ""


def gateway_of(store: Store, gateway_order_id: str) -> str | None:
    return _describe(store, gateway_order_id)[0]
