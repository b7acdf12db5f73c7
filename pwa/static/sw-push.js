/* Seen's push handling, imported by the service worker (/sw.js does importScripts('/pwa/sw-push.js')).
 *
 * A push message is JSON from the server: {title, body, url, tag, child, clock, due, stage}. It never
 * names a child (initials and clock only), so it is safe on a lock screen. Tapping the notification
 * opens the child's page, in the Seen window already open if there is one.
 */
'use strict';

// Only a path on this site: a notification must never open another site.
function seenPushUrl(url) {
  return typeof url === 'string' && url.startsWith('/') && !url.startsWith('//') ? url : '/';
}

function seenPushShow(data) {
  const title = (data && data.title) || 'Seen';
  return self.registration.showNotification(title, {
    body: (data && data.body) || '',
    tag: (data && data.tag) || undefined,  // the same alert twice replaces, never stacks
    icon: '/icons/icon-192.png',
    badge: '/icons/icon-192.png',
    data: {url: seenPushUrl(data && data.url), child: (data && data.child) || null},
  });
}

// Opens `url` in this site's window if one is open (focusing it), else in a new window.
async function seenPushOpen(url) {
  const target = new URL(seenPushUrl(url), self.location.origin).href;
  const windows = await self.clients.matchAll({type: 'window', includeUncontrolled: true});
  for (const client of windows) {
    if (client.url === target) {
      return client.focus();
    }
  }
  for (const client of windows) {
    if (new URL(client.url).origin !== self.location.origin) continue;
    try {
      await client.focus();
    } catch (e) {
      // Focusing needs the user's tap; navigating the window still takes them there.
    }
    if ('navigate' in client) {
      try {
        const navigated = await client.navigate(target);
        if (navigated) return navigated;
      } catch (e) {
        // An uncontrolled window cannot be navigated from here: fall through to a new window.
      }
    }
  }
  return self.clients.openWindow(target);
}

self.addEventListener('push', (event) => {
  let data = {};
  if (event.data) {
    try {
      data = event.data.json();
    } catch (e) {
      data = {body: event.data.text()};
    }
  }
  event.waitUntil(seenPushShow(data));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(seenPushOpen(event.notification.data && event.notification.data.url));
});

// Named so tests (and the offline shell) can reach them.
self.seenPushShow = seenPushShow;
self.seenPushOpen = seenPushOpen;
