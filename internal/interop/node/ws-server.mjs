// npm ws as a WebSocket server for a wsrpc client (driven by
// internal/interop/ws_test.go).
//
// usage: node ws-server.mjs '<config JSON>'
//   {maxPayload?, perMessageDeflate?, echo?, steps?, timeoutMs?}
// It listens on 127.0.0.1 on a free port and prints {"ev":"listening",
// "port"}. Every connection reports {"ev":"connection", path, protocol,
// extensions, headers}, then runs the steps (and echoes when echo is set).
// The server exits when stdin ends (the Go test closes it), after the open
// connections have closed or a short grace period, and in any case at the
// hard time limit.
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { attach, emit, hardLimit, runSteps } from './ws-steps.mjs';

let cfg;
try {
  cfg = JSON.parse(process.argv[2]);
} catch (err) {
  emit({ ev: 'step-error', message: `bad config: ${err.message}` });
  process.exit(2);
}
hardLimit(cfg.timeoutMs);

const server = http.createServer((req, res) => {
  res.writeHead(426).end('WebSocket only\n');
});
const wss = new WebSocketServer({
  server,
  maxPayload: cfg.maxPayload || 100 * 1024 * 1024,
  perMessageDeflate: cfg.perMessageDeflate ?? false,
});
const open = new Set();

// ws.extensions lists names only: report the negotiated parameters from the
// response headers ws is about to send.
const answered = new WeakMap();
wss.on('headers', (headers, req) => {
  const h = headers.find((l) => /^sec-websocket-extensions:/i.test(l));
  answered.set(req, h ? h.replace(/^[^:]*:\s*/, '') : '');
});
let ending = false;

wss.on('connection', (ws, req) => {
  open.add(ws);
  emit({
    ev: 'connection',
    path: req.url,
    protocol: ws.protocol,
    extensions: answered.get(req) || '',
    headers: req.headers,
  });
  const st = attach(ws, { echo: cfg.echo, socket: req.socket });
  ws.on('close', () => {
    open.delete(ws);
    if (ending && open.size === 0) process.exit(0);
  });
  runSteps(ws, st, cfg.steps);
});

server.listen(0, '127.0.0.1', () => {
  emit({ ev: 'listening', port: server.address().port });
});

process.stdin.on('end', () => {
  ending = true;
  server.close();
  if (open.size === 0) process.exit(0);
  // A connection still open gets a moment to finish its closing handshake
  // (so its close event is reported), then the process goes regardless.
  setTimeout(() => process.exit(0), 2000).unref();
});
process.stdin.resume();
