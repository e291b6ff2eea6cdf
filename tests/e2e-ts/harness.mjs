// Helpers for the TypeScript end-to-end suite (node --test): start the real gateway
// binary and server-everything over HTTP, pair gateway listings with direct ones,
// normalise results. Mirrors tests/e2e/conftest.py + harness.py; the call tables
// are shared with the Python suite in tests/e2e-cases.json.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../ports.mjs';
export { freePort };
import { fileURLToPath } from 'node:url';

export const TESTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = path.resolve(TESTS, '..');
export const NODE_MODULES = path.join(TESTS, 'node_modules');
export const EVERYTHING_JS = path.join(NODE_MODULES, '@modelcontextprotocol/server-everything/dist/index.js');
export const MEMORY_JS = path.join(NODE_MODULES, '@modelcontextprotocol/server-memory/dist/index.js');
export const CASES = JSON.parse(fs.readFileSync(path.join(TESTS, 'e2e-cases.json'), 'utf8'));

export const MODERN_VERSION = '2026-07-28';
export const LEGACY_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26'];
export const META_SERVER = 'switchyard.dev/server';
export const META_NAME = 'switchyard.dev/name';
export const SERVERS = ['everything', 'memory', 'web'];

const HEALTH_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

// kind -> [client method, result key, identifying field, capability]
export const KINDS = {
  tools: ['listTools', 'tools', 'name', 'tools'],
  prompts: ['listPrompts', 'prompts', 'name', 'prompts'],
  resources: ['listResources', 'resources', 'uri', 'resources'],
  resourceTemplates: ['listResourceTemplates', 'resourceTemplates', 'uriTemplate', 'resources'],
};
const RENAMED_KINDS = new Set(['tools', 'prompts']);

/** What the gateway declares to legacy upstreams (it relays these requests to clients that can
 *  take them); a direct client declares the same, so both sides see the same capability-gated tools. */
export const GATEWAY_CLIENT_CAPS = { sampling: {}, elicitation: { form: {}, url: {} }, roots: {} };

export function switchyardBin() {
  const bin = process.env.SWITCHYARD_BIN || path.join(REPO, 'target/release/switchyard');
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    assert.fail(`gateway binary not found at ${bin}: build it (tests/run.sh does) or set SWITCHYARD_BIN`);
  }
  return bin;
}

export function tmpDir(prefix = 'switchyard-e2e-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// ------------------------------------------------------------------ upstreams

export function everythingStdio(name = 'everything') {
  return { name, profile: 'everything', command: 'node', args: [EVERYTHING_JS, 'stdio'], env: {} };
}
export function memoryStdio(memoryFile, name = 'memory') {
  return { name, profile: 'memory', command: 'node', args: [MEMORY_JS], env: { MEMORY_FILE_PATH: memoryFile } };
}
export function everythingHttp(url, name = 'web') {
  return { name, profile: 'everything', url };
}

function tomlValue(v) {
  if (typeof v === 'string') return JSON.stringify(v); // a JSON string is a valid TOML basic string
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  if (v && typeof v === 'object') {
    return `{ ${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)} = ${tomlValue(x)}`).join(', ')} }`;
  }
  throw new TypeError(`cannot write ${v} as TOML`);
}

export function gatewayToml(listen, servers, shards = 2, gateway = {}) {
  const lines = ['[gateway]', `listen = ${tomlValue(listen)}`];
  if (shards != null) lines.push(`shards = ${shards}`);
  for (const [k, v] of Object.entries(gateway)) lines.push(`${k} = ${tomlValue(v)}`);
  for (const s of servers) {
    lines.push('', '[[servers]]');
    const entry = { name: s.name };
    if (s.url) entry.url = s.url;
    else {
      entry.command = s.command;
      entry.args = s.args ?? [];
      if (s.env && Object.keys(s.env).length) entry.env = s.env;
    }
    for (const [k, v] of Object.entries(entry)) lines.push(`${k} = ${tomlValue(v)}`);
  }
  return lines.join('\n') + '\n';
}

async function waitForPort(port, child, log, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) assert.fail(`process exited ${child.exitCode} before listening:\n${log()}`);
    const ok = await new Promise((resolve) => {
      const sock = net.connect({ host: '127.0.0.1', port }, () => { sock.end(); resolve(true); });
      sock.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  assert.fail(`nothing listening on ${port}:\n${log()}`);
}

// Kill whatever is left in the process group we started, and let go of its pipes: an
// orphaned grandchild holding the write end would otherwise keep this test file alive.
function killGroup(child) {
  try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
  child.stdout?.destroy();
  child.stderr?.destroy();
}

/** server-everything in Streamable HTTP mode: `PORT=<port> node dist/index.js streamableHttp`. */
export async function startEverythingHttp() {
  const port = await freePort();
  let out = '';
  const child = spawn(process.execPath, [EVERYTHING_JS, 'streamableHttp'], {
    env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'], detached: true, cwd: REPO,
  });
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  await waitForPort(port, child, () => out);
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGINT');
        await Promise.race([exited, sleep(5000, undefined, { ref: false })]);
      }
      killGroup(child);
    },
  };
}

export const allReady = (h) => (h.upstreams ?? []).length > 0 && h.upstreams.every((u) => u.state === 'ready');
export const noneStarting = (h) =>
  (h.upstreams ?? []).length > 0 && h.upstreams.every((u) => u.state === 'ready' || u.state === 'down');

/**
 * Start the gateway: write a TOML config (unless configPath is given; then --listen
 * overrides its address), run `$SWITCHYARD_BIN run --config FILE`, poll GET /health
 * until `settled` (60 s, then fail with the gateway's stderr).
 */
export async function startGateway({ servers = [], settled = allReady, configPath, shards = 2, env = {}, gateway = {} } = {}) {
  const bin = switchyardBin();
  const dir = tmpDir('switchyard-gw-');
  const port = await freePort();
  const addr = `127.0.0.1:${port}`;
  const args = ['run'];
  if (configPath) {
    args.push('--config', configPath, '--listen', addr);
  } else {
    configPath = path.join(dir, 'switchyard.toml');
    fs.writeFileSync(configPath, gatewayToml(addr, servers, shards, gateway));
    args.push('--config', configPath);
  }
  let stderr = '';
  const child = spawn(bin, args, {
    cwd: REPO,
    // configs that start the built-in demo servers say command = "${SWITCHYARD_BIN}"
    env: { ...process.env, SWITCHYARD_BIN: bin, PATH: `${path.dirname(bin)}${path.delimiter}${process.env.PATH}`, RUST_BACKTRACE: '1', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const gw = {
    addr, port, configPath, child,
    base: `http://${addr}`,
    url: `http://${addr}/mcp`,
    stderr: () => stderr,
    async health() {
      const r = await fetch(`${gw.base}/health`);
      assert.equal(r.status, 200, `GET /health -> ${r.status}`);
      return r.json();
    },
    /** SIGTERM; resolves the exit code, or null when it had to be killed after 10 s. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const res = await Promise.race([exited, sleep(STOP_TIMEOUT_MS, null, { ref: false })]);
        if (res === null) { killGroup(child); return null; }
      }
      killGroup(child);
      const { code } = await exited;
      return code;
    },
  };
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  let last;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      assert.fail(`gateway exited (${child.exitCode ?? child.signalCode}) while starting\nconfig:\n${fs.readFileSync(configPath, 'utf8')}\nstderr:\n${stderr}`);
    }
    try {
      const r = await fetch(`${gw.base}/health`, { signal: AbortSignal.timeout(2000) });
      if (r.status === 200) {
        last = await r.json();
        if (settled(last)) break;
      } else last = `HTTP ${r.status}`;
    } catch (e) {
      last = String(e);
    }
    if (Date.now() > deadline) {
      await gw.stop();
      assert.fail(`gateway not healthy after 60 s; last /health: ${JSON.stringify(last)}\nstderr:\n${stderr}`);
    }
    await sleep(100);
  }
  return gw;
}

/** Run fn(gateway) and then stop it: SIGTERM must end it with exit code 0 within 10 s. */
export async function withGateway(opts, fn) {
  const gw = await startGateway(opts);
  let failed = false;
  try {
    return await fn(gw);
  } catch (e) {
    failed = true;
    throw e;
  } finally {
    const code = await gw.stop();
    if (!failed) {
      assert.equal(code, 0, `gateway ${code === null ? 'did not exit within 10 s of SIGTERM' : `exited ${code} after SIGTERM`}\n${gw.stderr().slice(-4000)}`);
    }
  }
}

export function standardUpstreams(httpUrl, dir) {
  return [everythingStdio('everything'), memoryStdio(path.join(dir, 'gateway-memory.jsonl'), 'memory'), everythingHttp(httpUrl, 'web')];
}

// ------------------------------------------------------------------ listing & pairing

export async function listAll(client, kind) {
  const [method, key, , capability] = KINDS[kind];
  if (!client.getServerCapabilities()?.[capability]) return []; // e.g. server-memory has no prompts
  const out = [];
  let cursor;
  for (let i = 0; i < 1000; i++) {
    const page = await client[method](cursor ? { cursor } : undefined, { cacheMode: 'bypass' });
    out.push(...page[key]);
    cursor = page.nextCursor;
    if (!cursor) return out;
  }
  assert.fail(`${kind}: pagination never ended`);
}

export async function listEverything(client) {
  const out = {};
  for (const kind of Object.keys(KINDS)) out[kind] = await listAll(client, kind);
  return out;
}

/** [server, original id, entry with the gateway's renaming undone] */
export function splitGatewayEntry(kind, entry) {
  const ident = KINDS[kind][2];
  const meta = entry._meta;
  assert.ok(meta && META_SERVER in meta && META_NAME in meta,
    `gateway ${kind} entry ${entry[ident]} lacks _meta["${META_SERVER}"] / _meta["${META_NAME}"]: ${JSON.stringify(entry)}`);
  const restored = structuredClone(entry);
  const { [META_SERVER]: server, [META_NAME]: original, ...rest } = meta;
  if (Object.keys(rest).length) restored._meta = rest;
  else delete restored._meta;
  restored[ident] = original;
  return [server, original, restored];
}

/** original id -> public id for one server's entries of one kind. */
export function publicIds(kind, gatewayEntries, server) {
  const ident = KINDS[kind][2];
  const out = {};
  for (const e of gatewayEntries) {
    const [srv, original] = splitGatewayEntry(kind, e);
    if (srv === server) out[original] = e[ident];
  }
  return out;
}

const canonical = (v) => JSON.stringify(sortKeys(v));
function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  return v;
}

// Entry fields that exist only in the 2025-11-25 schema (tasks, SEP-1686). A gateway that
// serves a 2026-07-28 client may drop them; when it keeps one, it must be unchanged.
const LEGACY_ONLY_FIELDS = { tools: ['execution'] };

/** Assert the gateway's listings are exactly the upstreams' listings, renamed.
 *  era: the gateway connection's era ('legacy' | 'modern'). */
export function compareListings(gateway, direct, era = 'legacy') {
  for (const [kind, [, , ident]] of Object.entries(KINDS)) {
    const got = Object.fromEntries(Object.keys(direct).map((s) => [s, {}]));
    const pub = Object.fromEntries(Object.keys(direct).map((s) => [s, {}]));
    const seen = new Set();
    for (const entry of gateway[kind]) {
      const [server, original, restored] = splitGatewayEntry(kind, entry);
      assert.ok(server in direct, `gateway lists ${kind} ${entry[ident]} from unknown server ${server}`);
      assert.ok(!seen.has(entry[ident]), `gateway lists ${kind} ${entry[ident]} twice`);
      seen.add(entry[ident]);
      assert.ok(!(original in got[server]), `gateway lists ${server}'s ${kind} ${original} twice`);
      got[server][original] = restored;
      pub[server][original] = entry[ident];
    }
    const owners = {};
    for (const [server, listing] of Object.entries(direct)) {
      for (const e of listing[kind]) (owners[e[ident]] ??= new Set()).add(server);
    }
    for (const [server, listing] of Object.entries(direct)) {
      const wanted = Object.fromEntries(listing[kind].map((e) => [e[ident], e]));
      assert.deepEqual(Object.keys(got[server]).sort(), Object.keys(wanted).sort(), `${server} ${kind}: gateway vs direct`);
      for (const [original, want] of Object.entries(wanted)) {
        const p = pub[server][original];
        if (RENAMED_KINDS.has(kind)) assert.equal(p, `${server}__${original}`, `${server} ${kind} ${original}`);
        else if (owners[original].size === 1) assert.equal(p, original, `${server} ${kind} ${original} is unique but was renamed`);
        let expected = want;
        if (era === 'modern') {
          const drop = (LEGACY_ONLY_FIELDS[kind] ?? []).filter((f) => f in want && !(f in got[server][original]));
          expected = Object.fromEntries(Object.entries(want).filter(([k]) => !drop.includes(k)));
        }
        assert.equal(canonical(got[server][original]), canonical(expected), `${server} ${kind} ${original} differs through the gateway`);
      }
    }
  }
}

// ------------------------------------------------------------------ normalisation

// server-everything stamps dynamic resources with toLocaleTimeString(); toggle-* name the
// upstream session (a UUID over HTTP, and the gateway's upstream session is not ours).
const TIME_RE = /\b\d{1,2}:\d{2}:\d{2}(?:\s?[AP]M)?/g;
const SESSION_RE = /(session )[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/g;
// only the 2026-07-28 result envelope carries these (a modern client of the gateway vs a
// legacy connection straight to a 2025-era upstream)
const ENVELOPE_KEYS = ['resultType', 'ttlMs', 'cacheScope'];
const RESERVED_META_PREFIX = 'io.modelcontextprotocol/';

const normText = (s) => s.replace(TIME_RE, '<time>').replace(SESSION_RE, '$1<session>');
function normBlob(s) {
  let text;
  try {
    const buf = Buffer.from(s, 'base64');
    if (buf.toString('base64') !== s) return s;
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    return s;
  }
  TIME_RE.lastIndex = 0;
  return TIME_RE.test(text) ? `<base64 of> ${normText(text)}` : s;
}
function walk(v) {
  if (Array.isArray(v)) return v.map(walk);
  if (v && typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === 'text' && typeof x === 'string') out[k] = normText(x);
      else if (k === 'blob' && typeof x === 'string') out[k] = normBlob(x);
      else out[k] = walk(x);
    }
    return out;
  }
  return v;
}
export function normalizeResult(result) {
  const data = structuredClone(result);
  if (data && typeof data === 'object' && !Array.isArray(data)) {
    for (const k of ENVELOPE_KEYS) delete data[k];
    if (data._meta && typeof data._meta === 'object') {
      const rest = Object.fromEntries(Object.entries(data._meta).filter(([k]) => !k.startsWith(RESERVED_META_PREFIX)));
      if (Object.keys(rest).length) data._meta = rest;
      else delete data._meta;
    }
  }
  return walk(data);
}

/** ['ok', normalised result] or ['error', [code, message]]. */
export async function outcome(promise) {
  try {
    return ['ok', normalizeResult(await promise)];
  } catch (e) {
    if (typeof e?.code === 'number') return ['error', [e.code, e.message]];
    throw e;
  }
}

export function assertSame(what, viaGateway, direct) {
  assert.equal(canonical(viaGateway), canonical(direct), `${what}: through the gateway and directly differ`);
}

// ------------------------------------------------------------------ arguments

export function generateArgs(schema = {}) {
  const props = schema.properties ?? {};
  const args = {};
  for (const name of schema.required ?? []) args[name] = valueFor(props[name] ?? {});
  return args;
}
function valueFor(p) {
  if ('default' in p) return p.default;
  if (p.enum?.length) return p.enum[0];
  if ('const' in p) return p.const;
  let t = p.type;
  if (Array.isArray(t)) t = t.find((x) => x !== 'null') ?? 'string';
  if (t === 'number' || t === 'integer') return Math.max(1, p.minimum ?? 1);
  if (t === 'boolean') return false;
  if (t === 'array') return [];
  if (t === 'object') return generateArgs(p);
  return 'switchyard-e2e';
}

/** [[name, args]...] to call in order, and {name: reason} skipped, for one upstream's tools. */
export function callPlan(profile, tools, { flavour = 'ts-sdk2' } = {}) {
  const cases = CASES[profile];
  const listed = new Map(tools.map((t) => [t.name, t]));
  const skipped = {};
  for (const [n, why] of Object.entries(cases.skip_call)) if (listed.has(n)) skipped[n] = why;
  if (flavour === 'ts-sdk1') for (const [n, why] of Object.entries(cases.skip_call_ts_sdk1)) if (listed.has(n)) skipped[n] = why;
  const plan = cases.calls.filter(([n]) => listed.has(n) && !(n in skipped)).map(([n, a]) => [n, a]);
  const covered = new Set([...plan.map(([n]) => n), ...Object.keys(skipped)]);
  for (const [n, t] of listed) if (!covered.has(n)) plan.push([n, generateArgs(t.inputSchema)]);
  return { plan, skipped };
}

export function expandTemplate(template, values) {
  return template.replace(/\{([A-Za-z0-9_]+)\}/g, (_, n) => values[n]);
}
export function templateInstances(profile, template) {
  const names = [...template.matchAll(/\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]);
  if (!names.length) return [{}];
  const values = CASES[profile].template_values;
  const count = Math.min(...names.map((n) => values[n]?.length ?? 0));
  if (!count) return [Object.fromEntries(names.map((n) => [n, '1']))];
  return Array.from({ length: count }, (_, i) => Object.fromEntries(names.map((n) => [n, values[n][i]])));
}
