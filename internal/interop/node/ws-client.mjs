// npm ws as a WebSocket client against a wsrpc server (driven by
// internal/interop/ws_test.go).
//
// usage: node ws-client.mjs '<config JSON>'
//   {url, protocols?, headers?, maxPayload?, perMessageDeflate?, echo?,
//    steps?, timeoutMs?}
// perMessageDeflate is passed to ws as is (false, true, or ws's option
// object); it defaults to false so a scenario offers compression only when
// it says so. After the steps the client waits for the connection to close
// and exits 0; it exits 3 on the hard time limit, 2 on a bad config.
import WebSocket from 'ws';
import { attach, emit, hardLimit, runSteps } from './ws-steps.mjs';

let cfg;
try {
  cfg = JSON.parse(process.argv[2]);
} catch (err) {
  emit({ ev: 'step-error', message: `bad config: ${err.message}` });
  process.exit(2);
}
hardLimit(cfg.timeoutMs);

const ws = new WebSocket(cfg.url, cfg.protocols || [], {
  headers: cfg.headers || {},
  maxPayload: cfg.maxPayload || 100 * 1024 * 1024,
  perMessageDeflate: cfg.perMessageDeflate ?? false,
  handshakeTimeout: 10000,
});
// The socket is known once the upgrade response arrives, before 'open'.
const wire = {};
ws.on('upgrade', (res) => {
  wire.socket = res.socket;
  wire.extensions = res.headers['sec-websocket-extensions'] || '';
});
const st = attach(ws, {
  echo: cfg.echo,
  get socket() {
    return wire.socket;
  },
});
ws.on('unexpected-response', (req, res) => {
  emit({ ev: 'error', code: 'UNEXPECTED_RESPONSE', message: `HTTP ${res.statusCode}` });
  process.exit(1);
});
ws.on('open', async () => {
  // ws.extensions lists names only; the header has the parameters.
  emit({ ev: 'open', protocol: ws.protocol, extensions: wire.extensions });
  await runSteps(ws, st, cfg.steps);
  await st.until(() => st.closed);
  // Nothing else is pending: the process exits once the socket is gone.
});
