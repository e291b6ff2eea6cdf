// The stdio front with @modelcontextprotocol/sdk 1.x: StdioClientTransport launches
// `switchyard stdio --config FILE` (as a desktop client does) in front of server-everything
// (stdio). Lists, echo, progress, overlapping calls and a sampling round trip; the gateway exits
// when the client closes its stdin.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';

import { REPO, everythingStdio, gatewayToml, switchyardBin, tmpDir } from './harness.mjs';

const TEST_TIMEOUT_MS = 120_000;

async function withStdioGateway(fn) {
  const bin = switchyardBin();
  const dir = tmpDir('switchyard-stdio-');
  const config = path.join(dir, 'switchyard.toml');
  // The listen address is ignored in stdio mode: nothing is bound.
  fs.writeFileSync(config, gatewayToml('127.0.0.1:1', [everythingStdio('everything')], null));
  const client = new Client({ name: 'switchyard-e2e-ts-stdio', version: '0.0.0' }, { capabilities: { sampling: {} } });
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => ({
    role: 'assistant',
    content: { type: 'text', text: `sampled-by-ts <- ${req.params.messages[0].content.text}` },
    model: 'switchyard-test-model',
    stopReason: 'endTurn',
  }));
  const transport = new StdioClientTransport({
    command: bin,
    args: ['stdio', '--config', config],
    env: { ...getDefaultEnvironment(), SWITCHYARD_BIN: bin, PATH: `${path.dirname(bin)}${path.delimiter}${process.env.PATH}` },
    cwd: REPO,
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (d) => { stderr += d; });
  await client.connect(transport);
  const pid = transport.pid;
  try {
    return await fn(client, () => stderr);
  } finally {
    await client.close();
    // Closing stdin ends the gateway (and its upstream) promptly, without a signal.
    const deadline = Date.now() + 10_000;
    for (;;) {
      let alive = true;
      try { process.kill(pid, 0); } catch { alive = false; }
      if (!alive) break;
      assert.ok(Date.now() < deadline, `switchyard stdio (pid ${pid}) still running after its stdin closed\n${stderr}`);
      await sleep(50);
    }
  }
}

test('stdio front: lists, echo, progress, overlapping calls', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withStdioGateway(async (client, stderr) => {
    // initialize answered: the gateway's identity, its merged capabilities, list changes announced.
    assert.equal(client.getServerVersion()?.name, 'switchyard', stderr());
    assert.equal(client.getServerCapabilities()?.tools?.listChanged, true);
    assert.match(client.getInstructions() ?? '', /## everything/);
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    assert.ok(names.includes('everything__echo'), names.join(', '));
    assert.ok(names.includes('everything__trigger-sampling-request'), names.join(', '));

    const echo = await client.callTool({ name: 'everything__echo', arguments: { message: 'hello over stdio ✓' } });
    assert.ok(!echo.isError, JSON.stringify(echo));
    assert.match(echo.content[0].text, /hello over stdio ✓/);

    const progress = [];
    const done = await client.callTool(
      { name: 'everything__trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
      undefined,
      { onprogress: (p) => progress.push([p.progress, p.total]) },
    );
    assert.ok(!done.isError, JSON.stringify(done));
    // SDK 1.x runs notification handlers a tick later than responses, so a last progress that
    // shares a read with the result is dropped by the client (straight to server-everything over
    // stdio too: about 4 calls in 5). The first two always arrive, in order.
    assert.deepEqual(progress.slice(0, 2), [[1, 3], [2, 3]]);
    assert.deepEqual(progress.slice(2), progress.length === 3 ? [[3, 3]] : []);

    const many = await Promise.all(
      Array.from({ length: 20 }, (_, i) => client.callTool({ name: 'everything__echo', arguments: { message: `call-${i}` } })),
    );
    many.forEach((r, i) => assert.match(r.content[0].text, new RegExp(`call-${i}\\b`)));
  });
});

test('stdio front: a sampling round trip', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withStdioGateway(async (client) => {
    const r = await client.callTool({ name: 'everything__trigger-sampling-request', arguments: { prompt: 'ping', maxTokens: 5 } });
    assert.ok(!r.isError, JSON.stringify(r));
    assert.match(r.content[0].text, /sampled-by-ts <- /);
  });
});
