"""`GET /v1/checkout.js`: the emulator's stand-in for Razorpay Standard Checkout's script
(`https://checkout.razorpay.com/v1/checkout.js`). It defines `window.Razorpay` as the real one:

    const rzp = new Razorpay({key, order_id, amount, currency, name, description,
                              prefill: {method, email, contact}, handler, modal: {ondismiss}})
    rzp.on("payment.failed", (response) => response.error.{code, description, source, step,
                                                             reason, metadata: {order_id, payment_id}})
    rzp.open()   // the modal: an iframe served by the emulator (razorpay_checkout_modal.py)
    rzp.close()

As Razorpay's, the modal is an iframe from the gateway's origin: the merchant page never sees the
payment form, and the iframe tells the script the outcome by postMessage, which the script accepts
only from its own iframe and origin. A failed payment leaves the modal open so the student may
pay again (Razorpay allows several payments per order); a captured one closes it and calls
`handler({razorpay_payment_id, razorpay_order_id, razorpay_signature})`."""

from __future__ import annotations

from .httpserver import Response

MESSAGE_SOURCE = "gateway-emulator/razorpay-checkout"

CHECKOUT_JS = """\
// Gateway emulator: Razorpay Standard Checkout (checkout.js) for development and tests.
(function () {
  "use strict";
  if (window.Razorpay) return;
  var script = document.currentScript;
  var ORIGIN = new URL(script ? script.src : "/", window.location.href).origin;
  var SOURCE = "__SOURCE__";

  function Razorpay(options) {
    if (!(this instanceof Razorpay)) return new Razorpay(options);
    options = options || {};
    if (!options.key) throw new Error("Razorpay: the key option is required");
    if (!options.order_id) throw new Error("Razorpay: the order_id option is required");
    this.options = options;
    this._listeners = {};
    this._frame = null;
    this._overlay = null;
    this._onMessage = this._message.bind(this);
  }

  Razorpay.prototype.on = function (event, callback) {
    (this._listeners[event] = this._listeners[event] || []).push(callback);
    return this;
  };

  Razorpay.prototype._emit = function (event, payload) {
    (this._listeners[event] || []).forEach(function (callback) { callback(payload); });
  };

  Razorpay.prototype.open = function () {
    if (this._overlay) return this;
    var o = this.options;
    var prefill = o.prefill || {};
    var query = new URLSearchParams({
      key_id: String(o.key),
      order_id: String(o.order_id),
      name: String(o.name || ""),
      description: String(o.description || ""),
      method: String(prefill.method || ""),
      parent_origin: window.location.origin
    });
    var overlay = document.createElement("div");
    overlay.className = "razorpay-container";
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-modal", "true");
    overlay.style.cssText = "position:fixed;inset:0;z-index:2147483647;background:rgba(0,0,0,.55);" +
      "display:flex;align-items:center;justify-content:center";
    var frame = document.createElement("iframe");
    frame.className = "razorpay-checkout-frame";
    frame.title = "Razorpay Checkout";
    frame.src = ORIGIN + "/razorpay/checkout/modal?" + query.toString();
    frame.style.cssText = "border:0;border-radius:12px;background:#fff;width:min(420px,100vw);height:min(560px,100vh)";
    overlay.appendChild(frame);
    document.body.appendChild(overlay);
    this._overlay = overlay;
    this._frame = frame;
    window.addEventListener("message", this._onMessage);
    return this;
  };

  Razorpay.prototype.close = function () {
    window.removeEventListener("message", this._onMessage);
    if (this._overlay && this._overlay.parentNode) this._overlay.parentNode.removeChild(this._overlay);
    this._overlay = null;
    this._frame = null;
  };

  Razorpay.prototype._message = function (event) {
    if (!this._frame || event.source !== this._frame.contentWindow || event.origin !== ORIGIN) return;
    var data = event.data || {};
    if (data.source !== SOURCE) return;
    var o = this.options;
    if (data.event === "payment.success") {
      this.close();
      if (typeof o.handler === "function") o.handler(data.payload);
    } else if (data.event === "payment.failed") {
      this._emit("payment.failed", data.payload);
    } else if (data.event === "modal.dismissed") {
      this.close();
      if (o.modal && typeof o.modal.ondismiss === "function") o.modal.ondismiss();
    }
  };

  window.Razorpay = Razorpay;
})();
""".replace("__SOURCE__", MESSAGE_SOURCE)


def checkout_js() -> Response:
    return Response(
        200,
        CHECKOUT_JS.encode("utf-8"),
        "application/javascript; charset=utf-8",
        [("Cache-Control", "no-cache"), ("Access-Control-Allow-Origin", "*")],
    )
