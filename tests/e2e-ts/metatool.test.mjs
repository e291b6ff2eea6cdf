// Meta-tool mode with both TypeScript client generations: @modelcontextprotocol/client 2.x
// speaking 2026-07-28 and @modelcontextprotocol/sdk 1.x speaking the legacy era, each with the
// demo keys of two roles (config/examples/secured.toml), in front of the built-in demo servers.
//   - tools/list returns the three meta-tools; find_tools then call_tool reaches a real tool;
//   - a role never sees in find_tools what it may not use, and call_tool refuses it;
//   - a tool the upstream adds at run time (notifications/tools/list_changed) is found and
//     callable without a restart, and only by the roles that may use it.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';

import { Client as Client2, StreamableHTTPClientTransport as Transport2 } from '@modelcontextprotocol/client';
import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as Transport1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { LEGACY_VERSIONS, MODERN_VERSION, tmpDir, withGateway } from './harness.mjs';

const TEST_TIMEOUT_MS = 120_000;
const META_TOOLS = ['call_tool', 'find_tools', 'list_categories'];
// Published demo keys (config/examples/secured.toml); the config below holds only their hashes.
const ADMIN = 'sy_8jLUckKg_hju1IJWThpRyczRlNRucxPgHgbwTrwdo';
const READER = 'sy_tgrhVzZ0_W4Un6cuLnaiCYkgG0J5mRvDEQd8ReZDU';

const CONFIG = `[gateway]
listen = "127.0.0.1:1"
shards = 2

[router]
mode = "metatool"

[roles.admin]

# As in secured.toml: no deleting or adding notes, no util tool but echo and word_count.
[roles.reader]
allowed_tools = ["notes/*", "util/echo", "util/word_count"]
blocked_tools = ["notes/delete_*", "notes/add_*"]

[[auth.keys]]
id = "8jLUckKg"
hash = "$argon2id$v=19$m=19456,t=2,p=1$JidYTluzzzJxVhEwyZaI9g$s3doQ0BZWoPR6nbQgcP9L9eWR90wQ2FhMbzsi0ozfK0"
role = "admin"

[[auth.keys]]
id = "tgrhVzZ0"
hash = "$argon2id$v=19$m=19456,t=2,p=1$mT7HwxNbvg9R/kaSjvotYw$HNhMlJuX5ax5JPBPL4JAq1SwIe72VwY+3hCATx/x0y8"
role = "reader"

[[servers]]
name = "util"
command = "\${SWITCHYARD_BIN}"
args = ["demo-server", "util"]

[[servers]]
name = "notes"
command = "\${SWITCHYARD_BIN}"
args = ["demo-server", "notes"]
`;

/** What the reader role may use, by the same globs as its config. */
const readerMay = (name) =>
  ['util__echo', 'util__word_count'].includes(name) ||
  (name.startsWith('notes__') && !name.startsWith('notes__delete_') && !name.startsWith('notes__add_'));

const FLAVOURS = [
  {
    label: '@modelcontextprotocol/client 2.x (2026-07-28)',
    async connect(url, key) {
      const client = new Client2({ name: 'switchyard-e2e-ts-meta2', version: '0.0.0' }, { versionNegotiation: { mode: 'auto' } });
      await client.connect(new Transport2(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${key}` } } }));
      assert.equal(client.getProtocolEra(), 'modern');
      assert.equal(client.getNegotiatedProtocolVersion(), MODERN_VERSION);
      return client;
    },
  },
  {
    label: '@modelcontextprotocol/sdk 1.x (legacy)',
    async connect(url, key) {
      const client = new Client1({ name: 'switchyard-e2e-ts-meta1', version: '0.0.0' });
      const transport = new Transport1(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${key}` } } });
      await client.connect(transport);
      assert.ok(LEGACY_VERSIONS.includes(transport.protocolVersion), `negotiated ${transport.protocolVersion}`);
      return client;
    },
  },
];

/** A fresh gateway in meta-tool mode, and a connected client per role. */
async function withMetaGateway(flavour, fn) {
  const configPath = path.join(tmpDir('switchyard-meta-'), 'metatool.toml');
  fs.writeFileSync(configPath, CONFIG);
  await withGateway({ configPath }, async (gw) => {
    const admin = await flavour.connect(gw.url, ADMIN);
    const reader = await flavour.connect(gw.url, READER);
    try {
      await fn({ gw, admin, reader });
    } finally {
      await reader.close();
      await admin.close();
    }
  });
}

async function findTools(client, query, topK = 5) {
  const r = await client.callTool({ name: 'find_tools', arguments: { query, top_k: topK } });
  assert.ok(!r.isError, JSON.stringify(r));
  return r.structuredContent.tools;
}

/** find_tools until done(names): the catalog and its index are rebuilt off the request path. */
async function findUntil(client, query, done, what) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const tools = await findTools(client, query);
    const names = tools.map((t) => t.name);
    if (done(names)) return tools;
    assert.ok(Date.now() < deadline, `${what} after 10 s: ${JSON.stringify(query)} finds ${JSON.stringify(names)}`);
    await sleep(50);
  }
}

const names = (tools) => tools.map((t) => t.name);

/** call_tool must fail the way a call to a tool that does not exist fails. */
async function assertRefused(client, name, args) {
  await assert.rejects(client.callTool({ name: 'call_tool', arguments: { name, arguments: args } }), (e) => {
    assert.equal(e.code, -32602, String(e));
    assert.match(e.message, /Unknown tool/);
    return true;
  });
}

for (const flavour of FLAVOURS) {
  describe(`${flavour.label}: meta-tool mode`, () => {
    test('tools/list is the meta-tools; find_tools then call_tool reaches a real tool', { timeout: TEST_TIMEOUT_MS }, async () => {
      await withMetaGateway(flavour, async ({ admin, reader }) => {
        for (const client of [admin, reader]) {
          assert.deepEqual(names((await client.listTools()).tools).sort(), META_TOOLS);
        }
        // By intent, not by name; the hit carries the full schema to call it with.
        const found = await findUntil(admin, 'add two numbers together', (n) => n.includes('util__add'), 'util__add not found');
        const add = found.find((t) => t.name === 'util__add');
        assert.deepEqual(add.inputSchema.required, ['a', 'b']);
        const r = await admin.callTool({ name: 'call_tool', arguments: { name: 'util__add', arguments: { a: 2, b: 3 } } });
        assert.deepEqual(r.structuredContent, { sum: 5 });

        const notes = await findTools(admin, 'write down a note titled groceries');
        assert.ok(names(notes).includes('notes__add_note'), JSON.stringify(names(notes)));
        const added = await admin.callTool({
          name: 'call_tool', arguments: { name: 'notes__add_note', arguments: { title: 'groceries', body: 'milk' } },
        });
        assert.ok(!added.isError, JSON.stringify(added));
        const cats = (await admin.callTool({ name: 'list_categories', arguments: {} })).structuredContent.categories;
        assert.deepEqual(cats.map((c) => c.name).sort(), ['notes', 'util']);
      });
    });

    test('a role never finds what it may not use, and call_tool refuses it', { timeout: TEST_TIMEOUT_MS }, async () => {
      await withMetaGateway(flavour, async ({ admin, reader }) => {
        await findUntil(admin, 'delete a note permanently', (n) => n.includes('notes__delete_note'), 'index not built');
        const queries = ['delete a note permanently', 'add two numbers together', 'write down a new note',
          'compute the SHA-256 hash of a text', 'fail on purpose with an error', 'count the words in a text'];
        for (const query of queries) {
          // The admin finds the forbidden tools, so the reader's search would too if it leaked.
          const all = names(await findTools(admin, query, 20));
          assert.ok(all.some((n) => !readerMay(n)), `${query}: admin finds ${JSON.stringify(all)}`);
          const seen = names(await findTools(reader, query, 20));
          for (const n of seen) assert.ok(readerMay(n), `${query}: the reader found ${n} (${JSON.stringify(seen)})`);
        }
        assert.ok(names(await findTools(reader, 'count the words in a text')).includes('util__word_count'));

        await assertRefused(reader, 'notes__delete_note', { id: '1' });
        await assertRefused(reader, 'util__add', { a: 1, b: 2 });
        await assertRefused(reader, 'util__no_such_tool', {});
        const echoed = await reader.callTool({ name: 'call_tool', arguments: { name: 'util__echo', arguments: { message: 'hi' } } });
        assert.deepEqual(echoed.content, [{ type: 'text', text: 'hi' }]);
        const cats = (await reader.callTool({ name: 'list_categories', arguments: {} })).structuredContent.categories;
        assert.deepEqual(Object.fromEntries(cats.map((c) => [c.name, c.tools])), { util: 2, notes: 3 });
      });
    });

    test('a tool the upstream adds at run time is found and called without a restart', { timeout: TEST_TIMEOUT_MS }, async () => {
      const query = 'convert 100 degrees Celsius to Fahrenheit';
      const converter = 'util__convert_temperature';
      await withMetaGateway(flavour, async ({ admin, reader }) => {
        await findUntil(admin, 'turn the converter on', (n) => n.includes('util__toggle_converter'), 'index not built');
        assert.ok(!names(await findTools(admin, query)).includes(converter));
        await assertRefused(admin, converter, { value: 100, from: 'celsius', to: 'fahrenheit' });

        const on = await admin.callTool({ name: 'call_tool', arguments: { name: 'util__toggle_converter', arguments: {} } });
        assert.deepEqual(on.structuredContent, { enabled: true });
        const found = await findUntil(admin, query, (n) => n[0] === converter, `${converter} not found first`);
        assert.deepEqual(Object.keys(found[0].inputSchema.properties).sort(), ['from', 'to', 'value']);
        const r = await admin.callTool({
          name: 'call_tool', arguments: { name: converter, arguments: { value: 100, from: 'celsius', to: 'fahrenheit' } },
        });
        assert.deepEqual(r.structuredContent, { value: 212 });
        // The reader's role does not take in the new tool.
        assert.ok(!names(await findTools(reader, query, 20)).includes(converter));
        await assertRefused(reader, converter, { value: 1, from: 'celsius', to: 'kelvin' });

        await admin.callTool({ name: 'call_tool', arguments: { name: 'util__toggle_converter', arguments: {} } });
        await findUntil(admin, query, (n) => !n.includes(converter), `${converter} still found`);
        await assertRefused(admin, converter, { value: 1, from: 'celsius', to: 'kelvin' });
        assert.deepEqual(names((await admin.listTools()).tools).sort(), META_TOOLS);
      });
    });
  });
}
