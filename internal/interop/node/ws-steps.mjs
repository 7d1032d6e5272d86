// Shared by ws-client.mjs and ws-server.mjs: the JSON-line reporting and the
// step driver that plays npm ws's side of an interop scenario.
//
// Every observation is one JSON object per line on stdout, so the Go test
// checks what ws actually saw rather than trusting an echo:
//   {"ev":"open"|"connection", "protocol", "extensions" (the negotiated
//     Sec-WebSocket-Extensions value), "path", "headers"}
//   {"ev":"message", "type":"text"|"binary", "len", "sha256", "hex"?}
//   {"ev":"ping"|"pong", "hex"}
//   {"ev":"error", "code", "message"}   (ws's error code, e.g. WS_ERR_INVALID_UTF8)
//   {"ev":"close", "code", "reason", "bytesRead", "bytesWritten"}
//     (bytes on the TCP connection, handshake included: how the Go test
//     sees that permessage-deflate really compressed)
//   {"ev":"step-error", "message"}      (the scenario itself went wrong)
//   {"ev":"timeout"}                    (the hard time limit was hit)
import { createHash } from 'node:crypto';

// Payloads up to this many bytes are reported in full (as hex).
const reportLimit = 256;

export function emit(obj) {
  // stdout is a pipe, which Node writes synchronously on Linux, so a line is
  // never lost when the process exits right after.
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// hardLimit ends the process if a scenario hangs, so a test never waits on
// a stuck peer. The timer is unref'd: it never keeps a finished process alive.
export function hardLimit(ms) {
  setTimeout(() => {
    emit({ ev: 'timeout' });
    process.exit(3);
  }, ms || 20000).unref();
}

// bytes builds a payload from its JSON description:
//   {hex}                 exact bytes (also how invalid UTF-8 is sent)
//   {pattern: n}          n bytes, byte i = i % 251 (the Go test's pattern)
//   {repeat: s, count}    the UTF-8 of s repeated count times
export function bytes(spec) {
  if (spec.pattern !== undefined) {
    const b = Buffer.allocUnsafe(spec.pattern);
    for (let i = 0; i < b.length; i++) b[i] = i % 251;
    return b;
  }
  if (spec.repeat !== undefined) return Buffer.from(spec.repeat.repeat(spec.count), 'utf8');
  return Buffer.from(spec.hex || '', 'hex');
}

function describe(data) {
  const b = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
  const out = { len: b.length, sha256: createHash('sha256').update(b).digest('hex') };
  if (b.length <= reportLimit) out.hex = b.toString('hex');
  return out;
}

// attach reports everything that happens on ws and returns the state the
// steps wait on. With echo, every message is sent back with its own type.
// opts.socket is ws's TCP socket, read at close for the byte counts.
export function attach(ws, opts = {}) {
  const { echo } = opts;
  const st = { messages: 0, pongs: 0, closed: false, waiters: new Set() };
  const wake = () => {
    for (const w of st.waiters) w();
  };
  st.until = (cond) =>
    new Promise((resolve) => {
      if (cond()) return resolve();
      const w = () => {
        if (cond()) {
          st.waiters.delete(w);
          resolve();
        }
      };
      st.waiters.add(w);
    });
  ws.on('message', (data, isBinary) => {
    emit({ ev: 'message', type: isBinary ? 'binary' : 'text', ...describe(data) });
    st.messages++;
    if (echo) ws.send(data, { binary: isBinary });
    wake();
  });
  ws.on('ping', (data) => emit({ ev: 'ping', hex: data.toString('hex') }));
  ws.on('pong', (data) => {
    emit({ ev: 'pong', hex: data.toString('hex') });
    st.pongs++;
    wake();
  });
  ws.on('error', (err) => emit({ ev: 'error', code: err.code || '', message: err.message }));
  ws.on('close', (code, reason) => {
    emit({
      ev: 'close',
      code,
      reason: reason.toString('utf8'),
      bytesRead: opts.socket ? opts.socket.bytesRead : -1,
      bytesWritten: opts.socket ? opts.socket.bytesWritten : -1,
    });
    st.closed = true;
    wake();
  });
  return st;
}

// runSteps plays the scenario, one step after another:
//   {op:"send", type, data}          one message ("text" sends the bytes as a
//                                    text frame unchecked, so invalid UTF-8 works)
//   {op:"send", type, fragments:[…]} one message as several frames (fin:false)
//   {op:"recv", count}               wait until count more messages arrived
//   {op:"ping", data}                ping and wait for a pong
//   {op:"close", code?, reason?|reasonHex?}  start the closing handshake
//   {op:"waitClose"}                 wait until the connection is closed
// A step that fails is reported as step-error and ends the scenario.
export async function runSteps(ws, st, steps) {
  try {
    for (const s of steps || []) {
      switch (s.op) {
        case 'send': {
          const binary = s.type === 'binary';
          if (s.fragments) {
            s.fragments.forEach((f, i) =>
              ws.send(bytes(f), { binary, fin: i === s.fragments.length - 1 }),
            );
          } else {
            ws.send(bytes(s.data || {}), { binary });
          }
          break;
        }
        case 'recv': {
          const want = st.messages + (s.count || 1);
          await st.until(() => st.messages >= want || st.closed);
          break;
        }
        case 'ping': {
          const want = st.pongs + 1;
          ws.ping(bytes(s.data || {}));
          await st.until(() => st.pongs >= want || st.closed);
          break;
        }
        case 'close':
          if (s.code === undefined) ws.close();
          else if (s.reasonHex !== undefined) ws.close(s.code, Buffer.from(s.reasonHex, 'hex'));
          else ws.close(s.code, s.reason || '');
          await st.until(() => st.closed);
          break;
        case 'waitClose':
          await st.until(() => st.closed);
          break;
        default:
          throw new Error(`unknown step ${JSON.stringify(s)}`);
      }
    }
  } catch (err) {
    emit({ ev: 'step-error', message: String(err && err.message) });
    ws.terminate();
  }
}
