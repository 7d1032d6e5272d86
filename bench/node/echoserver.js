// npm ws echo server for the cross-library comparison. Usage:
//   node echoserver.js [--deflate]
// Listens on 127.0.0.1 (port chosen by the system), prints
//   ready pid=<pid> addr=<host:port> lib=ws
// and echoes every message until killed.
'use strict';
const { WebSocketServer } = require('ws');

const deflate = process.argv.includes('--deflate');
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  maxPayload: 1 << 20,
  // Context takeover is ws's default; level 1 matches the Go libraries'
  // default (BestSpeed).
  perMessageDeflate: deflate ? { zlibDeflateOptions: { level: 1 } } : false,
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => ws.terminate());
});
wss.on('listening', () => {
  const a = wss.address();
  process.stdout.write(`ready pid=${process.pid} addr=${a.address}:${a.port} lib=ws\n`);
});
