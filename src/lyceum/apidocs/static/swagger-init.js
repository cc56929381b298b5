// Starts Swagger UI on /docs. A file rather than an inline script, so the page's
// Content-Security-Policy allows scripts from this server only.
"use strict";
(function () {
  var options = document.currentScript.dataset;
  window.ui = SwaggerUIBundle({
    url: options.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    persistAuthorization: false,
    // No call to the public validator service: the page works offline.
    validatorUrl: "none",
    presets: [SwaggerUIBundle.presets.apis],
  });
})();
