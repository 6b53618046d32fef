// The Node half of `cargo xtask e2e`: an EventSource from the `eventsource` npm package
// (4.x: WHATWG API, reconnects with Last-Event-ID on its own) prints what it sees as JSON
// lines on stdout until the harness kills it.
//
//   node client.mjs NODE_MODULES_DIR URL EVENT_TYPE
//
// The package is resolved from NODE_MODULES_DIR (the harness installs it under
// target/e2e/node), so nothing is installed beside this file.

import { createRequire } from 'node:module';
import { join } from 'node:path';

const [modules, url, eventType] = process.argv.slice(2);
if (!modules || !url || !eventType) {
  console.error('usage: node client.mjs NODE_MODULES_DIR URL EVENT_TYPE');
  process.exit(2);
}
const require = createRequire(join(modules, 'resolve-from-here.js'));
const { EventSource } = require('eventsource');

const print = (line) => process.stdout.write(JSON.stringify(line) + '\n');
const es = new EventSource(url);
es.addEventListener(eventType, (e) => print({ kind: 'event', data: e.data, id: e.lastEventId }));
es.addEventListener('message', (e) => print({ kind: 'other', data: e.data, id: e.lastEventId }));
es.onopen = () => print({ kind: 'open' });
es.onerror = (e) => print({ kind: 'error', message: e.message ?? null, readyState: es.readyState });
