"""Where the browser pays: the gateway's hosted page for one gateway order.

Templates are configurable (RAZORPAY_CHECKOUT_URL, STRIPE_CHECKOUT_URL in common/settings.py)
with the fields {base_url}, {gateway_order_id} and {key_id}. The default is the gateway
emulator's page, `{base_url}/checkout/{gateway_order_id}`. Real Razorpay has no per-order hosted
page (the browser opens Checkout.js with the order id), and real Stripe pays an intent through
Elements or a Checkout Session: production points the template at our own payment page.
A return URL rides along as `?return_url=`, where the page sends the browser afterwards.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit


def checkout_url(template: str, *, base_url: str, gateway_order_id: str, key_id: str = "", return_url: str = "") -> str:
    url = template.format(base_url=base_url.rstrip("/"), gateway_order_id=gateway_order_id, key_id=key_id)
    if not return_url:
        return url
    parts = urlsplit(url)
    extra = urlencode({"return_url": return_url})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
