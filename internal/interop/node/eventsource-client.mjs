// Interop peer for runtime/sse: connects npm `eventsource` to URL and
// prints one JSON line {"type","data","lastEventId"} per event received,
// listening for "message" and each extra type given, until COUNT events
// have arrived. Reconnection is the package's own (as a browser's).
//
// usage: node eventsource-client.mjs URL COUNT [TYPE,TYPE...]
// exit status: 0 after COUNT events, 2 on timeout or usage error.
import { EventSource } from 'eventsource';

const [url, countArg, typesArg = ''] = process.argv.slice(2);
const count = Number(countArg);
if (!url || !Number.isInteger(count) || count < 1) {
  console.error('usage: node eventsource-client.mjs URL COUNT [TYPE,TYPE...]');
  process.exit(2);
}

const timer = setTimeout(() => {
  console.error(`timeout: received ${received} of ${count} events`);
  process.exit(2);
}, Number(process.env.INTEROP_TIMEOUT_MS || 20000));

let received = 0;
const es = new EventSource(url);
const onEvent = (ev) => {
  process.stdout.write(JSON.stringify({ type: ev.type, data: ev.data, lastEventId: ev.lastEventId }) + '\n');
  if (++received === count) {
    es.close();
    clearTimeout(timer);
  }
};
for (const type of ['message', ...typesArg.split(',').filter(Boolean)]) {
  es.addEventListener(type, onEvent);
}
es.addEventListener('error', (ev) => {
  // A dropped stream is reconnected by EventSource itself; report only.
  console.error(`eventsource error (readyState ${es.readyState}): ${ev.message ?? ''}`);
});
