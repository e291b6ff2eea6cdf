// Notifications on a legacy session's standing GET stream, with the official TypeScript SDK 1.x
// client: list changes an upstream announces reach every client, and resource updates reach the
// clients subscribed to that resource, and only them. Mirrors tests/e2e/test_notifications.py.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { closeAll, connectSdk1, fixtureStdio, textOf } from './clients.mjs';
import { META_SERVER, everythingHttp, everythingStdio, startEverythingHttp, withGateway } from './harness.mjs';

const TIMEOUT_MS = 120_000;
// The SDK 1.x transport opens its GET stream on its own after `initialized`; give it a moment.
const GET_STREAM_OPEN_MS = 500;

describe('SDK 1.x legacy clients: notifications on the GET stream', () => {
  let http;
  before(async () => { http = await startEverythingHttp(); });
  after(async () => { await http?.stop(); });

  test('list changes of a 2026-07-28 upstream reach every client', { timeout: TIMEOUT_MS }, async () => {
    await withGateway({ servers: [fixtureStdio('fx'), everythingStdio('everything')] }, async (gw) => {
      const clients = [];
      try {
        for (const who of ['Ada', 'Grace']) clients.push(await connectSdk1(gw.url, { who }));
        const [a, b] = clients;
        for (const c of clients) await c.listTools();
        await sleep(GET_STREAM_OPEN_MS);

        const r = await a.callTool({ name: 'fx__test_trigger_tool_change', arguments: {} });
        assert.ok(!r.isError, JSON.stringify(r));
        await a.inbox.waitFor('notifications/tools/list_changed');
        await b.inbox.waitFor('notifications/tools/list_changed');

        const p = await b.callTool({ name: 'fx__test_trigger_prompt_change', arguments: {} });
        assert.ok(!p.isError, JSON.stringify(p));
        await a.inbox.waitFor('notifications/prompts/list_changed');
        await b.inbox.waitFor('notifications/prompts/list_changed');
        // the lists still read after the change
        assert.ok((await b.listTools()).tools.some((t) => t.name === 'fx__test_trigger_tool_change'));
      } finally {
        await closeAll(clients);
      }
    });
  });

  // server-everything (1.x SDK) sends resources/updated without naming a request: over Streamable
  // HTTP that goes on the upstream session's standalone GET stream, which the gateway holds.
  for (const [server, servers, extra] of [
    ['everything', () => [fixtureStdio('fx'), everythingStdio('everything')], {}],
    ['web', () => [everythingHttp(http.url, 'web')], {}],
  ]) {
    test(`${server}: resource updates reach the subscriber only`, { timeout: TIMEOUT_MS, ...extra }, async () => {
      await withGateway({ servers: servers() }, async (gw) => {
        const clients = [];
        try {
          for (const who of ['Ada', 'Grace']) clients.push(await connectSdk1(gw.url, { who }));
          const [sub, other] = clients;
          const resources = (await sub.listResources()).resources;
          const uri = resources.find((r) => r._meta?.[META_SERVER] === server)?.uri;
          assert.ok(uri, `no ${server} resource listed: ${JSON.stringify(resources.map((r) => r.uri))}`);
          await other.listTools();
          await sleep(GET_STREAM_OPEN_MS);

          await sub.subscribeResource({ uri });
          const on = await sub.callTool({ name: `${server}__toggle-subscriber-updates`, arguments: {} });
          assert.match(textOf(on), /Started simulated resource updated notifications/);
          try {
            const updated = await sub.inbox.waitFor('notifications/resources/updated', { timeoutMs: 20_000 });
            assert.equal(updated.params.uri, uri, 'the update names the upstream\'s URI, not the public one');
            await other.listTools();
            assert.equal(other.inbox.find('notifications/resources/updated'), undefined, 'a client that did not subscribe got an update');

            // after unsubscribing, no more updates (the next one would come within 5 s)
            await sub.unsubscribeResource({ uri });
            const before = sub.inbox.items.length;
            await sleep(6000);
            const late = sub.inbox.items.slice(before).filter((n) => n.method === 'notifications/resources/updated');
            assert.deepEqual(late, [], 'updates kept coming after unsubscribing');
          } finally {
            await sub.callTool({ name: `${server}__toggle-subscriber-updates`, arguments: {} });
          }
        } finally {
          await closeAll(clients);
        }
      });
    });
  }
});
