// Starts Swagger UI (modelport's own copy) on this server's OpenAPI document; a file, not an
// inline script, so the page's Content-Security-Policy allows no inline script at all.
"use strict";

window.ui = SwaggerUIBundle({
  url: document.body.dataset.openapi,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis],
  validatorUrl: null,  // no badge from validator.swagger.io: nothing leaves the server
});
