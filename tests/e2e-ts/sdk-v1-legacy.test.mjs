// @modelcontextprotocol/sdk 1.x: a legacy-only client (initialize handshake, Mcp-Session-Id).
// Through the gateway over Streamable HTTP; directly over stdio / Streamable HTTP.

import assert from 'node:assert/strict';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { GATEWAY_CLIENT_CAPS, LEGACY_VERSIONS, REPO } from './harness.mjs';
import { defineSuite } from './suite.mjs';

const INFO = { name: 'switchyard-e2e-ts-sdk1', version: '0.0.0' };

defineSuite({
  label: '@modelcontextprotocol/sdk 1.x (legacy)',
  era: 'legacy',
  callFlavour: 'ts-sdk1',
  async connectGateway(url) {
    const client = new Client(INFO);
    const transport = new StreamableHTTPClientTransport(new URL(url));
    await client.connect(transport);
    assert.ok(transport.sessionId, 'the gateway minted no Mcp-Session-Id for a legacy client');
    assert.ok(LEGACY_VERSIONS.includes(transport.protocolVersion), `negotiated ${transport.protocolVersion}`);
    return client;
  },
  async connectDirect(up, { memoryFile }) {
    const client = new Client(INFO, { capabilities: GATEWAY_CLIENT_CAPS });
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
