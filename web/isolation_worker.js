// A service worker that makes the demo cross-origin isolated on a host that cannot send the headers
// itself (a static host such as GitHub Pages): the module shares its memory with the worker threads its
// GEMMs run on, and browsers allow shared memory only on an isolated page. demo.js installs this worker
// when the page is not isolated and reloads once; from then on every response of the site passes through
// here and gains the two headers web/serve.mjs would have sent. Every resource of the page is same-origin,
// so requiring CORP of embedded resources (require-corp) blocks nothing.
'use strict';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const request = event.request;
  // Chromium throws for this combination when the request is re-issued (devtools makes such requests).
  if (request.cache === 'only-if-cached' && request.mode !== 'same-origin') return;
  event.respondWith(fetch(request).then((response) => {
    if (response.status === 0) return response;  // opaque (cross-origin, no-cors): headers are not ours to set
    const headers = new Headers(response.headers);
    headers.set('Cross-Origin-Opener-Policy', 'same-origin');
    headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }));
});
