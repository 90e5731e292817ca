// The service worker: the app shell kept on the tablet, so that once opened
// the app starts with no network. On install it keeps every file of the
// build (listed in precache.json, which the build writes); files under
// /assets/ are named by their content, so the copy kept is always right;
// the page itself is asked of the server first and taken from the copy
// when there is no network. The API is never cached here: documents and
// reference data live in IndexedDB.
const SHELL = "sqm-shell-v1";

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const list = await (await fetch("/precache.json", { cache: "no-cache" })).json();
      const cache = await caches.open(SHELL);
      await cache.addAll(["/", ...list.filter((f) => f !== "/index.html")]);
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) if (name !== SHELL) await caches.delete(name);
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin || url.pathname.startsWith("/api/")) {
    return;
  }
  if (url.pathname.startsWith("/assets/")) {
    event.respondWith(
      (async () => {
        const kept = await caches.match(request);
        if (kept) return kept;
        const fresh = await fetch(request);
        if (fresh.ok) (await caches.open(SHELL)).put(request, fresh.clone());
        return fresh;
      })(),
    );
    return;
  }
  event.respondWith(
    (async () => {
      try {
        const fresh = await fetch(request);
        if (fresh.ok) (await caches.open(SHELL)).put(request, fresh.clone());
        return fresh;
      } catch (offline) {
        const kept = (await caches.match(request)) ?? (request.mode === "navigate" ? await caches.match("/") : undefined);
        if (kept) return kept;
        throw offline;
      }
    })(),
  );
});
