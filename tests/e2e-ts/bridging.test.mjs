// Era bridging with the official TypeScript SDK clients, both ways:
//
// - an SDK 1.x client (legacy, 2025-era) calling a 2026-07-28 upstream's tools that answer
//   InputRequiredResult: the client cannot read that result, so the gateway asks it the embedded
//   requests itself (real elicitation/create, sampling/createMessage, roots/list on the call's SSE
//   stream) and retries upstream with the answers and the echoed requestState. The upstream is the
//   conformance fixture (TypeScript SDK 2.x) over stdio, run with Node 22.
// - a 2.x client pinned to 2026-07-28 calling server-everything (legacy) tools that ask the client
//   mid-call: the gateway holds the upstream call and answers InputRequiredResult with a sealed
//   requestState; the 2.x client fulfils it through its registered handlers and retries by itself,
//   and the retry resumes the held call.
//
// Mirrors tests/e2e/test_bridging.py.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { afterEverythingStarts, closeAll, connectModern, connectSdk1, fixtureStdio, textOf } from './clients.mjs';
import { MODERN_VERSION, everythingHttp, everythingStdio, startEverythingHttp, withGateway } from './harness.mjs';

const TIMEOUT_MS = 120_000;
const SAMPLING_CONTEXT = 'Resource trigger-sampling-request context: ';

/** A fresh gateway in front of the fixture, which it must speak 2026-07-28 to. */
async function withFixtureGateway(fn) {
  return withGateway({ servers: [fixtureStdio('fx')] }, async (gw) => {
    const { upstreams } = await gw.health();
    assert.equal(upstreams[0].era, MODERN_VERSION, JSON.stringify(upstreams));
    return fn(gw);
  });
}

const methodsAsked = (client) => client.answers.seen.map(([m]) => m).sort();
/** The same, less roots/list (see afterEverythingStarts: belt and braces). */
const askedBesidesRoots = (client) => methodsAsked(client).filter((m) => m !== 'roots/list');

describe('SDK 1.x legacy client → 2026-07-28 upstream: InputRequiredResult bridged to real requests', () => {
  test('elicitation, sampling and roots of the fixture\'s tools are asked of the client', { timeout: TIMEOUT_MS }, async () => {
    await withFixtureGateway(async (gw) => {
      const client = await connectSdk1(gw.url, { who: 'Ada' });
      try {
        const call = async (tool) => {
          const r = await client.callTool({ name: `fx__test_input_required_result_${tool}`, arguments: {} });
          assert.ok(!r.isError, `${tool}: ${JSON.stringify(r)}`);
          return textOf(r);
        };
        assert.equal(await call('elicitation'), 'Hello, Ada!');
        assert.deepEqual(methodsAsked(client), ['elicitation/create']);
        assert.equal(client.answers.seen[0][1].message, 'What is your name?');

        assert.equal(await call('sampling'), 'Sampling response: Ada sampled <- What is the capital of France?');
        assert.equal(await call('list_roots'), 'Client exposed 1 root(s): file:///home/Ada');

        // three kinds in one round, under a sealed requestState
        client.answers.seen.length = 0;
        assert.equal(await call('multiple_inputs'), 'Ada sampled <- Generate a greeting Ada — 1 root(s) visible');
        assert.deepEqual(methodsAsked(client), ['elicitation/create', 'roots/list', 'sampling/createMessage']);

        // two rounds: the round number and the first answer live in the server's requestState
        client.answers.seen.length = 0;
        assert.equal(await call('multi_round'), 'Multi-round complete: Ada likes Ada-blue');
        assert.deepEqual(client.answers.seen.map(([, p]) => p.message), ['Step 1: What is your name?', 'Step 2: What is your favorite color?']);

        assert.match(await call('request_state'), /^state-ok/);
      } finally {
        await client.close();
      }
    });
  });

  test('prompts/get that needs input is bridged too', { timeout: TIMEOUT_MS }, async () => {
    await withFixtureGateway(async (gw) => {
      const client = await connectSdk1(gw.url, { who: 'Ada' });
      try {
        // The prompt is listed once the gateway has the fixture's lists (a refresh may follow start).
        for (let i = 0; i < 50; i++) {
          const { prompts } = await client.listPrompts();
          if (prompts.some((p) => p.name === 'fx__test_input_required_result_prompt')) break;
          await new Promise((r) => setTimeout(r, 200));
        }
        const r = await client.getPrompt({ name: 'fx__test_input_required_result_prompt', arguments: {} });
        assert.deepEqual(r.messages.map((m) => m.content.text), ["Use the following context: Ada's context"]);
        assert.deepEqual(methodsAsked(client), ['elicitation/create']);
      } finally {
        await client.close();
      }
    });
  });

  test('a client without the capability gets an error, promptly', { timeout: TIMEOUT_MS }, async () => {
    await withFixtureGateway(async (gw) => {
      const client = await connectSdk1(gw.url, { capabilities: { elicitation: {} } });
      try {
        await assert.rejects(
          client.callTool({ name: 'fx__test_input_required_result_list_roots', arguments: {} }, undefined, { timeout: 20_000 }),
          (e) => e.code !== -32001 && /capabilit/.test(e.message),
        );
        // what it did declare still works
        const r = await client.callTool({ name: 'fx__test_input_required_result_elicitation', arguments: {} });
        assert.equal(textOf(r), 'Hello, nobody!');
      } finally {
        await client.close();
      }
    });
  });

  test('fifty legacy clients bridged at once each answer their own questions', { timeout: 240_000 }, async () => {
    await withFixtureGateway(async (gw) => {
      const failures = [];
      const clients = [];
      try {
        await Promise.all(Array.from({ length: 50 }, async (_, i) => {
          const who = `user${i}`;
          const client = await connectSdk1(gw.url, { who });
          clients.push(client);
          for (let round = 0; round < 2; round++) {
            const r = await client.callTool({ name: 'fx__test_input_required_result_elicitation', arguments: {} });
            if (textOf(r) !== `Hello, ${who}!`) failures.push(`${who}: ${textOf(r).slice(0, 200)}`);
          }
          if (client.answers.seen.length !== 2) failures.push(`${who} was asked ${client.answers.seen.length} times`);
        }));
      } finally {
        await closeAll(clients);
      }
      assert.deepEqual(failures.slice(0, 5), []);
    });
  });
});

describe('2.x client (2026-07-28) → legacy upstream: questions become InputRequiredResult', () => {
  let http;
  before(async () => { http = await startEverythingHttp(); });
  after(async () => { await http?.stop(); });

  const upstreams = () => [everythingStdio('everything'), everythingHttp(http.url, 'web')];
  const inputRequired = (client) => client.received.filter((m) => m.result?.resultType === 'input_required').map((m) => m.result);

  // The gateway holds a legacy server's call over stdio as over Streamable HTTP (src/mcp/hold.rs):
  // over HTTP the question comes on the call's POST stream, which the gateway keeps reading.
  for (const server of ['everything', 'web']) {
    test(`${server}: sampling and elicitation reach the client's handlers, its retry resumes the held call`,
      { timeout: TIMEOUT_MS }, async () => {
        await withGateway({ servers: upstreams() }, async (gw) => {
          await afterEverythingStarts();
          const client = await connectModern(gw.url, { who: 'Grace' });
          try {
            const sampled = await client.callTool({ name: `${server}__trigger-sampling-request`, arguments: { prompt: 'hi', maxTokens: 5 } });
            assert.ok(!sampled.isError, JSON.stringify(sampled));
            assert.ok(textOf(sampled).includes(`Grace sampled <- ${SAMPLING_CONTEXT}hi`), textOf(sampled));
            const [method, asked] = client.answers.seen.find(([m]) => m !== 'roots/list');
            assert.equal(method, 'sampling/createMessage');
            assert.equal(asked.maxTokens, 5);

            const elicited = await client.callTool({ name: `${server}__trigger-elicitation-request`, arguments: {} });
            assert.ok(!elicited.isError, JSON.stringify(elicited));
            assert.match(textOf(elicited), /- Name: Grace\b/);
            assert.deepEqual(askedBesidesRoots(client), ['elicitation/create', 'sampling/createMessage']);

            // each question came as an InputRequiredResult whose requestState the gateway sealed
            const rounds = inputRequired(client);
            assert.equal(rounds.length, client.answers.seen.length, JSON.stringify(rounds));
            for (const r of rounds) assert.match(r.requestState, /^sy1\./);
          } finally {
            await client.close();
          }
        });
      });
  }

  for (const server of ['everything', 'web']) {
    test(`${server}: get-roots-list asks the client's roots handler`, { timeout: TIMEOUT_MS }, async () => {
      await withGateway({ servers: upstreams() }, async (gw) => {
        await afterEverythingStarts();
        const client = await connectModern(gw.url, { who: 'Grace' });
        try {
          const r = await client.callTool({ name: `${server}__get-roots-list`, arguments: {} });
          assert.ok(!r.isError, JSON.stringify(r));
          assert.match(textOf(r), /Current MCP Roots \(1 total\)/);
          assert.ok(textOf(r).includes('URI: file:///home/Grace'), textOf(r));
          assert.ok(methodsAsked(client).length >= 1 && methodsAsked(client).every((m) => m === 'roots/list'), JSON.stringify(methodsAsked(client)));
        } finally {
          await client.close();
        }
      });
    });

    // A question the client cannot answer is not held: the server gets the error a client without
    // that capability gives (-32601), and the call goes on. Over stdio, server-everything's own
    // session-level roots/list (350 ms after initialized) lands on whatever call is in flight, and
    // must not fail it. Over Streamable HTTP a roots/list on the session's GET stream goes to the
    // held call in flight the same way.
    test(`${server}: a client without the capability: the server is told which, the call still completes`, { timeout: TIMEOUT_MS }, async () => {
      await withGateway({ servers: upstreams() }, async (gw) => {
        await afterEverythingStarts();
        const client = await connectModern(gw.url, { capabilities: { elicitation: {} } });
        try {
          const sampled = await client.callTool({ name: `${server}__trigger-sampling-request`, arguments: { prompt: 'hi', maxTokens: 5 } }, { timeout: 20_000 });
          assert.ok(sampled.isError, JSON.stringify(sampled));
          assert.match(textOf(sampled), /no sampling capability/);
          const roots = await client.callTool({ name: `${server}__get-roots-list`, arguments: {} }, { timeout: 20_000 });
          assert.ok(!roots.isError, JSON.stringify(roots));
          assert.match(textOf(roots), /no roots are currently configured/);
          assert.equal(inputRequired(client).length, 0, JSON.stringify(inputRequired(client)));
          const r = await client.callTool({ name: `${server}__echo`, arguments: { message: 'still here' } });
          assert.equal(textOf(r), 'Echo: still here');
        } finally {
          await client.close();
        }
      });
    });
  }

  test('fx: a 2026-07-28 upstream\'s InputRequiredResult passes through, sealed, and the client\'s retries complete it', { timeout: TIMEOUT_MS }, async () => {
    await withFixtureGateway(async (gw) => {
      const client = await connectModern(gw.url, { who: 'Grace' });
      try {
        const r = await client.callTool({ name: 'fx__test_input_required_result_request_state', arguments: {} });
        assert.match(textOf(r), /^state-ok/);
        const m = await client.callTool({ name: 'fx__test_input_required_result_multi_round', arguments: {} });
        assert.equal(textOf(m), 'Multi-round complete: Grace likes Grace-blue');
        const rounds = inputRequired(client);
        assert.equal(rounds.length, 3, JSON.stringify(rounds));
        for (const x of rounds) assert.match(x.requestState, /^sy1\./, 'the upstream\'s requestState reached the client unsealed');
      } finally {
        await client.close();
      }
    });
  });
});
