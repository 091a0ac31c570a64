// The test app's Service Worker: the package README's recipe (drains the outbox of the
// repository a Background Sync event names; the README test checks its lines are here), and
// caching of the app shell so the page reloads offline.
import { handleSyncEvents } from '/pkg/sw.js';

// On Background Sync, drains the outbox of the repository that asked (its tag is
// `cairn-sync:<name>`), with the token the page stored.
handleSyncEvents();

const SHELL = [
  '/', '/index.html',
  '/pkg/index.js', '/pkg/sw.js',
  '/pkg/src/doc.js', '/pkg/src/errors.js', '/pkg/src/files.js', '/pkg/src/proxy.js',
  '/pkg/src/repo.js', '/pkg/src/sync.js', '/pkg/src/tabs.js', '/pkg/src/transfers.js',
  '/pkg/src/wasm.js',
  '/pkg/wasm/cairn_client.js', '/pkg/wasm/cairn_client_bg.wasm',
];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open('shell').then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin || url.pathname.startsWith('/v1/')) return;
  event.respondWith(fetch(event.request).catch(() => caches.match(event.request, { ignoreSearch: true })));
});
