// @modelcontextprotocol/client 2.x speaking 2026-07-28 to the gateway.
//
// The 2.x client is legacy by default. versionNegotiation: { mode: 'auto' } makes
// connect() probe server/discover and adopt the modern era on definitive evidence
// (else fall back to initialize); { mode: { pin: '2026-07-28' } } insists on it.
// The direct side stays on the default (legacy): the upstreams are 2025-era servers.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/client/stdio';

import { GATEWAY_CLIENT_CAPS, LEGACY_VERSIONS, MODERN_VERSION, REPO, listAll, standardUpstreams, startEverythingHttp, tmpDir, withGateway } from './harness.mjs';
import { defineSuite } from './suite.mjs';

const INFO = { name: 'switchyard-e2e-ts-client2', version: '0.0.0' };

async function connectGateway(url, mode) {
  const client = new Client(INFO, { versionNegotiation: { mode } });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

defineSuite({
  label: '@modelcontextprotocol/client 2.x (2026-07-28)',
  era: 'modern',
  callFlavour: 'ts-sdk2',
  async connectGateway(url) {
    const client = await connectGateway(url, 'auto');
    assert.equal(client.getProtocolEra(), 'modern', 'server/discover through the gateway did not select the modern era');
    assert.equal(client.getNegotiatedProtocolVersion(), MODERN_VERSION);
    return client;
  },
  async connectDirect(up, { memoryFile }) {
    const client = new Client(INFO, { capabilities: GATEWAY_CLIENT_CAPS }); // legacy (the default)
    if (up.url) {
      await client.connect(new StreamableHTTPClientTransport(new URL(up.url)));
    } else {
      const env = { ...getDefaultEnvironment(), ...up.env };
      if ('MEMORY_FILE_PATH' in env) env.MEMORY_FILE_PATH = memoryFile;
      await client.connect(new StdioClientTransport({
        command: up.command === 'node' ? process.execPath : up.command, args: up.args, env, cwd: REPO, stderr: 'ignore',
      }));
    }
    return client;
  },
});

describe('@modelcontextprotocol/client 2.x: other negotiation modes', () => {
  let http;
  before(async () => { http = await startEverythingHttp(); });
  after(async () => { await http?.stop(); });

  for (const [label, mode, era] of [
    ['pinned 2026-07-28', { pin: MODERN_VERSION }, 'modern'],
    ['legacy (the default)', 'legacy', 'legacy'],
  ]) {
    test(`${label}: lists and calls through the gateway`, { timeout: 120_000 }, async () => {
      const dir = tmpDir();
      await withGateway({ servers: standardUpstreams(http.url, dir) }, async (gw) => {
        const client = await connectGateway(gw.url, mode);
        try {
          assert.equal(client.getProtocolEra(), era);
          if (era === 'legacy') assert.ok(LEGACY_VERSIONS.includes(client.getNegotiatedProtocolVersion()));
          const tools = (await listAll(client, 'tools')).map((t) => t.name);
          for (const name of ['everything__echo', 'memory__read_graph', 'web__echo']) assert.ok(tools.includes(name), name);
          const r = await client.callTool({ name: 'web__echo', arguments: { message: label } });
          assert.deepEqual(r.content, [{ type: 'text', text: `Echo: ${label}` }]);
        } finally {
          await client.close();
        }
      });
    });
  }
});
