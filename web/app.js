// The checkout page: catalog → cart → coupon → billing and tax → sign in → order → the gateway's
// own checkout (Razorpay Standard Checkout's modal here, or a trip to Stripe Checkout and back) →
// verify → watch the order until the student is enrolled.
// Plain JavaScript, no build step. Talks only to this origin's REST API (CSP connect-src 'self');
// the one outside script is Razorpay's checkout.js, from the URL config.js names.
// What it keeps between visits (cart, sign-in, order) lives in localStorage under STORE_KEY.
"use strict";

(() => {
  const CONFIG = window.CHECKOUT_CONFIG || { dev_login: null, razorpay_checkout_js: "" };
  const STORE_KEY = "checkout.page.v1";
  const POLL_FAST_MS = 500;
  const POLL_SLOW_MS = 1500;
  const POLL_LIMIT_MS = 120000;
  const OPEN_CART = new Set(["draft", "active"]);
  const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const GATEWAYS = new Set(["razorpay", "stripe"]);
  const METHODS = new Set(["upi", "card", "netbanking", "wallet"]);

  const COUNTRIES = [
    ["IN", "India"], ["US", "United States"], ["GB", "United Kingdom"], ["AE", "United Arab Emirates"],
    ["SG", "Singapore"], ["DE", "Germany"], ["CA", "Canada"], ["AU", "Australia"], ["NP", "Nepal"],
    ["BD", "Bangladesh"], ["LK", "Sri Lanka"],
  ];
  const STATES = [
    ["AN", "Andaman and Nicobar Islands"], ["AP", "Andhra Pradesh"], ["AR", "Arunachal Pradesh"], ["AS", "Assam"],
    ["BR", "Bihar"], ["CH", "Chandigarh"], ["CT", "Chhattisgarh"], ["DH", "Dadra & Nagar Haveli, Daman & Diu"],
    ["DL", "Delhi"], ["GA", "Goa"], ["GJ", "Gujarat"], ["HR", "Haryana"], ["HP", "Himachal Pradesh"],
    ["JK", "Jammu and Kashmir"], ["JH", "Jharkhand"], ["KA", "Karnataka"], ["KL", "Kerala"], ["LA", "Ladakh"],
    ["LD", "Lakshadweep"], ["MP", "Madhya Pradesh"], ["MH", "Maharashtra"], ["MN", "Manipur"], ["ML", "Meghalaya"],
    ["MZ", "Mizoram"], ["NL", "Nagaland"], ["OR", "Odisha"], ["PY", "Puducherry"], ["PB", "Punjab"],
    ["RJ", "Rajasthan"], ["SK", "Sikkim"], ["TN", "Tamil Nadu"], ["TS", "Telangana"], ["TR", "Tripura"],
    ["UP", "Uttar Pradesh"], ["UT", "Uttarakhand"], ["WB", "West Bengal"],
  ];
  // Words for the person; the API's own message and suggested action follow them.
  const TITLES = {
    0: "We could not reach the checkout",
    1000: "Please check what you entered",
    1001: "Your cart could not be found",
    1002: "Your cart has expired",
    1003: "This cart has already been ordered",
    1004: "Your cart is empty",
    1005: "That internship or plan is no longer offered",
    1006: "That already exists",
    1101: "Please sign in first",
    1102: "This belongs to another account",
    2004: "That coupon can't be used",
    2005: "Your order request changed",
    2006: "Your order is still being placed",
    2101: "We could not find that order",
    2102: "This order can't take a payment now",
    3001: "The payment failed",
    3002: "The payment failed: insufficient balance",
    3003: "The payment session expired",
    3004: "We could not find that payment",
    3101: "We couldn't confirm the payment",
    4001: "The payment service is busy",
    4004: "That page of the API does not exist",
    4013: "That request was too large",
    429: "Too many requests at once",
    5000: "Something went wrong on our side",
    5001: "This step is not available yet",
  };
  const SYMBOLS = { INR: "₹", USD: "$", EUR: "€", GBP: "£" };

  // ------------------------------------------------------------------------------------------
  // state

  const saved = readStore();
  const state = {
    catalog: [],
    selectedPlans: {}, // internship_id -> plan_id chosen on its card
    cart: null,
    cartToken: saved.cartToken || null,
    estimate: null,
    auth: saved.auth || null, // {token, userId, name, exp}
    enrollments: [], // the signed-in student's (GET /api/v1/enrollments)
    billing: saved.billing || { country: "IN", state: "" },
    order: null,
    orderToken: saved.orderToken || null,
    orderKey: saved.orderKey || null, // {key, body}: the Idempotency-Key of an order request
    gateway: GATEWAYS.has(saved.gateway) ? saved.gateway : "razorpay",
    method: METHODS.has(saved.method) ? saved.method : "upi", // Razorpay Checkout's method prefill
    paymentFailed: null, // what the gateway said when the last payment failed
    paymentLeft: false, // back from Stripe Checkout's cancel link: not a failure, no payment
    checkoutOpen: false, // Razorpay Checkout's modal is open
    polling: false,
    confirming: false,
    confirmationShown: null, // the order whose confirmation was last brought into view
  };

  function readStore() {
    try {
      return JSON.parse(window.localStorage.getItem(STORE_KEY) || "{}") || {};
    } catch (_) {
      return {};
    }
  }

  function save() {
    const keep = {
      cartToken: state.cartToken,
      auth: state.auth,
      billing: state.billing,
      orderToken: state.orderToken,
      orderKey: state.orderKey,
      gateway: state.gateway,
      method: state.method,
    };
    try {
      window.localStorage.setItem(STORE_KEY, JSON.stringify(keep));
    } catch (_) {
      /* private mode: the page still works until it is closed */
    }
  }

  // ------------------------------------------------------------------------------------------
  // helpers

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === false || value === null || value === undefined) continue;
      if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function newUuid() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    const bytes = window.crypto.getRandomValues(new Uint8Array(16));
    return uuidText(bytes, 4);
  }

  // 16 bytes as a UUID of `version` (RFC 9562: the version nibble and the variant bits set).
  function uuidText(bytes, version) {
    bytes[6] = (bytes[6] & 0x0f) | (version << 4);
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  // Money arrives as a decimal string ("1499.00"); it is only ever formatted, never computed with.
  function money(amount, currency) {
    if (amount === undefined || amount === null || amount === "") return "—";
    let text = String(amount);
    const negative = text.startsWith("-");
    if (negative) text = text.slice(1);
    const [whole, fraction = "00"] = text.split(".");
    let grouped;
    if (currency === "INR" && whole.length > 3) {
      let rest = whole.slice(0, -3);
      const groups = [];
      while (rest.length > 2) {
        groups.unshift(rest.slice(-2));
        rest = rest.slice(0, -2);
      }
      if (rest) groups.unshift(rest);
      grouped = `${groups.join(",")},${whole.slice(-3)}`;
    } else {
      grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    }
    const symbol = SYMBOLS[currency] || `${currency || ""} `;
    return `${negative ? "−" : ""}${symbol}${grouped}.${fraction}`;
  }

  const isZero = (amount) => !amount || /^-?0*(\.0*)?$/.test(String(amount));

  function periodText(period) {
    if (!period) return "";
    const value = Number(period.value) || 0;
    return `${value} ${period.unit || "month"}${value === 1 ? "" : "s"}`;
  }

  function sentence(text) {
    const t = String(text || "").trim();
    if (!t) return "";
    const first = t.charAt(0).toUpperCase() + t.slice(1);
    return /[.!?]$/.test(first) ? first : `${first}.`;
  }

  // ------------------------------------------------------------------------------------------
  // the API

  class ApiError extends Error {
    constructor(status, error, correlationId) {
      super(error.message || `HTTP ${status}`);
      this.status = status;
      this.error = error;
      this.correlationId = correlationId || "";
    }

    get code() {
      return this.error.code;
    }
  }

  function localError(message, suggestedAction) {
    return new ApiError(0, { code: -1, message, validation_messages: [], retryable: false, suggested_action: suggestedAction || "" }, "");
  }

  async function api(method, path, body, options = {}) {
    const headers = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (state.auth && options.auth !== false) headers.authorization = `Bearer ${state.auth.token}`;
    Object.assign(headers, options.headers || {});
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch (_) {
      throw new ApiError(0, {
        code: 0,
        message: "the checkout server could not be reached",
        validation_messages: [],
        retryable: true,
        suggested_action: "check your connection and try again",
      }, "");
    }
    const correlationId = response.headers.get("x-correlation-id") || "";
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (_) {
        data = null;
      }
    }
    if (!response.ok) {
      const error = data && data.error && typeof data.error === "object"
        ? data.error
        : { code: response.status, message: `the server answered HTTP ${response.status}`, validation_messages: [], retryable: response.status >= 500, suggested_action: "" };
      throw new ApiError(response.status, error, error.correlation_id || correlationId);
    }
    return data;
  }

  // ------------------------------------------------------------------------------------------
  // errors, in words, with the correlation id to quote to support

  function showError(err) {
    const e = err instanceof ApiError ? err : localError(String((err && err.message) || err));
    if (!(err instanceof ApiError)) console.error(err); // eslint-disable-line no-console
    const banner = $("error-banner");
    $("error-title").textContent = TITLES[e.code] || "Something went wrong";
    $("error-message").textContent = sentence(e.error.message);
    const details = $("error-details");
    details.replaceChildren(...(e.error.validation_messages || []).map((m) => el("li", {}, m)));
    details.hidden = details.children.length === 0;
    const action = e.error.suggested_action
      ? `What to do: ${sentence(e.error.suggested_action)}`
      : e.error.retryable ? "Please try again in a moment." : "";
    $("error-action").textContent = action;
    $("error-action").hidden = !action;
    $("error-correlation-id").textContent = e.correlationId || "none (the request never reached the server)";
    banner.dataset.code = String(e.code);
    banner.hidden = false;
  }

  function clearError() {
    $("error-banner").hidden = true;
  }

  // onError returns true when it showed the error next to its field: the banner does not repeat it.
  async function attempt(task, onError) {
    try {
      return await task();
    } catch (err) {
      if (!(onError && onError(err) === true)) showError(err);
      return undefined;
    }
  }

  function fieldError(id, text) {
    const note = $(id);
    note.textContent = text || "";
    note.hidden = !text;
  }

  const reference = (err) => (err instanceof ApiError && err.correlationId ? ` Reference for support: ${err.correlationId}.` : "");

  // ------------------------------------------------------------------------------------------
  // catalog

  async function loadCatalog() {
    const data = await api("GET", "/api/v1/internships", undefined, { auth: false });
    state.catalog = (data && data.internships) || [];
  }

  function findPlan(planId) {
    for (const internship of state.catalog) {
      for (const plan of internship.plans || []) {
        if (plan.plan_id === planId) return { internship, plan };
      }
    }
    return null;
  }

  const cartIsOpen = () => Boolean(state.cart && OPEN_CART.has(state.cart.status));

  function cartItemFor(internshipId) {
    if (!cartIsOpen()) return null;
    return (state.cart.items || []).find((item) => item.internship_id === internshipId) || null;
  }

  const isEnrolled = (planId) => state.enrollments.some((e) => e.plan_id === planId && e.status !== "cancelled");

  async function loadEnrollments() {
    if (!state.auth) {
      state.enrollments = [];
      return;
    }
    const data = await api("GET", "/api/v1/enrollments");
    state.enrollments = (data && data.enrollments) || [];
  }

  function renderCatalog() {
    const root = $("internships");
    root.setAttribute("aria-busy", "false");
    root.replaceChildren();
    if (!state.catalog.length) {
      root.append(el("p", { class: "muted" }, "No internships are open right now."));
      return;
    }
    const locked = Boolean(state.order && !isFinished(state.order));
    for (const internship of state.catalog) {
      const inCart = cartItemFor(internship.internship_id);
      const plans = internship.plans || [];
      const chosen = state.selectedPlans[internship.internship_id] || (inCart && inCart.plan_id) || (plans[0] && plans[0].plan_id);
      const card = el("article", { class: "card", "data-internship-id": internship.internship_id });
      card.append(el("h3", {}, internship.title));
      if (internship.description) card.append(el("p", {}, internship.description));
      const fieldset = el("fieldset", { class: "plans" }, el("legend", {}, "Plan"));
      for (const plan of plans) {
        const input = el("input", {
          type: "radio",
          name: `plan-${internship.internship_id}`,
          value: plan.plan_id,
          "data-plan-id": plan.plan_id,
        });
        input.checked = plan.plan_id === chosen;
        input.addEventListener("change", () => {
          state.selectedPlans[internship.internship_id] = plan.plan_id;
          renderCatalog();
        });
        fieldset.append(el("label", { class: "plan" },
          el("span", { class: "plan-label" }, input, periodText(plan.period)),
          el("span", { class: "plan-price" }, money(plan.price, plan.currency))));
      }
      card.append(fieldset);
      let label = "Add to cart";
      let disabled = locked || !chosen;
      if (chosen && isEnrolled(chosen)) {
        label = "You're enrolled in this plan";
        disabled = true;
      } else if (inCart && inCart.plan_id === chosen) {
        label = "In your cart";
        disabled = true;
      } else if (inCart) {
        label = "Switch to this plan";
      }
      const button = el("button", { type: "button", class: "primary add-to-cart", disabled });
      button.textContent = label;
      button.addEventListener("click", () => addOrSwitch(internship.internship_id, chosen, button));
      card.append(button);
      const enrolledIn = plans.filter((plan) => isEnrolled(plan.plan_id)).map((plan) => periodText(plan.period));
      if (enrolledIn.length) card.append(el("p", { class: "enrolled" }, `Enrolled: ${enrolledIn.join(", ")}`));
      root.append(card);
    }
  }

  // ------------------------------------------------------------------------------------------
  // cart

  const CART_GONE = new Set([1001, 1002, 1003, 1101, 1102]);

  async function addOrSwitch(internshipId, planId, button) {
    clearError();
    if (state.order && isFinished(state.order)) forgetOrder(); // that order is done: a new cart begins
    button.disabled = true;
    await attempt(async () => {
      const existing = cartItemFor(internshipId);
      let cart;
      if (existing) {
        cart = await api("PUT", `/api/v1/cart/${state.cart.token}/plan/${planId}`, { item_id: existing.item_id });
      } else if (cartIsOpen()) {
        try {
          cart = await api("POST", `/api/v1/cart/${state.cart.token}/items`, { plan_id: planId, quantity: 1 });
        } catch (err) {
          if (!(err instanceof ApiError) || !CART_GONE.has(err.code)) throw err;
          cart = await newCart(planId); // the old cart expired or was taken: start again
        }
      } else {
        cart = await newCart(planId);
      }
      setCart(cart);
    });
    renderCatalog();
  }

  function newCart(planId) {
    return api("POST", "/api-proxy/api/cart", { items: [{ plan_id: planId, quantity: 1 }], currency: "INR" });
  }

  function setCart(cart) {
    state.cart = cart;
    state.cartToken = cart ? cart.token : null;
    save();
    renderAll();
    refreshEstimate();
  }

  async function removeItem(item) {
    clearError();
    await attempt(async () => setCart(await api("DELETE", `/api/v1/cart/${state.cart.token}/item/${item.item_id}`)));
  }

  async function switchPlan(item, planId) {
    clearError();
    await attempt(async () => setCart(await api("PUT", `/api/v1/cart/${state.cart.token}/plan/${planId}`, { item_id: item.item_id })));
  }

  function renderCart() {
    const cart = state.cart;
    const list = $("cart-items");
    list.replaceChildren();
    const items = (cart && cart.items) || [];
    const open = cartIsOpen();
    $("cart-empty").hidden = items.length > 0;
    const count = open ? items.reduce((sum, item) => sum + (Number(item.quantity) || 1), 0) : 0;
    $("cart-link").hidden = count === 0;
    $("cart-count").textContent = String(count);
    for (const item of items) {
      const found = findPlan(item.plan_id);
      const actions = el("div", { class: "actions" });
      if (open && found && found.internship.plans.length > 1) {
        const select = el("select", { "aria-label": `Plan for ${item.title}`, class: "plan-switch" });
        for (const plan of found.internship.plans) {
          const option = el("option", { value: plan.plan_id }, `${periodText(plan.period)} · ${money(plan.price, plan.currency)}`);
          option.selected = plan.plan_id === item.plan_id;
          select.append(option);
        }
        select.addEventListener("change", () => switchPlan(item, select.value));
        actions.append(select);
      }
      if (open) {
        const remove = el("button", { type: "button", class: "link remove-item" }, "Remove");
        remove.addEventListener("click", () => removeItem(item));
        actions.append(remove);
      }
      list.append(el("li", { class: "cart-item", "data-plan-id": item.plan_id },
        el("span", { class: "title" }, item.title),
        el("span", { class: "price" }, money(item.price, cart.currency)),
        el("span", { class: "meta" }, `${periodText(item.period)}${item.quantity > 1 ? ` × ${item.quantity}` : ""}`),
        actions.children.length ? actions : null));
    }
    const note = $("cart-note");
    note.hidden = !cart || open;
    note.textContent = !cart || open ? ""
      : cart.status === "converted" ? "This cart has been ordered: it can no longer change."
        : "This cart has expired. Add an internship to start a new one.";
    const hasCoupon = Boolean(cart && cart.discount_code);
    $("coupon-form").hidden = !open || hasCoupon;
    $("coupon-applied").hidden = !hasCoupon;
    $("coupon-remove").hidden = !open;
    $("coupon-applied-code").textContent = hasCoupon ? cart.discount_code : "";
  }

  async function applyCoupon(event) {
    event.preventDefault();
    clearError();
    const input = $("coupon-code");
    const code = input.value.trim();
    fieldError("coupon-error", "");
    if (!code) {
      fieldError("coupon-error", "Enter a coupon code.");
      return;
    }
    if (!cartIsOpen() || !(state.cart.items || []).length) {
      fieldError("coupon-error", "Add an internship first: a coupon applies to a cart.");
      return;
    }
    $("coupon-apply").disabled = true;
    await attempt(async () => {
      setCart(await api("POST", `/api/v1/cart/${state.cart.token}/coupon`, { code }));
      input.value = "";
    }, (err) => {
      // only the coupon's own refusal belongs under the field; a cart or network error is the banner's
      if (!(err instanceof ApiError) || ![1000, 2004].includes(err.code)) return false;
      // "invalid coupon" says little alone: add why ("code: expired" -> "Expired")
      const why = (err.error.validation_messages || []).map((m) => sentence(m.replace(/^code:\s*/, "")));
      fieldError("coupon-error", [sentence(err.error.message), ...why].join(" ") + reference(err));
      $("coupon-error").dataset.code = String(err.code);
      return true;
    });
    $("coupon-apply").disabled = false;
  }

  async function removeCoupon() {
    clearError();
    await attempt(async () => setCart(await api("DELETE", `/api/v1/cart/${state.cart.token}/coupon`)));
  }

  // ------------------------------------------------------------------------------------------
  // billing and the tax split

  function setupBilling() {
    const country = $("billing-country");
    for (const [code, name] of COUNTRIES) country.append(el("option", { value: code }, name));
    const region = $("billing-state");
    region.append(el("option", { value: "" }, "Choose your state"));
    // names only, and the longest one short: each fits a phone's screen in full
    for (const [code, name] of STATES) region.append(el("option", { value: code }, name));
    country.value = state.billing.country || "IN";
    region.value = state.billing.state || "";
    const changed = () => {
      state.billing = { country: country.value, state: country.value === "IN" ? region.value : "" };
      save();
      renderBilling();
      renderOrderPanel();
      refreshEstimate();
    };
    country.addEventListener("change", changed);
    region.addEventListener("change", changed);
  }

  function billingForApi() {
    const billing = { country: state.billing.country || "IN" };
    if (billing.country === "IN" && state.billing.state) billing.state = state.billing.state;
    return billing;
  }

  function renderBilling() {
    $("billing-state-label").hidden = state.billing.country !== "IN";
  }

  let estimateSeq = 0;

  async function refreshEstimate() {
    const seq = ++estimateSeq;
    if (!cartIsOpen() || !(state.cart.items || []).length) {
      state.estimate = null;
      renderSummary();
      return;
    }
    try {
      const estimate = await api("POST", "/api/v1/cart/estimate", { cart_token: state.cart.token, billing: billingForApi() });
      if (seq !== estimateSeq) return;
      state.estimate = estimate;
    } catch (err) {
      if (seq !== estimateSeq) return;
      state.estimate = null;
      showError(err);
    }
    renderSummary();
    renderCartBar();
  }

  function row(label, value, attrs) {
    return el("div", attrs || {}, el("dt", {}, label), el("dd", {}, value));
  }

  function renderSummary() {
    const summary = $("summary");
    summary.replaceChildren();
    const est = state.estimate;
    const order = state.order;
    if (est) {
      const c = est.currency;
      summary.append(row("Subtotal", money(est.subtotal, c), { id: "summary-subtotal-row" }));
      if (!isZero(est.discount_amount)) {
        const codes = (est.discounts || []).map((d) => d.code).filter(Boolean).join(", ");
        summary.append(row(`Discount${codes ? ` (${codes})` : ""}`, money(`-${est.discount_amount}`, c), { class: "discount", id: "summary-discount" }));
        summary.append(row("Taxable amount", money(est.taxable_amount, c)));
      }
      for (const tax of est.taxes || []) {
        summary.append(row(`${tax.name} ${tax.rate}%`, money(tax.amount, c), { class: "tax-line", "data-tax": tax.name }));
      }
      if (!(est.taxes || []).length) summary.append(row("GST", "none (export of services)", { class: "tax-line", "data-tax": "none" }));
      summary.append(row("Total", money(est.total, c), { class: "total", id: "summary-total" }));
    } else if (order) {
      const c = order.currency;
      summary.append(row("Subtotal", money(order.subtotal, c)));
      if (!isZero(order.discount_amount)) summary.append(row("Discount", money(`-${order.discount_amount}`, c), { class: "discount" }));
      for (const tax of order.taxes || []) {
        summary.append(row(`${tax.name} ${tax.rate}%`, money(tax.amount, c), { class: "tax-line", "data-tax": tax.name }));
      }
      summary.append(row("Total", money(order.total, c), { class: "total", id: "summary-total" }));
    } else {
      summary.append(row("Subtotal", "—"));
    }
  }

  // ------------------------------------------------------------------------------------------
  // how to pay: the gateway and the method, chosen before the order is placed

  function setupPayOptions() {
    const gateway = $("payment-gateway");
    const method = $("payment-method");
    const changed = () => {
      state.gateway = GATEWAYS.has(gateway.value) ? gateway.value : "razorpay";
      state.method = state.gateway === "stripe" ? "card" : method.value;
      save();
      renderOrderPanel();
    };
    gateway.addEventListener("change", changed);
    method.addEventListener("change", changed);
  }

  // ------------------------------------------------------------------------------------------
  // sign in (development only: a JWT made here with the development secret)

  function b64url(bytes) {
    let binary = "";
    for (const b of bytes) binary += String.fromCharCode(b);
    return window.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function mintDevToken(userId) {
    const dev = CONFIG.dev_login;
    const encoder = new TextEncoder();
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: userId, iat: now, exp: now + 3600, iss: dev.issuer, aud: dev.audience };
    const part = (obj) => b64url(encoder.encode(JSON.stringify(obj)));
    const input = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
    const key = await window.crypto.subtle.importKey("raw", encoder.encode(dev.secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const signature = new Uint8Array(await window.crypto.subtle.sign("HMAC", key, encoder.encode(input)));
    return { token: `${input}.${b64url(signature)}`, exp: claims.exp };
  }

  // The student id `make token` derives from an e-mail or name (common/dev_users.py): a UUID as
  // given, else uuid5 of the trimmed, lower-cased name in the namespace config.js names.
  async function devUserId(user) {
    const given = user.trim();
    if (UUID_RE.test(given)) return given.toLowerCase();
    const hex = CONFIG.dev_login.user_namespace.replace(/-/g, "");
    const namespace = Uint8Array.from(hex.match(/../g), (pair) => parseInt(pair, 16));
    const name = new TextEncoder().encode(given.toLowerCase());
    const data = new Uint8Array(namespace.length + name.length);
    data.set(namespace);
    data.set(name, namespace.length);
    return uuidText(new Uint8Array(await window.crypto.subtle.digest("SHA-1", data)).slice(0, 16), 5);
  }

  function setupLogin() {
    const form = $("dev-login-form");
    const input = $("dev-user");
    const dev = CONFIG.dev_login;
    const canSign = Boolean(window.crypto && window.crypto.subtle);
    if (!dev || !canSign) {
      form.classList.add("disabled");
      input.disabled = true;
      $("dev-login-button").disabled = true;
      $("dev-login-note").textContent = !dev
        ? "Disabled: this server does not use the development JWT secret, so test tokens would be refused. Sign in through the platform to check out."
        : "Disabled: this browser can only make test tokens on https or on localhost.";
    }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError();
      const name = input.value.trim();
      if (!name) {
        fieldError("dev-user-error", "Enter your e-mail or your name.");
        input.focus();
        return;
      }
      fieldError("dev-user-error", "");
      await signIn(name, await devUserId(name));
    });
    $("logout-button").addEventListener("click", signOut);
  }

  async function signIn(name, userId) {
    const minted = await mintDevToken(userId);
    state.auth = { token: minted.token, userId, name, exp: minted.exp };
    save();
    if (cartIsOpen()) {
      // claim the guest cart (the server may merge it with this student's earlier cart)
      await attempt(async () => setCart(await api("POST", `/api/v1/cart/${state.cart.token}/auth/login`, {})));
    }
    await attempt(loadEnrollments);
    renderAll();
  }

  function signOut() {
    clearError();
    // the cart and the order belong to the student now: a guest cannot see them
    Object.assign(state, { auth: null, enrollments: [], cart: null, cartToken: null, order: null, orderToken: null, orderKey: null, estimate: null, paymentFailed: null, paymentLeft: false });
    save();
    renderAll();
  }

  function renderAccount() {
    const signedIn = Boolean(state.auth);
    $("dev-login-form").hidden = signedIn;
    $("signed-in").hidden = !signedIn;
    const name = signedIn ? state.auth.name || "student" : "";
    $("signed-in-user").textContent = name;
    const chip = $("account-chip");
    chip.hidden = !signedIn;
    chip.textContent = signedIn ? `Signed in · ${name}` : "";
  }

  // ------------------------------------------------------------------------------------------
  // the order and its payment

  const isFinished = (order) => ["fulfilled", "expired", "cancelled"].includes(order.status);

  function orderBlocker() {
    if (!cartIsOpen() || !(state.cart.items || []).length) return "Add an internship to your cart.";
    if (state.billing.country === "IN" && !state.billing.state) return "Choose your billing state: it decides the GST.";
    if (!state.auth) return "Sign in to place the order.";
    return "";
  }

  async function placeOrder() {
    clearError();
    const blocker = orderBlocker();
    if (blocker) {
      showError(localError(blocker));
      return;
    }
    const body = {
      cart_token: state.cart.token, billing: billingForApi(), gateway: state.gateway, payment_method: state.method,
      return_url: backUrl("return"), cancel_url: backUrl("cancel"),
    };
    const text = JSON.stringify(body);
    if (!state.orderKey || state.orderKey.body !== text) state.orderKey = { key: newUuid(), body: text };
    save();
    const button = $("place-order");
    button.disabled = true;
    button.textContent = "Placing your order…";
    await attempt(async () => {
      const order = await api("POST", "/api/v1/order", body, { headers: { "idempotency-key": state.orderKey.key } });
      state.order = order;
      state.orderToken = order.order_token;
      state.orderKey = null;
      state.paymentFailed = null;
      state.paymentLeft = false;
      if (state.cart) state.cart = { ...state.cart, status: "converted" };
      state.estimate = null;
      save();
    });
    button.textContent = "Place order";
    renderAll();
    // a free order (total 0.00) is paid at once, with no gateway: watch it become an enrollment
    if (state.order && state.order.status === "paid") pollOrder(true);
  }

  // Where Stripe Checkout sends the browser back: this page, saying which way (success_url or
  // cancel_url). Razorpay Checkout never leaves the page.
  function backUrl(way) {
    return `${window.location.origin}/?payment=${way}`;
  }

  async function refreshOrder() {
    if (!state.orderToken || !state.auth) return null;
    const order = await api("GET", `/api/v1/order/${state.orderToken}`);
    state.order = order;
    return order;
  }

  // Another try: a new attempt when the order or its session has failed, else the same session
  // again (Razorpay takes several payments per order; a Stripe Checkout Session several tries).
  async function retryPayment() {
    clearError();
    const button = $("retry-payment");
    button.disabled = true;
    await attempt(async () => {
      const order = await refreshOrder();
      if (!order) throw localError("there is no order to pay in this browser", "start a new cart");
      if (["paid", "fulfilled"].includes(order.status)) {
        state.paymentFailed = null;
        renderAll();
        pollOrder();
        return;
      }
      let session = order.payment || {};
      if (order.status === "payment_failed" || ["failed", "expired"].includes(session.status)) {
        try {
          session = await api("POST", `/api/v1/order/${order.order_token}/payment`, { gateway: session.gateway || state.gateway });
        } catch (err) {
          // the gateway has not told us yet that the last attempt failed: pay with that session again
          if (!(err instanceof ApiError) || err.code !== 2102 || session.status !== "pending") throw err;
        }
      }
      await openCheckout(session);
    });
    button.disabled = false;
  }

  async function payNow() {
    clearError();
    if (!state.order) return;
    const button = $("pay-now");
    button.disabled = true;
    await attempt(() => openCheckout(state.order.payment || {}));
    button.disabled = false;
  }

  // The gateway's own checkout for a payment session: Razorpay Standard Checkout's modal over this
  // page (key id and gateway order id from the session), or Stripe Checkout's page.
  async function openCheckout(session) {
    if (session.gateway === "stripe") {
      if (!session.checkout_url) throw localError("this payment has no Stripe Checkout page", "try again in a moment");
      window.location.assign(session.checkout_url);
      return;
    }
    if (!session.gateway_order_id) throw localError("this payment has no Razorpay order", "try again in a moment");
    const Razorpay = await loadRazorpay();
    const checkout = new Razorpay({
      key: session.key_id,
      order_id: session.gateway_order_id,
      currency: session.currency,
      name: "Internships",
      description: state.order && state.order.order_number ? `Order ${state.order.order_number}` : "Internship order",
      prefill: { method: METHODS.has(session.payment_method) ? session.payment_method : state.method },
      handler: (response) => paidWithRazorpay(response),
      modal: { ondismiss: () => { state.checkoutOpen = false; renderAll(); } },
    });
    checkout.on("payment.failed", (response) => {
      // the modal stays open: the student may pay again there
      const error = (response && response.error) || {};
      state.paymentFailed = sentence(error.description || "") || "Payment failed.";
      renderAll();
    });
    state.paymentFailed = null;
    state.paymentLeft = false;
    state.checkoutOpen = true;
    checkout.open();
    renderAll();
  }

  let razorpayScript = null;

  function loadRazorpay() {
    if (window.Razorpay) return Promise.resolve(window.Razorpay);
    if (!razorpayScript) {
      razorpayScript = new Promise((resolve, reject) => {
        const url = CONFIG.razorpay_checkout_js;
        if (!url) {
          reject(localError("this site is not set up for Razorpay payments", "contact support"));
          return;
        }
        const script = el("script", { src: url, async: true });
        script.addEventListener("load", () => (window.Razorpay ? resolve(window.Razorpay) : reject(new Error("no Razorpay"))));
        script.addEventListener("error", () => reject(new Error("unreachable")));
        document.head.append(script);
      }).catch(() => {
        razorpayScript = null;
        document.querySelectorAll(`script[src="${CONFIG.razorpay_checkout_js}"]`).forEach((node) => node.remove());
        throw new ApiError(0, {
          code: 0, message: "the payment window could not be loaded", validation_messages: [], retryable: true,
          suggested_action: "check your connection and try again",
        }, "");
      });
    }
    return razorpayScript;
  }

  // Razorpay Checkout's handler: the payment is captured; the server checks the signature.
  async function paidWithRazorpay(response) {
    state.checkoutOpen = false;
    state.paymentFailed = null;
    state.confirming = true;
    renderAll();
    await attempt(async () => {
      await api("POST", "/api/v1/payment/verify", {
        razorpay_order_id: response.razorpay_order_id || "",
        razorpay_payment_id: response.razorpay_payment_id || "",
        razorpay_signature: response.razorpay_signature || "",
      });
    });
    pollOrder(true);
  }

  function forgetOrder() {
    Object.assign(state, { cart: null, cartToken: null, order: null, orderToken: null, orderKey: null, estimate: null, paymentFailed: null, paymentLeft: false });
    save();
  }

  function newCartAfterOrder() {
    clearError();
    forgetOrder();
    state.selectedPlans = {};
    renderAll();
  }

  // Back from Stripe Checkout: ?payment=return (its success_url) or ?payment=cancel (its
  // cancel_url), whatever Stripe added. The webhooks settle the payment; the page watches.
  async function handleReturn() {
    const params = new URLSearchParams(window.location.search);
    const way = params.get("payment");
    if (way !== "return" && way !== "cancel") return false;
    window.history.replaceState(null, "", window.location.pathname);
    if (!state.orderToken || !state.auth) {
      showError(localError("you came back from the payment page, but this browser has no order waiting for it",
        "sign in again in the browser you paid from, or contact support with your payment reference"));
      return true;
    }
    await attempt(refreshOrder);
    if (params.get("redirect_status") === "failed") {
      // a page that pays a PaymentIntent (not a Checkout Session) comes back here after a failure too
      state.paymentFailed = "Payment failed.";
      renderAll();
      return true;
    }
    state.paymentFailed = null;
    state.paymentLeft = way === "cancel" && Boolean(state.order) && !["paid", "fulfilled"].includes(state.order.status);
    if (state.paymentLeft) {
      renderAll();
      return true;
    }
    pollOrder(true);
    return true;
  }

  // Watch the order until it is fulfilled (webhook → NATS → enrollment) or stops moving. After a
  // payment the gateway reported captured, payment_failed is an earlier try's news: keep watching.
  async function pollOrder(afterCapture = false) {
    if (state.polling) return;
    state.polling = true;
    state.confirming = true;
    renderAll();
    const started = Date.now();
    let failures = 0;
    try {
      while (Date.now() - started < POLL_LIMIT_MS) {
        try {
          const order = await refreshOrder();
          failures = 0;
          if (!order || isFinished(order) || (!afterCapture && order.status === "payment_failed")) break;
        } catch (err) {
          failures += 1;
          if (!(err instanceof ApiError) || !err.error.retryable || failures >= 5) {
            showError(err);
            break;
          }
        }
        renderAll();
        await new Promise((resolve) => setTimeout(resolve, Date.now() - started < 15000 ? POLL_FAST_MS : POLL_SLOW_MS));
      }
    } finally {
      if (state.order && state.order.status === "fulfilled") await attempt(loadEnrollments);
      state.polling = false;
      state.confirming = false;
      renderAll();
    }
  }

  const STEP_ORDER = ["placed", "paid", "enrolled"];
  // the payment step says what happened to the payment, never "received" when it failed
  const STEP_PAID_WORDS = { done: "Payment received", failed: "Payment failed", current: "Payment due" };

  function renderOrderPanel() {
    const order = state.order;
    const place = $("place-order");
    const blocker = orderBlocker();
    const active = order && !isFinished(order);
    place.hidden = Boolean(order);
    place.disabled = Boolean(blocker);
    $("pay-options").hidden = Boolean(order);
    $("payment-gateway").value = state.gateway;
    $("payment-method").value = state.method;
    $("payment-method").disabled = state.gateway === "stripe"; // Stripe Checkout here takes cards
    $("order-hint").textContent = order ? "" : blocker || "Everything is ready: place the order, then pay at the gateway.";
    $("order-hint").hidden = Boolean(order);
    $("order-box").hidden = !order;
    if (!order) return;

    $("order-number").textContent = order.order_number || "being numbered…";
    $("order-total").textContent = money(order.total, order.currency);
    $("order-box").dataset.status = order.status;

    const done = { placed: true, paid: ["paid", "fulfilled"].includes(order.status), enrolled: order.status === "fulfilled" };
    const failed = (order.status === "payment_failed" && !state.confirming) || Boolean(state.paymentFailed);
    for (const li of $("order-steps").children) {
      const step = li.dataset.step;
      li.className = "";
      if (done[step]) li.classList.add("done");
      else if (step === "paid" && failed && !done.paid) li.classList.add("failed");
      else if (STEP_ORDER[STEP_ORDER.indexOf(step) - 1] && done[STEP_ORDER[STEP_ORDER.indexOf(step) - 1]]) li.classList.add("current");
      if (step === "paid") li.textContent = STEP_PAID_WORDS[li.className] || "Payment";
    }

    const status = $("order-status");
    status.className = "order-status";
    let text;
    if (order.status === "fulfilled") {
      text = "You're enrolled! Your confirmation is at the top of the page.";
      status.classList.add("good");
    } else if (order.status === "paid") {
      text = "Payment received. Enrolling you…";
    } else if (order.status === "expired") {
      text = "This order expired before it was paid. Start a new cart to try again.";
      status.classList.add("bad");
    } else if (order.status === "cancelled") {
      text = "This order was cancelled.";
      status.classList.add("bad");
    } else if (failed) {
      const said = state.paymentFailed && !/^payment failed\.?$/i.test(state.paymentFailed) ? ` The gateway said: ${state.paymentFailed}` : "";
      text = `The payment did not go through.${said} You can try again.`;
      status.classList.add("bad");
    } else if (state.paymentLeft) {
      text = "You left the payment page without paying. You can try again.";
    } else if (state.confirming) {
      text = "Confirming your payment…";
    } else {
      text = "Waiting for your payment.";
    }
    status.textContent = text;
    status.dataset.status = order.status;

    const session = order.payment || {};
    const opens = session.gateway === "stripe" ? Boolean(session.checkout_url) : Boolean(session.gateway_order_id);
    const canPay = active && !failed && !state.paymentLeft && !state.confirming && !state.checkoutOpen
      && ["pending", "awaiting_payment"].includes(order.status) && session.status === "pending" && opens;
    const pay = $("pay-now");
    pay.hidden = !canPay;
    if (canPay) pay.textContent = `Pay ${money(order.total, order.currency)}`;
    $("retry-payment").hidden = !(active && (failed || state.paymentLeft) && !state.confirming);
    $("new-cart").hidden = !(isFinished(order) || order.status === "payment_failed" || failed);
  }

  function renderAll() {
    renderAccount();
    renderCatalog();
    renderCart();
    renderBilling();
    renderSummary();
    renderOrderPanel();
    renderConfirmation();
    renderCartBar();
  }

  // ------------------------------------------------------------------------------------------
  // the confirmation: once the order is paid it comes first on the page (and is scrolled to)

  const DAY = new Intl.DateTimeFormat("en-IN", { day: "numeric", month: "short", year: "numeric", timeZone: "Asia/Kolkata" });

  function dayText(stamp) {
    const date = new Date(stamp);
    return stamp && !Number.isNaN(date.getTime()) ? DAY.format(date) : "";
  }

  function confirmationItem(planId, fallbackTitle, fallbackPeriod, enrollment) {
    const found = findPlan(planId);
    const title = found ? found.internship.title : fallbackTitle;
    const period = found ? periodText(found.plan.period) : periodText(fallbackPeriod);
    const dates = enrollment && dayText(enrollment.starts_at)
      ? `Starts ${dayText(enrollment.starts_at)} · ends ${dayText(enrollment.ends_at)}`
      : "Dates follow once you're enrolled";
    return el("li", { class: "confirmation-item", "data-plan-id": planId },
      el("span", { class: "title" }, title || "Internship"),
      el("span", { class: "meta" }, `${period} plan · `), el("span", { class: "meta dates" }, dates));
  }

  function renderConfirmation() {
    const order = state.order;
    const box = $("confirmation");
    const show = Boolean(order && ["paid", "fulfilled"].includes(order.status));
    box.hidden = !show;
    if (!show) return;
    const enrolled = order.status === "fulfilled";
    box.dataset.status = order.status;
    $("confirmation-number").textContent = order.order_number || "";
    $("confirmation-title").textContent = enrolled ? "You're enrolled!" : "Payment received";
    $("confirmation-note").textContent = enrolled
      ? "Your place is confirmed. Keep the tax invoice for your records."
      : "We're enrolling you now: this takes a few seconds.";
    const mine = state.enrollments.filter((e) => e.order_token === order.order_token);
    const items = mine.length
      ? mine.map((e) => confirmationItem(e.plan_id, "", null, e))
      : ((state.cart && state.cart.items) || []).map((item) => confirmationItem(item.plan_id, item.title, item.period, null));
    $("confirmation-items").replaceChildren(...items);

    const c = order.currency;
    const amounts = [row("Subtotal", money(order.subtotal, c))];
    if (!isZero(order.discount_amount)) {
      amounts.push(row(`Discount${order.discount_code ? ` (${order.discount_code})` : ""}`, money(`-${order.discount_amount}`, c), { class: "discount" }));
    }
    for (const tax of order.taxes || []) {
      amounts.push(row(`${tax.name} ${tax.rate}%`, money(tax.amount, c), { class: "tax-line", "data-tax": tax.name }));
    }
    if (!(order.taxes || []).length) amounts.push(row("GST", "none (export of services)", { class: "tax-line", "data-tax": "none" }));
    amounts.push(row("Amount paid", money(order.total, c), { class: "total", id: "confirmation-total" }));
    if (!isZero(order.refunded_amount)) amounts.push(row("Refunded", money(`-${order.refunded_amount}`, c), { class: "discount" }));
    $("confirmation-amounts").replaceChildren(...amounts);

    const link = $("invoice-link");
    link.href = `/api/v1/order/${order.order_token}/invoice`;
    link.setAttribute("download", `invoice-${order.order_number || "order"}.pdf`);

    const seen = `${order.order_token}:${order.status}`;
    if (state.confirmationShown !== seen) {
      state.confirmationShown = seen;
      window.scrollTo(0, 0);
      box.focus({ preventScroll: true });
    }
  }

  // The invoice route wants the bearer token, which a plain link cannot send: fetch it, then save it.
  async function downloadInvoice(event) {
    event.preventDefault();
    fieldError("invoice-error", "");
    const link = $("invoice-link");
    try {
      const headers = state.auth ? { authorization: `Bearer ${state.auth.token}` } : {};
      const response = await fetch(link.getAttribute("href"), { headers, cache: "no-store", credentials: "omit" });
      if (!response.ok) {
        let error = {};
        try {
          error = (await response.json()).error || {};
        } catch (_) { /* not the envelope */ }
        throw new ApiError(response.status, { code: error.code || response.status, message: error.message || `HTTP ${response.status}`, validation_messages: [] },
          error.correlation_id || response.headers.get("x-correlation-id") || "");
      }
      const url = URL.createObjectURL(await response.blob());
      const save = el("a", { href: url, download: link.getAttribute("download") });
      document.body.append(save);
      save.click();
      save.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (err) {
      const why = err instanceof ApiError && err.code === 2102 ? "The invoice is issued once the payment is settled: try again in a moment."
        : `The invoice could not be downloaded: ${sentence(err.message)}`;
      fieldError("invoice-error", why + reference(err));
    }
  }

  // On a phone the cart is below the catalog: a bar at the bottom keeps its count and total in view.
  function renderCartBar() {
    const items = cartIsOpen() ? state.cart.items || [] : [];
    const order = state.order && ["pending", "awaiting_payment", "payment_failed"].includes(state.order.status) ? state.order : null;
    const shown = items.length > 0 || Boolean(order);
    $("cart-bar").hidden = !shown;
    document.body.classList.toggle("with-cart-bar", shown);
    if (!shown) return;
    if (order) {
      $("cart-bar-count").textContent = `Order ${order.order_number || ""}`.trim();
      $("cart-bar-total").textContent = money(order.total, order.currency);
      $("cart-bar-link").textContent = "Pay";
      $("cart-bar-link").setAttribute("href", "#order-panel");
      return;
    }
    const count = items.reduce((sum, item) => sum + (Number(item.quantity) || 1), 0);
    const total = state.estimate ? money(state.estimate.total, state.estimate.currency) : money(state.cart.subtotal, state.cart.currency);
    $("cart-bar-count").textContent = `${count} ${count === 1 ? "internship" : "internships"}`;
    $("cart-bar-total").textContent = `${total}${state.estimate ? " total" : " before tax"}`;
    $("cart-bar-link").textContent = "Review and pay";
    $("cart-bar-link").setAttribute("href", "#cart-panel");
  }

  // ------------------------------------------------------------------------------------------
  // start

  async function restore() {
    if (state.auth && state.auth.exp && state.auth.exp * 1000 < Date.now() + 60000) {
      Object.assign(state, { auth: null, cartToken: null, orderToken: null }); // expired sign-in
      save();
    }
    if (state.cartToken) {
      try {
        state.cart = await api("GET", `/api/v1/cart/${state.cartToken}`);
      } catch (err) {
        if (!(err instanceof ApiError) || !(CART_GONE.has(err.code) || err.status === 404)) showError(err);
        state.cart = null;
        state.cartToken = null;
        save();
      }
    }
    if (state.auth) await attempt(loadEnrollments);
    if (state.orderToken) {
      try {
        await refreshOrder();
      } catch (err) {
        if (err instanceof ApiError && [2101, 1101, 1102].includes(err.code)) {
          state.orderToken = null;
          save();
        } else {
          showError(err);
        }
      }
    }
  }

  async function boot() {
    setupBilling();
    setupPayOptions();
    setupLogin();
    $("coupon-form").addEventListener("submit", applyCoupon);
    $("coupon-remove").addEventListener("click", removeCoupon);
    $("place-order").addEventListener("click", placeOrder);
    $("retry-payment").addEventListener("click", retryPayment);
    $("pay-now").addEventListener("click", payNow);
    $("new-cart").addEventListener("click", newCartAfterOrder);
    $("confirmation-new-cart").addEventListener("click", newCartAfterOrder);
    $("invoice-link").addEventListener("click", downloadInvoice);
    $("error-dismiss").addEventListener("click", clearError);
    renderAll();
    await Promise.all([attempt(loadCatalog), restore()]);
    renderAll();
    refreshEstimate();
    const returned = await handleReturn();
    if (!returned && state.order && state.order.status === "paid") pollOrder();
    document.body.dataset.ready = "true";
  }

  document.addEventListener("DOMContentLoaded", boot);
})();
