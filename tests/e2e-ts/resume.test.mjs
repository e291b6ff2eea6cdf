// Resumable legacy SSE streams (2025-11-25 "Resumability and Redelivery") through the gateway:
// priming event with `retry`, event ids naming their stream, GET + Last-Event-ID replay, a client
// that disconnects does not cancel its call, and the gateway ending a long call's stream so that
// the client polls. The SDK 1.x client's own reconnection logic is exercised, and raw HTTP for
// what the SDK hides (disconnecting on purpose, replaying twice, bad ids). The gateway runs two
// shards, so a resuming GET often lands on the other shard than the call's (the log is asked for
// over the lane channel); every resume below runs several times to meet both cases.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { closeAll, connectSdk1, textOf } from './clients.mjs';
import { everythingStdio, withGateway } from './harness.mjs';

const TIMEOUT_MS = 120_000;
const LONG = 'everything__trigger-long-running-operation';

/** Parse an SSE body read so far into events ({id, retry, event, data}). */
function parseSse(text) {
  const events = [];
  for (const block of text.split('\n\n').slice(0, -1)) {
    const ev = { data: undefined };
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const [k, v] = i < 0 ? [line, ''] : [line.slice(0, i), line.slice(i + 1).replace(/^ /, '')];
      if (k === 'data') ev.data = ev.data === undefined ? v : `${ev.data}\n${v}`;
      else ev[k] = v;
    }
    if (ev.data !== undefined || ev.id !== undefined) events.push(ev);
  }
  return events;
}

/** Read an SSE response until `stop(events)` is true or the stream ends; then drop the connection. */
async function readSse(res, stop = () => false, { abort } = {}) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let text = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return { events: parseSse(text), ended: true };
    text += dec.decode(value, { stream: true });
    const events = parseSse(text);
    if (stop(events)) {
      abort?.abort();
      await reader.cancel().catch(() => {});
      return { events, ended: false };
    }
  }
}

async function rawSession(url, version = '2025-11-25') {
  const init = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'resume-e2e', version: '0' } } }),
  });
  assert.equal(init.status, 200);
  const sid = init.headers.get('mcp-session-id');
  await init.text();
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': version };
  const ok = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
  assert.equal(ok.status, 202);
  return { sid, headers };
}

function resumeGet(url, s, lastEventId) {
  return fetch(url, { method: 'GET', headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': s.sid, 'MCP-Protocol-Version': '2025-11-25', 'Last-Event-ID': lastEventId } });
}

const isAnswer = (id) => (e) => e.data && JSON.parse(e.data).id === id && 'result' in JSON.parse(e.data);

describe('legacy SSE resumability', () => {
  test('a client that disconnects mid-call resumes it with Last-Event-ID; the call was not cancelled', { timeout: TIMEOUT_MS }, async () => {
    await withGateway({ servers: [everythingStdio('everything')] }, async (gw) => {
      const s = await rawSession(gw.url);
      for (let round = 0; round < 4; round++) {
        const id = 100 + round;
        const abort = new AbortController();
        const post = await fetch(gw.url, {
          method: 'POST',
          headers: s.headers,
          signal: abort.signal,
          body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: LONG, arguments: { duration: 1.2, steps: 3 }, _meta: { progressToken: `p${round}` } } }),
        });
        assert.equal(post.status, 200);
        assert.match(post.headers.get('content-type'), /text\/event-stream/);
        // The first progress message, then the client goes away.
        const first = await readSse(post, (evs) => evs.some((e) => e.data), { abort });
        const [priming, progress] = first.events;
        assert.equal(priming.data, '', 'the stream opens with a priming event');
        assert.ok(priming.id, 'the priming event has an id');
        assert.equal(priming.retry, '1000', 'the priming event carries retry');
        assert.equal(JSON.parse(progress.data).method, 'notifications/progress');
        const stream = priming.id.split('.').slice(0, 2).join('.');
        assert.ok(progress.id.startsWith(`${stream}.`), `event ${progress.id} names the priming event's stream ${stream}`);

        // Resume after the progress message: the rest comes, ending with the answer.
        const got = await readSse(await resumeGet(gw.url, s, progress.id));
        assert.ok(got.ended, 'the resumed stream ends after the answer');
        const answer = got.events.find(isAnswer(id));
        assert.ok(answer, `no answer on the resumed stream: ${JSON.stringify(got.events)}`);
        assert.match(textOf(JSON.parse(answer.data).result), /Long running operation completed/);
        const progresses = got.events.filter((e) => e.data && JSON.parse(e.data).method === 'notifications/progress');
        assert.deepEqual(progresses.map((e) => JSON.parse(e.data).params.progress), [2, 3], 'the progress after the resumption point, once each');
        for (const e of got.events) assert.ok(e.id?.startsWith(`${stream}.`), `replayed event ${e.id} belongs to ${stream}`);
        assert.equal(new Set(got.events.map((e) => e.id)).size, got.events.length, 'event ids are unique');

        // The finished stream stays replayable for a while: from the priming event, everything.
        const again = await readSse(await resumeGet(gw.url, s, priming.id));
        assert.ok(again.ended);
        assert.equal(again.events.filter((e) => e.data).length, 4, JSON.stringify(again.events));
        assert.ok(again.events.find(isAnswer(id)));
      }
    });
  });

  test('an unknown or malformed Last-Event-ID is a 400 (not a 404, which would end the session)', { timeout: TIMEOUT_MS }, async () => {
    await withGateway({ servers: [everythingStdio('everything')] }, async (gw) => {
      const s = await rawSession(gw.url);
      for (const bad of ['1.ffff.0', '2.ffff.3', 'garbage']) {
        const r = await resumeGet(gw.url, s, bad);
        assert.equal(r.status, 400, bad);
        const body = await r.json();
        assert.equal(body.error.code, -32600);
        assert.match(body.error.message, /Last-Event-ID/);
      }
      // Another session's stream is not yours.
      const other = await rawSession(gw.url);
      const get = await fetch(gw.url, { method: 'GET', headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': other.sid, 'MCP-Protocol-Version': '2025-11-25' } });
      const ac = new AbortController();
      const { events } = await readSse(get, (evs) => evs.length > 0, { abort: ac });
      assert.equal(events[0].data, '', 'the GET stream opens with a priming event too');
      const r = await resumeGet(gw.url, s, events[0].id);
      assert.equal(r.status, 400);
      await r.text();
      // The session still works.
      const ping = await fetch(gw.url, { method: 'POST', headers: s.headers, body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' }) });
      assert.equal(ping.status, 200);
    });
  });

  test('a GET stream resumed with Last-Event-ID goes on as a fresh GET stream', { timeout: TIMEOUT_MS }, async () => {
    await withGateway({ servers: [everythingStdio('everything')] }, async (gw) => {
      const s = await rawSession(gw.url);
      const get = () => fetch(gw.url, { method: 'GET', headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': s.sid, 'MCP-Protocol-Version': '2025-11-25' } });
      let ac = new AbortController();
      let { events } = await readSse(await get(), (evs) => evs.length > 0, { abort: ac });
      const seen = new Set([events[0].id.split('.').slice(0, 2).join('.')]);
      for (let round = 0; round < 4; round++) {
        const r = await resumeGet(gw.url, s, events[0].id);
        assert.equal(r.status, 200);
        ac = new AbortController();
        ({ events } = await readSse(r, (evs) => evs.length > 0, { abort: ac }));
        assert.equal(events[0].data, '', 'a fresh GET stream primes again');
        const stream = events[0].id.split('.').slice(0, 2).join('.');
        assert.ok(!seen.has(stream), `stream ${stream} is new`);
        seen.add(stream);
      }
    });
  });

  test('older revisions get event ids but no priming event', { timeout: TIMEOUT_MS }, async () => {
    await withGateway({ servers: [everythingStdio('everything')] }, async (gw) => {
      const s = await rawSession(gw.url, '2025-06-18');
      const post = await fetch(gw.url, {
        method: 'POST',
        headers: { ...s.headers, 'MCP-Protocol-Version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: LONG, arguments: { duration: 0.4, steps: 2 }, _meta: { progressToken: 'p' } } }),
      });
      const { events, ended } = await readSse(post);
      assert.ok(ended);
      assert.ok(events.every((e) => e.data && e.id), JSON.stringify(events));
      assert.equal(events.length, 3);
    });
  });

  test('the SDK 1.x client follows a stream the gateway ends early (polling), progress included', { timeout: TIMEOUT_MS }, async () => {
    const gateway = { resume: { stream_after_ms: 0, poll_after_ms: 150, retry_ms: 100 } };
    await withGateway({ servers: [everythingStdio('everything')], gateway }, async (gw) => {
      const clients = [];
      try {
        clients.push(await connectSdk1(gw.url));
        const [c] = clients;
        for (let round = 0; round < 3; round++) {
          const seen = [];
          const r = await c.callTool(
            { name: LONG, arguments: { duration: 1, steps: 4 } },
            undefined,
            { onprogress: (p) => seen.push(p.progress), timeout: 30_000 },
          );
          assert.match(textOf(r), /Long running operation completed/);
          assert.deepEqual(seen, [1, 2, 3, 4], 'every progress message once, in order');
        }
        // Quick calls still answer normally (here: as a stream, stream_after_ms = 0).
        assert.ok((await c.listTools()).tools.length > 0);
        await sleep(50);
        assert.deepEqual(c.errors.filter((e) => !/SSE stream disconnected|aborted/i.test(String(e))), []);
      } finally {
        await closeAll(clients);
      }
    });
  });
});
