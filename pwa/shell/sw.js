/* Seen's service worker, served at /sw.js with scope "/".
 *
 * Pages are NiceGUI pages: each render carries a server-side client id, so a cached page would fail its
 * handshake. Navigations therefore always go to the network and never to the cache; when the network
 * fails, the worker gets the offline page instead. What is cached: the offline page, its scripts, the
 * icons and manifest, and NiceGUI's versioned static files (their URL changes with NiceGUI's version).
 *
 * VERSION changes with every deployment (app version + a hash of the browser code), so the browser sees
 * a new worker, installs it, and it takes over at once (skipWaiting + clients.claim) and deletes the
 * caches of the old one.
 */
const VERSION = "__VERSION__";
const NICEGUI_STATIC = "__NICEGUI_PREFIX__";
const PRECACHE = __PRECACHE__;
const CACHE = "seen-" + VERSION;
const OFFLINE_URL = "/offline";

try {
  // The colleague-owned push handlers; a missing or broken file must not stop the offline part.
  importScripts("/pwa/sw-push.js?v=" + VERSION);
} catch (e) {
  console.warn("Seen: push handlers not loaded", e);
}
try {
  // The same draft store the pages use, so a Background Sync can send drafts with no page open.
  importScripts("/pwa/seen-drafts.js?v=" + VERSION);
} catch (e) {
  console.warn("Seen: drafts not loaded in the worker", e);
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      // cache: "reload" skips the HTTP cache, so a new version never precaches an old file.
      .then((cache) => cache.addAll(PRECACHE.map((url) => new Request(url, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith("seen-") && n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

// Reads never open (and so never re-create) the cache: a worker being replaced must not bring back the
// cache its successor just deleted.
function cached(request, options = {}) {
  return caches.match(request, { ...options, cacheName: CACHE });
}

async function fromCacheFirst(request) {
  const hit = await cached(request);
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok && response.type === "basic" && (await caches.has(CACHE))) {
    const copy = response.clone();
    caches.open(CACHE).then((cache) => cache.put(request, copy));
  }
  return response;
}

async function navigation(request) {
  try {
    // Straight to the network, never cached: a stored NiceGUI page is a dead page.
    return await fetch(request);
  } catch (e) {
    return (await cached(OFFLINE_URL)) || Response.error();
  }
}

async function shellFile(request) {
  // The offline page's own files: network first so an update is seen, the cache when there is none.
  try {
    const response = await fetch(request);
    if (response.ok) return response;
    throw new Error("status " + response.status);
  } catch (e) {
    const hit = (await cached(request)) || (await cached(request, { ignoreSearch: true }));
    if (hit) return hit;
    throw e;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    event.respondWith(navigation(request));
  } else if (url.pathname.startsWith(NICEGUI_STATIC) && !url.pathname.includes("/dynamic_resources/")) {
    event.respondWith(fromCacheFirst(request));
  } else if (url.pathname === OFFLINE_URL || url.pathname.startsWith("/pwa/") || url.pathname.startsWith("/icons/") || url.pathname === "/manifest.webmanifest") {
    event.respondWith(shellFile(request));
  }
  // Everything else (the API, NiceGUI's socket and dynamic resources) goes to the network untouched.
});

self.addEventListener("message", (event) => {
  // A page that loaded while this worker was still installing is not controlled; it asks to be claimed.
  if (event.data && event.data.type === "seen-claim") event.waitUntil(self.clients.claim());
  if (event.data && event.data.type === "seen-version") {
    const reply = { type: "seen-version", version: VERSION };
    if (event.ports && event.ports[0]) event.ports[0].postMessage(reply);
    else if (event.source) event.source.postMessage(reply);
  }
});

self.addEventListener("sync", (event) => {
  if (event.tag === "seen-drafts" && self.SeenDrafts) {
    event.waitUntil(self.SeenDrafts.sendReady());
  }
});
