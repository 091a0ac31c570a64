// Cairn Notes' Service Worker: keeps the app shell (every file of the build, listed at build
// time) so the app opens offline, and drains the outbox of whichever notes repository asks
// through Background Sync (`cairn-sync:<name>`, registered by the package when changes wait
// offline). API calls (/v1/, /ipfs/) always go to the network: the package keeps the data.
import { handleSyncEvents } from '@cairn/client/sw';

const SHELL = self.__PRECACHE__;
const CACHE = `cairn-notes-${self.__VERSION__}`;

handleSyncEvents();

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name.startsWith('cairn-notes-') && name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/v1/') || url.pathname.startsWith('/ipfs/') || url.pathname === '/metrics') return;
  if (event.request.mode === 'navigate') {
    // The page: fresh when online, the cached shell when not.
    event.respondWith(fetch(event.request).catch(() => caches.match('/', { cacheName: CACHE })));
    return;
  }
  event.respondWith(caches.match(event.request, { cacheName: CACHE }).then((hit) => hit ?? fetch(event.request)));
});
