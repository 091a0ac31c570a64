// The test app's Service Worker: caches the app shell (so the page reloads offline) and
// drains the SDK's outbox on Background Sync. `?name=` is the repository to drain.
import { handleSyncEvents } from '/pkg/sw.js';

const name = new URL(self.location).searchParams.get('name') ?? 'default';
handleSyncEvents({ name });

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
