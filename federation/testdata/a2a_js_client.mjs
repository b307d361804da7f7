// A2A 1.0 client from @a2a-js/sdk, driven by federation/a2a_js_test.go:
//   node a2a_js_client.mjs BASE_URL TOKEN TRANSPORT MODE TEXT [legacy]
// TRANSPORT is JSONRPC or HTTP+JSON; MODE is send or stream; a sixth
// argument "legacy" turns on legacyCompat (A2A 0.3). It prints
// one JSON line per result or stream event, or "ERROR: ..." and exits 1.
import { ClientFactory, ClientFactoryOptions, DefaultAgentCardResolver, JsonRpcTransportFactory, RestTransportFactory } from '@a2a-js/sdk/client';

const [base, token, transport, mode, text, legacy] = process.argv.slice(2);
const legacyCompat = legacy === 'legacy' ? { enabled: true } : undefined;
const fetchImpl = (url, init = {}) => {
  const headers = new Headers(init.headers || {});
  headers.set('Authorization', 'Bearer ' + token);
  return fetch(url, { ...init, headers });
};
const factory = new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
  transports: [new JsonRpcTransportFactory({ fetchImpl, legacyCompat }), new RestTransportFactory({ fetchImpl, legacyCompat })],
  cardResolver: legacyCompat ? new DefaultAgentCardResolver({ fetchImpl, legacyCompat }) : undefined,
  preferredTransports: [transport],
}));
try {
  const client = await factory.createFromUrl(base);
  const message = { messageId: 'js-' + Date.now() + '-' + Math.random(), contextId: '', taskId: '', role: 1, extensions: [], referenceTaskIds: [], metadata: undefined,
    parts: [{ content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' }] };
  if (mode === 'stream') {
    for await (const ev of client.sendMessageStream({ message })) console.log(JSON.stringify(ev));
  } else {
    console.log(JSON.stringify(await client.sendMessage({ message })));
  }
} catch (e) {
  console.log('ERROR: ' + (e && e.message));
  process.exit(1);
}
