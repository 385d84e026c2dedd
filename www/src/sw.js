// ganfit's service worker: the app's own files (listed at build time in app-files.json) are
// cached at install, so the app opens offline after the first visit. Pages are fetched from
// the network first (a new deployment shows up), everything else from the cache first. Model
// files are left to the engine's worker, which caches and hash-checks them itself.
// ignoreVary: the preview and static servers send `Vary: Origin`, and module scripts are
// requested with an Origin header that the install-time requests lack.
// The build writes this file with a hash of everything it built as the build name below
// (vite.config.ts): a new deployment is a new service worker, which installs the new files in
// a cache of its own and, once active, deletes the caches of earlier ones.
const CACHE = 'ganfit-app-__BUILD__';

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      const response = await fetch('app-files.json', { cache: 'no-cache' });
      const files = await response.json();
      await cache.addAll(files.filter((f) => f !== './sw.js'));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith('ganfit-app-') && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== location.origin || url.pathname.includes('/models/')) return;
  if (request.mode === 'navigate') {
    event.respondWith(
      (async () => {
        try {
          const response = await fetch(request);
          // An error page is shown now but never kept: offline, the last good page is.
          if (response.ok) {
            const cache = await caches.open(CACHE);
            await cache.put(request, response.clone());
          }
          return response;
        } catch {
          const cache = await caches.open(CACHE);
          return (await cache.match(request, { ignoreSearch: true, ignoreVary: true })) ?? (await cache.match('./', { ignoreVary: true })) ?? Response.error();
        }
      })(),
    );
    return;
  }
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      const cached = await cache.match(request, { ignoreSearch: true, ignoreVary: true });
      if (cached) return cached;
      const response = await fetch(request);
      if (response.ok) await cache.put(request, response.clone());
      return response;
    })(),
  );
});
