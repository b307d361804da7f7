// An A2A 1.0 echo agent served by @a2a-js/sdk over express, for
// federation/a2ajs_test.go: node a2a_js_server.mjs TOKEN TRANSPORT
// (JSONRPC or HTTP+JSON: the one interface its card lists).
// It listens on 127.0.0.1 (a random port), prints "LISTENING PORT", and
// answers every message with "js echo: TEXT" when the bearer is TOKEN.
import express from 'express';
import { DefaultRequestHandler, InMemoryTaskStore, AgentEvent } from '@a2a-js/sdk/server';
import { jsonRpcHandler, restHandler, agentCardHandler, UserBuilder } from '@a2a-js/sdk/server/express';

const [token, transport] = process.argv.slice(2);
const app = express();
const server = app.listen(0, '127.0.0.1', () => {
  const base = 'http://127.0.0.1:' + server.address().port;
  const card = {
    name: 'js-echo', description: 'echoes', version: '1.0.0',
    supportedInterfaces: [
      { url: base + '/a2a/jsonrpc', protocolBinding: 'JSONRPC', protocolVersion: '1.0', tenant: '' },
      { url: base + '/a2a/rest', protocolBinding: 'HTTP+JSON', protocolVersion: '1.0', tenant: '' },
    ].filter((i) => i.protocolBinding === transport),
    capabilities: { streaming: true, pushNotifications: false, extensions: [] },
    defaultInputModes: ['text/plain'], defaultOutputModes: ['text/plain'],
    skills: [{ id: 'echo', name: 'echo', description: 'echoes text', tags: ['echo'], examples: [], inputModes: [], outputModes: [], securityRequirements: [] }],
    securitySchemes: {}, securityRequirements: [], signatures: [],
  };
  const executor = {
    async execute(ctx, bus) {
      const text = ctx.userMessage.parts.map((p) => (p.content && p.content.$case === 'text' ? p.content.value : '')).join('');
      bus.publish(AgentEvent.message({ messageId: 'js-' + Math.random(), contextId: ctx.contextId, taskId: '', role: 2,
        extensions: [], referenceTaskIds: [], metadata: undefined,
        parts: [{ content: { $case: 'text', value: 'js echo: ' + text }, metadata: undefined, filename: '', mediaType: 'text/plain' }] }));
      bus.finished();
    },
    async cancelTask() {},
  };
  const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), executor);
  app.use('/.well-known/agent-card.json', agentCardHandler({ agentCardProvider: handler }));
  app.use('/a2a', (req, res, next) => {
    if (req.get('Authorization') !== 'Bearer ' + token) return res.status(401).json({ error: 'bad token' });
    next();
  });
  app.use('/a2a/jsonrpc', jsonRpcHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }));
  app.use('/a2a/rest', restHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }));
  console.log('LISTENING ' + server.address().port);
});
