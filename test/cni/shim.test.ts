/**
 * The sluice-cni front end (native/cni-shim) and its fallback to the Node
 * plugin (sluice-cni-node beside it): whenever the agent cannot or must not
 * run an invocation, the answer is byte for byte the Node plugin's; once the
 * agent may have started, the shim never runs the plugin a second time.
 * VERSION is the shim's own answer (the Node plugin's bytes, compiled in from
 * src/cni/version.ts), and starts no node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { DEFAULTS } from '../../src/cni/config.js';
import { pathIdentity } from '../../src/cni/path-identity.js';
import { SUPPORTED_VERSIONS } from '../../src/cni/version.js';
import { CniNode, must, podArgs, runProcess, type PluginRun } from './helpers/harness.js';

/** The parts of a run a runtime sees. */
function seen(r: PluginRun): { exitCode: number | null; stdout: string } {
  return { exitCode: r.exitCode, stdout: r.stdout };
}

test('agent down: the shim falls back, and ADD answers 11 exactly as the Node plugin, leaving nothing', async () => {
  const node = new CniNode('10.244.21.0/24');
  try {
    await node.setUp({ agent: false });
    const ns = node.addPodNetns('down');
    const call = { command: 'ADD', containerId: 'ctr-down', netns: ns, ifname: 'eth0', args: podArgs('down') };
    const viaShim = await node.call(call, node.conf());
    const viaNode = await node.call(call, node.conf(), 'sluice-cni-node');
    assert.equal(viaShim.json?.['code'], 11, viaShim.stdout + viaShim.stderr);
    assert.deepEqual(seen(viaShim), seen(viaNode));
    const status = await node.call({ command: 'STATUS' }, node.conf());
    assert.equal(status.json?.['code'], 50, status.stdout);
    assert.deepEqual([...node.allocations()], []);
    assert.deepEqual(node.hostVeths(), []);
  } finally {
    await node.tearDown();
  }
});

test('a config the shim cannot read, or a bad agentSocket: the Node plugin\'s error code and message', async () => {
  const node = new CniNode('10.244.22.0/24');
  try {
    await node.setUp({ agent: false });
    const call = { command: 'ADD', containerId: 'ctr-bad', netns: node.addPodNetns('bad'), ifname: 'eth0', args: podArgs('bad') };
    const cases: [string, unknown, number][] = [
      ['agentSocket a number', node.conf({ agentSocket: 42 }), 7],
      ['agentSocket relative', node.conf({ agentSocket: 'agent.sock' }), 7],
      ['agentSocket an object', node.conf({ agentSocket: { path: node.socket } }), 7],
      ['agentSocket with an escape', JSON.stringify(node.conf()).replace(/"agentSocket":"\//, '"agentSocket":"\\/'), 11],
      ['not JSON', '{"cniVersion": "1.1.0",', 6],
      ['empty stdin', '', 6],
    ];
    for (const [what, conf, code] of cases) {
      const viaShim = await node.call(call, conf);
      const viaNode = await node.call(call, conf, 'sluice-cni-node');
      assert.equal(viaShim.json?.['code'], code, `${what}: ${viaShim.stdout}${viaShim.stderr}`);
      assert.deepEqual(seen(viaShim), seen(viaNode), what);
    }
  } finally {
    await node.tearDown();
  }
});

test('agent in the node netns: "not mine" (another socket path) and SLUICE_CNI_IN_PROCESS=0 run the Node plugin', async () => {
  const node = new CniNode('10.244.23.0/24');
  try {
    await node.setUp({ agent: true, agentIn: 'node' });
    // The same agent through a symlink: the config names a socket this agent does not serve as its own.
    const alias = join(node.dir, 'alias.sock');
    symlinkSync(node.socket, alias);
    const mine = await node.call({ command: 'ADD', containerId: 'ctr-1', netns: node.addPodNetns('p1'), ifname: 'eth0', args: podArgs('p1') }, node.conf());
    assert.equal(mine.exitCode, 0, mine.stdout + mine.stderr);
    const notMine = await node.call({ command: 'ADD', containerId: 'ctr-2', netns: node.addPodNetns('p2'), ifname: 'eth0', args: podArgs('p2') }, node.conf({ agentSocket: alias }));
    assert.equal(notMine.exitCode, 0, notMine.stdout + notMine.stderr);
    const forced = await node.call({ command: 'ADD', containerId: 'ctr-3', netns: node.addPodNetns('p3'), ifname: 'eth0', args: podArgs('p3'), env: { SLUICE_CNI_IN_PROCESS: '0' } }, node.conf());
    assert.equal(forced.exitCode, 0, forced.stdout + forced.stderr);
    // One ran in the agent, one was refused as not its own (the Node plugin did it), one never asked.
    assert.deepEqual(await node.inProcessStats(), { done: 1, fallback: { 'not-here': 0, 'not-mine': 1, 'not-in-process': 0 } });
    assert.equal(new Set((await node.agentClient().list()).map((e) => e.ip)).size, 3);
    assert.equal(node.allocations().size, 3);
  } finally {
    await node.tearDown();
  }
});

test('an agent that closes the connection after the request: code 11, and the Node plugin is not run as well', async () => {
  const node = new CniNode('10.244.24.0/24');
  const fake = createServer((c) => {
    connections++;
    c.once('data', () => c.destroy());
  });
  let connections = 0;
  try {
    await node.setUp({ agent: false });
    await new Promise<void>((resolve) => fake.listen(node.socket, resolve));
    const run = await node.call({ command: 'ADD', containerId: 'ctr-cut', netns: node.addPodNetns('cut'), ifname: 'eth0', args: podArgs('cut') }, node.conf());
    assert.equal(run.exitCode, 1);
    assert.equal(run.json?.['code'], 11);
    assert.match(String(run.json?.['msg']), /closed the connection without an answer/);
    // The Node plugin would have connected again (GET /v1/node first).
    assert.equal(connections, 1);
    assert.deepEqual([...node.allocations()], []);
  } finally {
    fake.close();
    await node.tearDown();
  }
});

/**
 * The installed shim copied beside a sluice-cni-node that logs each exec (CNI_COMMAND) to `log` before running
 * the real wrapper: the shim finds its fallback beside itself (/proc/self/exe), so the log lists every Node start.
 */
function spyShim(node: CniNode): { shim: string; log: string } {
  const dir = join(node.dir, 'spy');
  const log = join(dir, 'node-starts.log');
  mkdirSync(dir);
  copyFileSync(join(node.binDir, 'sluice-cni'), join(dir, 'sluice-cni'));
  writeFileSync(join(dir, 'sluice-cni-node'), `#!/bin/sh\necho "$CNI_COMMAND" >> '${log}'\nexec '${join(node.binDir, 'sluice-cni-node')}' "$@"\n`, { mode: 0o755 });
  return { shim: join(dir, 'sluice-cni'), log };
}

test('VERSION: the shim\'s own answer is byte for byte the Node plugin\'s, for any stdin, and starts no node', async () => {
  const node = new CniNode('10.244.25.0/24');
  try {
    await node.setUp({ agent: false });
    const { shim, log } = spyShim(node);
    // The Node plugin ignores stdin for VERSION: valid, missing, unsupported or malformed cniVersion, no JSON at all.
    const stdins: [string, string][] = [
      ...SUPPORTED_VERSIONS.map((v): [string, string] => [`cniVersion ${v}`, JSON.stringify({ cniVersion: v })]),
      ...SUPPORTED_VERSIONS.map((v): [string, string] => [`full config ${v}`, JSON.stringify(node.conf({ cniVersion: v }))]),
      ['no cniVersion', '{}'],
      ['cniVersion 0.2.0 (too old)', '{"cniVersion":"0.2.0"}'],
      ['cniVersion 2.0.0 (too new)', '{"cniVersion":"2.0.0"}'],
      ['cniVersion not a version', '{"cniVersion":"1.1"}'],
      ['cniVersion a number', '{"cniVersion":110}'],
      ['truncated JSON', '{"cniVersion": "1.1.0",'],
      ['not JSON', 'not json'],
      ['a list', '[]'],
      ['null', 'null'],
      ['empty stdin', ''],
      ['over 4 MiB (more than the shim forwards)', JSON.stringify({ cniVersion: '1.1.0', pad: 'x'.repeat(5 << 20) })],
    ];
    const envs: [string, Record<string, string>][] = [
      ['CNI_COMMAND alone', {}],
      ['other CNI_* invalid', { CNI_CONTAINERID: '!', CNI_IFNAME: 'a-name-far-too-long', CNI_ARGS: 'junk', CNI_NETNS: 'relative' }],
    ];
    for (const [envWhat, extra] of envs) {
      for (const [what, stdin] of stdins) {
        const env = { PATH: process.env['PATH'] ?? '', CNI_COMMAND: 'VERSION', ...extra };
        const viaShim = await runProcess(shim, [], env, stdin);
        const viaNode = await runProcess(join(node.binDir, 'sluice-cni-node'), [], env, stdin);
        assert.equal(viaShim.exitCode, 0, `${envWhat}, ${what}: ${viaShim.stdout}${viaShim.stderr}`);
        assert.deepEqual({ ...seen(viaShim), stderr: viaShim.stderr }, { ...seen(viaNode), stderr: viaNode.stderr }, `${envWhat}, ${what}`);
      }
    }
    assert.equal(existsSync(log), false, `the shim started node for VERSION: ${existsSync(log) ? readFileSync(log, 'utf8') : ''}`);
    // The spy sees a Node start: SLUICE_CNI_TIMING=1 wants the Node plugin's timing line on stderr.
    const timed = await runProcess(shim, [], { PATH: process.env['PATH'] ?? '', CNI_COMMAND: 'VERSION', SLUICE_CNI_TIMING: '1' }, '');
    assert.equal(timed.exitCode, 0, timed.stderr);
    assert.match(timed.stderr, /^sluice-cni timing: /);
    assert.equal(readFileSync(log, 'utf8'), 'VERSION\n');
  } finally {
    await node.tearDown();
  }
});

test('an agent that takes the request and never answers: code 11 naming the socket and the bound, no Node plugin', { timeout: 60_000 }, async () => {
  const node = new CniNode('10.244.26.0/24');
  const held: Socket[] = [];
  const fake = createServer((c) => held.push(c)); // reads the request, never writes
  try {
    await node.setUp({ agent: false });
    await new Promise<void>((resolve) => fake.listen(node.socket, resolve));
    // timeoutMs 100: the shim waits 3 × 100 ms + 5 s for the answer.
    const call = { command: 'ADD', containerId: 'ctr-hung', netns: node.addPodNetns('hung'), ifname: 'eth0', args: podArgs('hung') };
    const run = await node.call(call, node.conf({ timeoutMs: 100 }));
    assert.equal(run.exitCode, 1, run.stdout + run.stderr);
    assert.equal(run.json?.['code'], 11, run.stdout);
    assert.equal(run.json?.['cniVersion'], '1.1.0');
    const msg = String(run.json?.['msg']);
    assert.ok(msg.includes(node.socket), msg);
    assert.match(msg, /did not answer within 5300 ms \(3 x timeoutMs 100 \+ 5000 ms\)/);
    assert.match(run.stderr, /error 11: /);
    // The Node plugin would have connected again.
    assert.equal(held.length, 1);
    assert.deepEqual([...node.allocations()], []);
  } finally {
    for (const c of held) c.destroy();
    fake.close();
    await node.tearDown();
  }
});

test('the shim in a mount namespace of its own: the agent runs it when every path the plugin touches leads to the same file, else the Node plugin does ("not here")', async () => {
  const node = new CniNode('10.244.26.0/24');
  try {
    await node.setUp({ agent: true, agentIn: 'node' });
    const netns = node.addPodNetns('m1');
    const other = node.addPodNetns('m2');
    const pod = { containerId: 'ctr-m1', netns, ifname: 'eth0', args: podArgs('m1') };
    // A copy of the node's mounts: the same files (the IPAM dir does not exist yet: its parent is compared).
    const added = must(await node.call({ command: 'ADD', ...pod, mountNs: 'true' }, node.conf()), 'ADD from another mount namespace');
    const checkConf = node.conf({ prevResult: added.json });
    must(await node.call({ command: 'CHECK', ...pod, mountNs: 'true' }, checkConf), 'CHECK from another mount namespace');
    assert.deepEqual(await node.inProcessStats(), { done: 2, fallback: { 'not-here': 0, 'not-mine': 0, 'not-in-process': 0 } });
    // CNI_NETNS leads to another namespace for the shim: the agent must not configure the one it sees.
    const swapped = await node.call({ command: 'CHECK', ...pod, mountNs: `mount --bind ${other} ${netns}` }, checkConf);
    assert.equal(swapped.exitCode, 1, 'the Node plugin checked the namespace the shim sees, which has no eth0');
    assert.match(swapped.stdout, /eth0/);
    // The IPAM dir hidden by another file system for the shim: STATUS (harmless) goes to the Node plugin.
    must(await node.call({ command: 'STATUS', mountNs: `mount -t tmpfs sluice-cni-t ${node.ipamDir}` }, node.conf()), 'STATUS');
    assert.deepEqual(await node.inProcessStats(), { done: 2, fallback: { 'not-here': 2, 'not-mine': 0, 'not-in-process': 0 } });
    must(await node.call({ command: 'DEL', ...pod, mountNs: 'true' }, node.conf()), 'DEL from another mount namespace');
    assert.equal((await node.inProcessStats()).done, 3);
    assert.deepEqual(node.hostVeths(), []);
    assert.deepEqual([...node.allocations()], []);
  } finally {
    await node.tearDown();
  }
});

test('the shim sends the identity of CNI_NETNS, each absolute path of its config and the plugin\'s default paths, as path-identity.ts computes them', async () => {
  const node = new CniNode('10.244.27.0/24');
  let body = '';
  const fake = createServer((c) => {
    let data = '';
    c.on('data', (d: Buffer) => {
      data += d.toString();
      const head = data.indexOf('\r\n\r\n');
      const len = Number(/content-length: (\d+)/i.exec(data)?.[1] ?? -1);
      if (head < 0 || Buffer.byteLength(data) - head - 4 < len) return;
      if (body === '') body = data.slice(head + 4);
      c.end('HTTP/1.1 421 Misdirected Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
  });
  try {
    await node.setUp({ agent: false });
    await new Promise<void>((resolve) => fake.listen(node.socket, resolve));
    const netns = node.addPodNetns('id');
    const missing = join(node.dir, 'not', 'there');
    const conf = node.conf({ bpfObject: missing, dns: { search: ['/escaped\\/path', 'relative/path'] } });
    await node.call({ command: 'STATUS', netns }, conf);
    const sent = (JSON.parse(body) as { paths: Record<string, string> }).paths;
    const expected = [netns, node.socket, node.pinRoot, node.ipamDir, missing, DEFAULTS.agentSocket, DEFAULTS.pinRoot, DEFAULTS.ipamDataDir];
    assert.deepEqual(Object.keys(sent).sort(), [...new Set(expected)].sort());
    for (const p of expected) assert.equal(sent[p], pathIdentity(p), p);
    assert.match(sent[missing] ?? '', /^\d+:\d+\/not\/there$/, 'a missing path: its nearest ancestor and the rest');
  } finally {
    fake.close();
    await node.tearDown();
  }
});
