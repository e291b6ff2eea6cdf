// The gateway-vs-direct comparison suite, parameterised by SDK flavour. Each
// *.test.mjs file picks a flavour (which client package, which protocol era) and
// calls defineSuite(). Every test gets a fresh gateway in front of everything
// (stdio), memory (stdio) and web (server-everything over Streamable HTTP).

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  CASES,
  REPO,
  SERVERS,
  assertSame,
  callPlan,
  compareListings,
  expandTemplate,
  listAll,
  listEverything,
  outcome,
  publicIds,
  standardUpstreams,
  startEverythingHttp,
  templateInstances,
  tmpDir,
  withGateway,
} from './harness.mjs';

const TEST_TIMEOUT_MS = 180_000;

/**
 * flavour = {
 *   label, callFlavour ('ts-sdk1' | 'ts-sdk2'), era ('legacy' | 'modern': the gateway connection's),
 *   connectGateway(url) -> connected client (asserting the era it must speak),
 *   connectDirect(upstream, {memoryFile}) -> connected client (legacy; upstreams are 2025-era servers),
 * }
 */
export function defineSuite(flavour) {
  describe(`${flavour.label}: through the gateway vs direct`, () => {
    let http;
    before(async () => { http = await startEverythingHttp(); });
    after(async () => { await http?.stop(); });

    /** fresh gateway + a gateway client + (optionally) a direct client to one upstream */
    async function session(server, fn) {
      const dir = tmpDir();
      const upstreams = standardUpstreams(http.url, dir);
      return withGateway({ servers: upstreams }, async (gw) => {
        const up = upstreams.find((u) => u.name === server);
        const gwClient = await flavour.connectGateway(gw.url);
        let direct;
        try {
          direct = up ? await flavour.connectDirect(up, { memoryFile: path.join(dir, 'direct-memory.jsonl') }) : undefined;
          return await fn({ gw, gwClient, direct, up, upstreams, dir });
        } finally {
          await direct?.close();
          await gwClient.close();
        }
      });
    }

    test('lists match the upstreams\' own lists, renamed', { timeout: TEST_TIMEOUT_MS }, async () => {
      await session(null, async ({ gwClient, upstreams, dir }) => {
        const viaGateway = await listEverything(gwClient);
        const direct = {};
        for (const up of upstreams) {
          const c = await flavour.connectDirect(up, { memoryFile: path.join(dir, 'direct-memory.jsonl') });
          try { direct[up.name] = await listEverything(c); } finally { await c.close(); }
        }
        assert.ok(direct.everything.tools.some((t) => t.name === 'echo'));
        compareListings(viaGateway, direct, flavour.era);
      });
    });

    for (const server of SERVERS) {
      test(`${server}: every tool gives the same result`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
        await session(server, async ({ gwClient, direct, up }) => {
          const cases = CASES[up.profile];
          const directTools = await listAll(direct, 'tools');
          const pub = publicIds('tools', await listAll(gwClient, 'tools'), server);
          assert.deepEqual(Object.keys(pub).sort(), directTools.map((x) => x.name).sort());
          const { plan, skipped } = callPlan(up.profile, directTools, { flavour: flavour.callFlavour });
          assert.ok(plan.length > 0);
          for (const [name, args] of plan) {
            const want = await outcome(direct.callTool({ name, arguments: args }));
            const got = await outcome(gwClient.callTool({ name: pub[name], arguments: args }));
            const what = `${server}: tools/call ${name} ${JSON.stringify(args).slice(0, 200)}`;
            if (name in cases.nondeterministic) {
              // called, not compared (see the reason in e2e-cases.json)
              assert.equal(got[0], 'ok', `${what}: ${JSON.stringify(got)}`);
              assert.ok(!got[1].isError, `${what}: ${JSON.stringify(got)}`);
              continue;
            }
            assertSame(what, got, want);
          }
          for (const [name, why] of Object.entries(skipped)) t.diagnostic(`skipped ${server}__${name}: ${why}`);
        });
      });

      test(`${server}: resources read the same`, { timeout: TEST_TIMEOUT_MS }, async () => {
        await session(server, async ({ gwClient, direct, up }) => {
          const cases = CASES[up.profile];
          if (cases.resource_setup.length) {
            const pubTools = publicIds('tools', await listAll(gwClient, 'tools'), server);
            for (const [name, args] of cases.resource_setup) {
              await direct.callTool({ name, arguments: args });
              await gwClient.callTool({ name: pubTools[name], arguments: args });
            }
          }
          const resources = await listAll(direct, 'resources');
          const templates = await listAll(direct, 'resourceTemplates');
          const pubRes = publicIds('resources', await listAll(gwClient, 'resources'), server);
          const pubTpl = publicIds('resourceTemplates', await listAll(gwClient, 'resourceTemplates'), server);
          let reads = 0;
          for (const r of resources.slice(0, cases.max_static_resources)) {
            const want = await outcome(direct.readResource({ uri: r.uri }));
            assert.equal(want[0], 'ok', JSON.stringify(want));
            assertSame(`${server}: resources/read ${r.uri}`, await outcome(gwClient.readResource({ uri: pubRes[r.uri] })), want);
            reads++;
          }
          for (const tpl of templates) {
            for (const values of templateInstances(up.profile, tpl.uriTemplate)) {
              const uri = expandTemplate(tpl.uriTemplate, values);
              const want = await outcome(direct.readResource({ uri }));
              assert.equal(want[0], 'ok', JSON.stringify(want));
              const got = await outcome(gwClient.readResource({ uri: expandTemplate(pubTpl[tpl.uriTemplate], values) }));
              assertSame(`${server}: resources/read ${uri}`, got, want);
              reads++;
            }
          }
          if (resources.length || templates.length) assert.ok(reads > 0);
        });
      });

      test(`${server}: prompts get the same`, { timeout: TEST_TIMEOUT_MS }, async () => {
        await session(server, async ({ gwClient, direct, up }) => {
          const directPrompts = new Map((await listAll(direct, 'prompts')).map((p) => [p.name, p]));
          const pub = publicIds('prompts', await listAll(gwClient, 'prompts'), server);
          assert.deepEqual(Object.keys(pub).sort(), [...directPrompts.keys()].sort());
          const plan = CASES[up.profile].prompts.filter(([n]) => directPrompts.has(n));
          const covered = new Set(plan.map(([n]) => n));
          for (const [n, p] of directPrompts) {
            if (!covered.has(n)) plan.push([n, Object.fromEntries((p.arguments ?? []).filter((a) => a.required).map((a) => [a.name, '1']))]);
          }
          for (const [name, args] of plan) {
            const want = await outcome(direct.getPrompt({ name, arguments: args }));
            assert.equal(want[0], 'ok', JSON.stringify(want));
            assertSame(`${server}: prompts/get ${name}`, await outcome(gwClient.getPrompt({ name: pub[name], arguments: args })), want);
          }
        });
      });
    }

    for (const server of ['everything', 'web']) {
      test(`${server}: completions are the same`, { timeout: TEST_TIMEOUT_MS }, async () => {
        await session(server, async ({ gwClient, direct, up }) => {
          const pub = {
            prompts: publicIds('prompts', await listAll(gwClient, 'prompts'), server),
            resourceTemplates: publicIds('resourceTemplates', await listAll(gwClient, 'resourceTemplates'), server),
          };
          for (const spec of CASES[up.profile].completions) {
            const params = (ref) => ({ ref, argument: spec.argument, ...(spec.context ? { context: { arguments: spec.context } } : {}) });
            const gwRef = spec.ref.type === 'ref/prompt'
              ? { type: 'ref/prompt', name: pub.prompts[spec.ref.name] }
              : { type: 'ref/resource', uri: pub.resourceTemplates[spec.ref.uri] };
            const want = await outcome(direct.complete(params(spec.ref)));
            assert.ok(want[0] === 'ok' && want[1].completion.values.length > 0, JSON.stringify(want));
            assertSame(`${server}: completion/complete ${JSON.stringify(spec)}`, await outcome(gwClient.complete(params(gwRef))), want);
          }
        });
      });
    }
  });
}

export { REPO };
