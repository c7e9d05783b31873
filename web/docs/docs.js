// The API reference at /docs: Swagger UI (vendored from the swagger-ui-py wheel by
// tools/vendor_swagger_ui.py) rendering /openapi.json. A file, not an inline script, so the edge's
// strict CSP (script-src 'self') needs no exception; no validator badge (it calls an outside host).
"use strict";
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  tryItOutEnabled: false,
  persistAuthorization: false,
});
