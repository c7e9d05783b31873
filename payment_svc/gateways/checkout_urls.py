"""Where the browser pays a Razorpay order: a page of ours that opens Razorpay Checkout.

The template is a setting (RAZORPAY_CHECKOUT_URL in common/settings.py) with the fields
{base_url} (the gateway's API base), {gateway_order_id}, {key_id} and {payment_token}. Real
Razorpay has no per-order hosted page: the browser opens checkout.js with the order id and the key
id. (Stripe needs no template: a Checkout Session has its own `url`.) A return URL rides along as
`?return_url=`, where the page sends the browser afterwards.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit


def checkout_url(template: str, *, base_url: str, gateway_order_id: str, key_id: str = "", payment_token: str = "",
                 return_url: str = "") -> str:
    url = template.format(base_url=base_url.rstrip("/"), gateway_order_id=gateway_order_id, key_id=key_id,
                          payment_token=payment_token)
    if not return_url:
        return url
    parts = urlsplit(url)
    extra = urlencode({"return_url": return_url})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
