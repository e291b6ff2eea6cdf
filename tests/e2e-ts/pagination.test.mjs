// The gateway's merged lists in pages (gateway.page_size = 3), through both TypeScript SDKs:
// @modelcontextprotocol/sdk 1.x (legacy) and @modelcontextprotocol/client 2.x (2026-07-28).
// Following nextCursor gives the same listings as a whole-list gateway; a cursor the gateway did
// not issue is refused with -32602.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as Http1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as Client2, StreamableHTTPClientTransport as Http2 } from '@modelcontextprotocol/client';

import { KINDS, MODERN_VERSION, everythingStdio, gatewayToml, listAll, tmpDir, withGateway } from './harness.mjs';

const PAGE = 3;
const INFO = { name: 'switchyard-e2e-ts-pages', version: '0.0.0' };

function config(pageSize) {
  const servers = [everythingStdio('everything'), { name: 'util', command: '${SWITCHYARD_BIN}', args: ['demo-server', 'util'] }];
  // --listen replaces the address
  const text = gatewayToml('127.0.0.1:1', servers).replace('[gateway]\n', `[gateway]\npage_size = ${pageSize}\n`);
  const file = path.join(tmpDir(), `gw-${pageSize}.toml`);
  fs.writeFileSync(file, text);
  return file;
}

const CLIENTS = [
  ['sdk 1.x (legacy)', async (url) => {
    const c = new Client1(INFO);
    await c.connect(new Http1(new URL(url)));
    return c;
  }],
  ['client 2.x (2026-07-28)', async (url) => {
    const c = new Client2(INFO, { versionNegotiation: { mode: 'auto' } });
    await c.connect(new Http2(new URL(url)));
    assert.equal(c.getNegotiatedProtocolVersion(), MODERN_VERSION);
    return c;
  }],
];

test('both TypeScript SDKs page through the merged lists', { timeout: 120_000 }, async () => {
  await withGateway({ configPath: config(0) }, async (whole) => {
    await withGateway({ configPath: config(PAGE) }, async (paged) => {
      let cursor;
      for (const [label, connect] of CLIENTS) {
        const a = await connect(whole.url);
        const b = await connect(paged.url);
        try {
          for (const kind of Object.keys(KINDS)) {
            const want = await listAll(a, kind);
            const got = await listAll(b, kind);
            assert.deepEqual(got, want, `${label}: ${kind} paged differs from whole`);
          }
          const wholeTools = (await a.listTools(undefined, { cacheMode: 'bypass' })).tools;
          const first = await b.listTools(undefined, { cacheMode: 'bypass' });
          if (label.startsWith('sdk 1.x')) {
            // 1.x returns the one page it asked for.
            assert.equal(first.tools.length, PAGE, label);
            assert.ok(first.nextCursor, `${label}: no nextCursor on the first page`);
            cursor = first.nextCursor;
          } else {
            // 2.x's listTools() without a cursor walks every page itself.
            assert.deepEqual(first.tools, wholeTools, label);
            assert.equal(first.nextCursor, undefined, label);
            // A cursor from the 1.x client serves it too: both are anonymous, one authorization context.
            const second = await b.listTools({ cursor }, { cacheMode: 'bypass' });
            assert.deepEqual(second.tools, wholeTools.slice(PAGE, 2 * PAGE), label);
          }
          await assert.rejects(
            b.listTools({ cursor: 'eyJwYWdlIjogM30=' }, { cacheMode: 'bypass' }),
            (e) => e.code === -32602 && /Invalid cursor/.test(e.message),
            label,
          );
        } finally {
          await a.close();
          await b.close();
        }
      }
    });
  });
});
