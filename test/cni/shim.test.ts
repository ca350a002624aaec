/**
 * The sluice-cni front end (native/cni-shim) and its fallback to the Node
 * plugin (sluice-cni-node beside it): whenever the agent cannot or must not
 * run an invocation, the answer is byte for byte the Node plugin's; once the
 * agent may have started, the shim never runs the plugin a second time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { CniNode, podArgs, type PluginRun } from './helpers/harness.js';

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
