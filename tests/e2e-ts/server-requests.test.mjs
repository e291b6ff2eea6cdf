// Server-to-client traffic through the gateway with the official TypeScript SDK 1.x client
// (legacy era): sampling, elicitation and roots requests server-everything raises while it
// serves a tools/call reach the client that made the call and its answers reach the upstream;
// progress and log lines of the call reach it too; cancelling a call frees the client at once.
//
// Both upstream transports: `everything` is server-everything over stdio (the gateway attributes
// a request to the only client with calls in flight), `web` is server-everything in Streamable
// HTTP mode (the request arrives on the call's own SSE stream). Mirrors
// tests/e2e/test_server_requests.py, and adds roots, logging and cancellation.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { afterEverythingStarts, closeAll, connectSdk1, textOf } from './clients.mjs';
import { everythingHttp, everythingStdio, startEverythingHttp, withGateway } from './harness.mjs';

const TIMEOUT_MS = 120_000;
const SAMPLING_CONTEXT = 'Resource trigger-sampling-request context: ';
/** What the client was asked, less roots/list (see afterEverythingStarts: belt and braces). */
const askedBesidesRoots = (client) => client.answers.seen.filter(([m]) => m !== 'roots/list');
/** A 0.3 s long-running operation in 3 steps on `server`: its result and the progress seen. */
async function shortCallWithProgress(client, server) {
  const progress = [];
  const done = await client.callTool(
    { name: `${server}__trigger-long-running-operation`, arguments: { duration: 0.3, steps: 3 } },
    undefined,
    { onprogress: (p) => progress.push([p.progress, p.total]) },
  );
  return { done, progress };
}

/** Call `tool` with a signal and abort at its first progress line: {call, aborted (resolves the abort time)}. */
function cancelAtFirstProgress(client, tool, args) {
  const abort = new AbortController();
  let marked;
  const aborted = new Promise((resolve) => { marked = resolve; });
  const call = client.callTool({ name: tool, arguments: args }, undefined, {
    signal: abort.signal,
    onprogress: () => {
      if (!abort.signal.aborted) { marked(Date.now()); abort.abort(new Error('cancelled by the test')); }
    },
  });
  return { call, aborted };
}

describe('SDK 1.x legacy client: server-to-client requests through the gateway', () => {
  let http;
  before(async () => { http = await startEverythingHttp(); });
  after(async () => { await http?.stop(); });

  const upstreams = () => [everythingStdio('everything'), everythingHttp(http.url, 'web')];
  /** A fresh gateway in front of both upstreams, and one legacy client answering as `who`. */
  const session = (who, fn) => withGateway({ servers: upstreams() }, async (gw) => {
    await afterEverythingStarts();
    const client = await connectSdk1(gw.url, { who });
    try {
      return await fn(client, gw);
    } finally {
      await client.close();
    }
  });

  for (const server of ['everything', 'web']) {
    test(`${server}: sampling and elicitation reach the calling client, its answers the upstream`, { timeout: TIMEOUT_MS }, async () => {
      await session('Ada', async (client) => {
        const tools = (await client.listTools()).tools.map((t) => t.name);
        for (const t of ['trigger-sampling-request', 'trigger-elicitation-request']) {
          assert.ok(tools.includes(`${server}__${t}`), `${server}__${t} not listed: ${tools}`);
        }

        const sampled = await client.callTool({ name: `${server}__trigger-sampling-request`, arguments: { prompt: 'ping', maxTokens: 5 } });
        assert.ok(!sampled.isError, JSON.stringify(sampled));
        assert.ok(textOf(sampled).includes(`Ada sampled <- ${SAMPLING_CONTEXT}ping`), textOf(sampled));
        const [method, asked] = askedBesidesRoots(client).at(-1);
        assert.equal(method, 'sampling/createMessage');
        assert.equal(asked.maxTokens, 5);
        assert.equal(asked.systemPrompt, 'You are a helpful test server.');

        const elicited = await client.callTool({ name: `${server}__trigger-elicitation-request`, arguments: {} });
        assert.ok(!elicited.isError, JSON.stringify(elicited));
        assert.match(textOf(elicited), /- Name: Ada\b/);
        assert.match(textOf(elicited), /- Agreed to terms: true/);
        const [emethod, eparams] = askedBesidesRoots(client).at(-1);
        assert.equal(emethod, 'elicitation/create');
        assert.deepEqual(eparams.requestedSchema.required, ['name']);
        assert.equal(askedBesidesRoots(client).length, 2, JSON.stringify(client.answers.seen.map(([m]) => m)));
      });
    });

    test(`${server}: progress of a long call reaches onprogress, in order`, { timeout: TIMEOUT_MS }, async () => {
      await session('Ada', async (client) => {
        const { done, progress } = await shortCallWithProgress(client, server);
        assert.ok(!done.isError, JSON.stringify(done));
        assert.match(textOf(done), /Long running operation completed/);
        assert.deepEqual(progress, [[1, 3], [2, 3], [3, 3]]);
      });
    });

    test(`${server}: cancelling a long call rejects it promptly and the upstream keeps serving`, { timeout: TIMEOUT_MS }, async () => {
      await session('Ada', async (client) => {
        const started = Date.now();
        const { call, aborted } = cancelAtFirstProgress(client, `${server}__trigger-long-running-operation`, { duration: 10, steps: 10 });
        await assert.rejects(call, /cancelled by the test/);
        const abortedAt = await aborted;
        assert.ok(Date.now() - abortedAt < 2000, `the call took ${Date.now() - abortedAt} ms to reject after abort`);
        assert.ok(Date.now() - started < 8000, 'the call ran to its end instead of being cancelled');

        // The upstream and the session still serve, calls with progress included.
        const echo = await client.callTool({ name: `${server}__echo`, arguments: { message: 'after cancel' } });
        assert.equal(textOf(echo), 'Echo: after cancel');
        const { done, progress } = await shortCallWithProgress(client, server);
        assert.ok(!done.isError, JSON.stringify(done));
        assert.deepEqual(progress, [[1, 3], [2, 3], [3, 3]]);
      });
    });

    test(`${server}: a client's cancellation reaches the upstream`, { timeout: TIMEOUT_MS }, async () => {
      await session('Ada', async (client, gw) => {
        const { call, aborted } = cancelAtFirstProgress(client, `${server}__trigger-long-running-operation`, { duration: 3, steps: 3 });
        await assert.rejects(call, /cancelled by the test/);
        const abortedAt = await aborted;
        // While the upstream would still be running the call had it not been told: over stdio a call
        // still counted in flight makes another client's sampling request ambiguous (refused).
        const other = await connectSdk1(gw.url, { who: 'Grace' });
        try {
          const sampled = await other.callTool({ name: `${server}__trigger-sampling-request`, arguments: { prompt: 'next', maxTokens: 5 } });
          assert.ok(textOf(sampled).includes(`Grace sampled <- ${SAMPLING_CONTEXT}next`), textOf(sampled));
        } finally {
          await other.close();
        }
        assert.ok(Date.now() - abortedAt < 2000, 'too slow to tell: the cancelled call may have ended by itself');
        // server-everything answers no request it was told to cancel (checked directly against it:
        // only the progress lines already under way follow the cancellation).
        await sleep(Math.max(0, abortedAt + 3000 - Date.now()));
        const late = client.errors.filter((e) => /a response for an unknown message ID/.test(String(e)));
        assert.deepEqual(late.map(String), [], 'the upstream finished the cancelled call: it was never told');
      });
    });

    test(`${server}: a client without the sampling capability is refused, not hung`, { timeout: TIMEOUT_MS }, async () => {
      await withGateway({ servers: upstreams() }, async (gw) => {
        const client = await connectSdk1(gw.url);
        try {
          const r = await client.callTool(
            { name: `${server}__trigger-sampling-request`, arguments: { prompt: 'x', maxTokens: 5 } },
            undefined,
            { timeout: 20_000 },
          );
          assert.ok(r.isError, JSON.stringify(r));
          assert.match(textOf(r), /sampling/);
          const echo = await client.callTool({ name: `${server}__echo`, arguments: { message: 'still here' } });
          assert.equal(textOf(echo), 'Echo: still here');
        } finally {
          await client.close();
        }
      });
    });
  }

  // server-everything sends these without naming the call they belong to: over Streamable HTTP
  // they go on the upstream session's standalone GET stream, which the gateway holds; it gives
  // them to the only client with calls in flight, on that client's own GET stream.

  for (const server of ['everything', 'web']) {
    test(`${server}: get-roots-list asks the calling client for its roots`, { timeout: TIMEOUT_MS }, async () => {
      await session('Ada', async (client) => {
        const tools = (await client.listTools()).tools.map((t) => t.name);
        assert.ok(tools.includes(`${server}__get-roots-list`), `${server}__get-roots-list not listed: ${tools}`);
        const r = await client.callTool({ name: `${server}__get-roots-list`, arguments: {} }, undefined, { timeout: 15_000 });
        assert.ok(!r.isError, JSON.stringify(r));
        assert.match(textOf(r), /Current MCP Roots \(1 total\)/);
        assert.ok(textOf(r).includes('URI: file:///home/Ada'), textOf(r));
        assert.ok(client.answers.seen.some(([m]) => m === 'roots/list'));
        // server-everything tells the client it got the roots with a log line
        await client.inbox.waitFor('notifications/message', { pred: (n) => /Roots updated: 1 root/.test(String(n.params.data)) });
      });
    });

    test(`${server}: simulated log lines reach the notification handler`, { timeout: TIMEOUT_MS }, async () => {
      await session('Ada', async (client) => {
        const on = await client.callTool({ name: `${server}__toggle-simulated-logging`, arguments: {} });
        assert.match(textOf(on), /Started simulated, random-leveled logging/);
        try {
          // Over stdio a log line names no request: the gateway gives it to the only client with a
          // call in flight. The first line goes out during the toggle; keep a call open across the
          // next one (every 5 s) so the test does not depend on which of the two wins the race.
          await client.callTool({ name: `${server}__trigger-long-running-operation`, arguments: { duration: 5.5, steps: 1 } });
          const line = await client.inbox.waitFor('notifications/message', { timeoutMs: 2000, pred: (n) => /level[- ]message/i.test(String(n.params.data)) });
          assert.ok(['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'].includes(line.params.level), JSON.stringify(line));
        } finally {
          const off = await client.callTool({ name: `${server}__toggle-simulated-logging`, arguments: {} });
          assert.match(textOf(off), /Stopped simulated logging/);
        }
      });
    });
  }

  test('web: fifty concurrent clients each answer only their own sampling requests', { timeout: 240_000 }, async () => {
    await withGateway({ servers: upstreams() }, async (gw) => {
      const failures = [];
      const clients = [];
      try {
        await Promise.all(Array.from({ length: 50 }, async (_, i) => {
          const tag = `client-${i}`;
          const client = await connectSdk1(gw.url, { who: tag });
          clients.push(client);
          for (let round = 0; round < 3; round++) {
            const r = await client.callTool({ name: 'web__trigger-sampling-request', arguments: { prompt: tag, maxTokens: 5 } });
            const text = textOf(r);
            if (r.isError || !text.includes(`${tag} sampled <- ${SAMPLING_CONTEXT}${tag}"`)) failures.push(`${tag}: ${text.slice(0, 200)}`);
          }
          const asked = askedBesidesRoots(client).map(([, p]) => p.messages[0].content.text);
          if (asked.length !== 3 || asked.some((a) => a !== `${SAMPLING_CONTEXT}${tag}`)) failures.push(`${tag} was asked ${JSON.stringify(asked)}`);
        }));
      } finally {
        await closeAll(clients);
      }
      assert.deepEqual(failures.slice(0, 5), []);
    });
  });
});
