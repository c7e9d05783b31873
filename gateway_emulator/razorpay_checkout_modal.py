"""The modal that checkout.js (razorpay_checkout_js.py) opens in an iframe:

    GET  /razorpay/checkout/modal?key_id=&order_id=&name=&description=&method=&parent_origin=
    POST /razorpay/checkout/{order_id}/pay | /fail     JSON {"key_id", "method"?}

The page shows the order's amount, a method choice (prefilled from `prefill.method`), Pay
(`#pay-button`), Fail (`#fail-button`) and a close button (`#modal-close`). Pay and Fail settle a
payment exactly as the hosted page does (settlement.py: payment entity, signature, webhooks) and
the page posts the outcome to checkout.js, at `parent_origin` only: `payment.success` with the
three `razorpay_*` fields, or `payment.failed` with Razorpay's error object, after which the modal
stays open for another try. The key id must be this account's, as Razorpay refuses another."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlsplit

from .checkout_page import format_amount
from .config import EmulatorConfig
from .httpserver import Request, Response
from .razorpay_checkout_js import MESSAGE_SOURCE
from .responses import html_response, json_response, parse_json_object
from .settlement import METHODS, Options, Settlement, SettlementError
from .store import Store

_STYLE = """
*{box-sizing:border-box}body{margin:0;font-family:system-ui,sans-serif;color:#1d2330;background:#fff}
main{padding:20px 18px}header{display:flex;justify-content:space-between;align-items:start;gap:8px}
h1{font-size:1.05rem;margin:0}.muted{color:#667;font-size:.85rem;word-break:break-all}
#modal-close{border:0;background:none;font-size:1.5rem;line-height:1;cursor:pointer;color:#667}
.amount{font-size:1.8rem;font-weight:700;margin:14px 0}label{display:block;font-size:.9rem}
select{width:100%;min-height:40px;margin-top:4px;font-size:1rem}
.actions button{display:block;width:100%;min-height:46px;margin-top:12px;border:0;border-radius:8px;
font-size:1rem;font-weight:600;cursor:pointer}#pay-button{background:#2463eb;color:#fff}
#fail-button{background:#e5e7eb;color:#a11}button:disabled{opacity:.5;cursor:not-allowed}
#status{min-height:1.2em;margin-top:12px}#status.bad,#error{color:#a11}#status.good{color:#176d2c}
"""

_SCRIPT = """
(function () {
  var body = document.body;
  var parentOrigin = body.dataset.parentOrigin;
  var status = document.getElementById("status");
  var buttons = [document.getElementById("pay-button"), document.getElementById("fail-button")];
  function tell(event, payload) {
    window.parent.postMessage({source: "__SOURCE__", event: event, payload: payload}, parentOrigin);
  }
  function settle(action) {
    buttons.forEach(function (b) { b.disabled = true; });
    status.className = ""; status.textContent = "Processing…";
    fetch("/razorpay/checkout/" + encodeURIComponent(body.dataset.orderId) + "/" + action, {
      method: "POST", headers: {"content-type": "application/json"},
      body: JSON.stringify({key_id: body.dataset.keyId, method: document.getElementById("method").value})
    }).then(function (r) { return r.json().then(function (data) { return {ok: r.ok, data: data}; }); })
      .then(function (answer) {
        if (!answer.ok) throw new Error((answer.data.error && answer.data.error.description) || "refused");
        var data = answer.data;
        if (data.event === "payment.success") {
          status.className = "good"; status.textContent = "Payment successful";
        } else {
          status.className = "bad";
          status.textContent = (data.payload.error.description || "Payment failed") + ". You can try again.";
          buttons.forEach(function (b) { b.disabled = false; });
        }
        tell(data.event, data.payload);
      })
      .catch(function (err) {
        status.className = "bad"; status.textContent = String(err.message || err);
        buttons.forEach(function (b) { b.disabled = false; });
      });
  }
  document.getElementById("pay-button").addEventListener("click", function () { settle("pay"); });
  document.getElementById("fail-button").addEventListener("click", function () { settle("fail"); });
  document.getElementById("modal-close").addEventListener("click", function () { tell("modal.dismissed", {}); });
})();
""".replace("__SOURCE__", MESSAGE_SOURCE)


def _page(content: str, data: dict[str, str], script: bool) -> str:
    attrs = "".join(f" data-{name}='{html.escape(value)}'" for name, value in data.items())
    tail = f"<script>{_SCRIPT}</script>" if script else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Razorpay Checkout</title><style>{_STYLE}</style></head>"
        f"<body{attrs}><main>{content}</main>{tail}</body></html>"
    )


def _error_page(status: int, message: str) -> Response:
    return html_response(status, _page(f"<p id='error'>{html.escape(message)}</p>", {}, script=False))


def _origin(value: str) -> str | None:
    """`scheme://host[:port]` when `value` is exactly an http(s) origin, else None."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        return None
    if parts.username or parts.password or parts.fragment:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def render_modal(config: EmulatorConfig, store: Store, request: Request) -> Response:
    key_id = request.query_value("key_id") or ""
    order_id = request.query_value("order_id") or ""
    parent = _origin(request.query_value("parent_origin") or "")
    if key_id != config.razorpay_key_id:
        return _error_page(401, "Authentication failed: the key id is not this account's.")
    order = store.razorpay_orders.get(order_id)
    if order is None:
        return _error_page(400, "The id provided does not exist.")
    if parent is None:
        return _error_page(400, "parent_origin must be the opening page's origin.")
    method = request.query_value("method") or "card"
    options = "".join(
        f"<option value='{m}'{' selected' if m == method else ''}>{m}</option>" for m in METHODS
    )
    paid = order.status == "paid"
    disabled = " disabled" if paid else ""
    name = html.escape(request.query_value("name") or "")
    description = html.escape(request.query_value("description") or "")
    content = (
        f"<header><div><h1 id='merchant'>{name or 'Razorpay test checkout'}</h1>"
        f"<div class='muted' id='description'>{description}</div>"
        f"<div class='muted' id='order-id'>{html.escape(order.id)}</div></div>"
        "<button id='modal-close' type='button' aria-label='Close'>×</button></header>"
        f"<div class='amount' id='amount' data-amount='{order.amount}'>"
        f"{html.escape(format_amount(order.amount, order.currency))}</div>"
        f"<label>Pay by<select id='method'>{options}</select></label>"
        f"<div class='actions'><button id='pay-button' type='button'{disabled}>Pay</button>"
        f"<button id='fail-button' type='button'{disabled}>Fail</button></div>"
        f"<p id='status' role='status'>{'This order is already paid.' if paid else ''}</p>"
    )
    data = {"order-id": order.id, "key-id": key_id, "parent-origin": parent}
    return html_response(200, _page(content, data, script=True))


def submit_modal(
    config: EmulatorConfig,
    store: Store,
    settlement: Settlement,
    order_id: str,
    succeed: bool,
    request: Request,
) -> Response:
    body = parse_json_object(request.body)
    if body is None:
        return _refused(400, "the body must be a JSON object")
    if body.get("key_id") != config.razorpay_key_id:
        return _refused(401, "Authentication failed")
    method = body.get("method") or "card"
    if method not in METHODS:
        return _refused(400, f"method must be one of {list(METHODS)}")
    if order_id not in store.razorpay_orders:
        return _refused(400, "The id provided does not exist")
    try:
        outcome = settlement.settle(order_id, succeed, Options(method=method))
    except SettlementError as exc:
        return _refused(exc.status, exc.message)
    if succeed:
        return json_response(200, {"event": "payment.success", "payload": outcome.redirect_params})
    return json_response(200, {"event": "payment.failed", "payload": {"error": _error(outcome.payment)}})


def _error(payment: dict[str, Any]) -> dict[str, Any]:
    """Razorpay Checkout's `payment.failed` error object."""
    return {
        "code": payment.get("error_code"),
        "description": payment.get("error_description"),
        "source": payment.get("error_source"),
        "step": payment.get("error_step"),
        "reason": payment.get("error_reason"),
        "metadata": {"order_id": payment.get("order_id"), "payment_id": payment.get("id")},
    }


def _refused(status: int, description: str) -> Response:
    return json_response(
        status, {"error": {"code": "BAD_REQUEST_ERROR", "description": description}}
    )

