// The Node half of the `generations` scenario of `cargo xtask e2e`, against
// examples/llm-tokens. Prints JSON lines on stdout, then exits.
//
//   node generations.mjs NODE_MODULES_DIR eventsource URL
//     An EventSource (the `eventsource` package) on URL (/answers/ID): prints every event
//     ({kind:"event",type,data,id}) and error ({kind:"error",readyState}); exits once the
//     EventSource is CLOSED (after `done`, its reconnect is answered 204).
//
//   node generations.mjs NODE_MODULES_DIR openai BASE_URL CUT_AFTER
//     OpenAI's official client (`openai` package) and its own stream parser:
//     responses.create({stream: true}) against BASE_URL/v1/responses, reads CUT_AFTER
//     events and aborts (a cut mid-answer), then responses.retrieve(id, {stream: true,
//     starting_after: N}) for the rest. Prints every parsed event ({kind:"item",phase,item}).

import { createRequire } from 'node:module';
import { join } from 'node:path';

const [modules, mode, url, cutAfter] = process.argv.slice(2);
if (!modules || !mode || !url) {
  console.error('usage: node generations.mjs NODE_MODULES_DIR eventsource|openai URL [CUT_AFTER]');
  process.exit(2);
}
const require = createRequire(join(modules, 'resolve-from-here.js'));
const print = (line) => process.stdout.write(JSON.stringify(line) + '\n');

if (mode === 'eventsource') {
  const { EventSource } = require('eventsource');
  const es = new EventSource(url);
  for (const type of ['token', 'done', 'error', 'cancelled', 'message']) {
    es.addEventListener(type, (e) => {
      if (e.data !== undefined) print({ kind: 'event', type, data: e.data, id: e.lastEventId });
    });
  }
  es.onerror = () => {
    print({ kind: 'error', readyState: es.readyState });
    if (es.readyState === 2) process.exit(0);
  };
} else if (mode === 'openai') {
  const { default: OpenAI } = require('openai');
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'not-used', maxRetries: 0 });
  const cut = Number(cutAfter ?? 5);
  const stream = await client.responses.create({ model: 'fake', input: 'why?', stream: true });
  let id = null;
  let last = -1;
  let n = 0;
  for await (const item of stream) {
    print({ kind: 'item', phase: 'create', item });
    if (item.type === 'response.created') id = item.response.id;
    last = item.sequence_number;
    if (++n >= cut) break; // aborts the request: a cut mid-answer
  }
  const rest = await client.responses.retrieve(id, { stream: true, starting_after: last });
  for await (const item of rest) print({ kind: 'item', phase: 'retrieve', item });
  process.exit(0);
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
