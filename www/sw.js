// Service worker: caches the app shell, wasm and model on install, then serves them from the cache so the
// reader works offline. The build (scripts/build-web.sh) writes VERSION (a hash of every cached file)
// and ASSETS; a new build gets a new cache and the old one is deleted. Of the two wasm builds (pkg/,
// pkg-relaxed/) it caches the one this browser runs, chosen by the same test as the reading worker's.
importScripts("./wasm-build.js");
const VERSION = "__VERSION__";
const ASSETS = __ASSETS__.filter((a) => !/^\.\/pkg(-relaxed)?\//.test(a) || a.startsWith(`./${self.xrayWasmBuild}/`));
const CACHE = `xray-reader-${VERSION}`;

self.addEventListener("install", (event) => {
  event.waitUntil(
    // "no-cache": revalidate with the server, so files the page has just fetched (the wasm, the model) come
    // from the HTTP cache after a 304 instead of being downloaded a second time, while stale ones are refetched
    caches.open(CACHE).then((cache) => cache.addAll(ASSETS.map((a) => new Request(a, { cache: "no-cache" })))).then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("xray-reader-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  event.respondWith(
    caches.open(CACHE).then(async (cache) => {
      const hit = await cache.match(event.request, { ignoreSearch: true });
      if (hit) return hit;
      return fetch(event.request);
    }),
  );
});
