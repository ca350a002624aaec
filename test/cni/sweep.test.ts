/**
 * The agent's endpoint sweep on a real node (src/agent/endpoints/sweep.ts):
 * the real sluice-agent (--datapath bpf, its maps in the test's pin root,
 * sweep.hostNetns = the node namespace the plugin runs in) and the real
 * plugin. A pod namespace deleted without DEL takes its veth with it; the
 * sweep then removes the registration, the endpoint's map entry, the
 * sl_lxc_v1 entry and the address, and nothing of the other pods. An ADD
 * killed after registering is never swept while its netns lives, and only
 * after the grace period once it is gone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatIpv4 } from '../../src/datapath/maps/ipv4.js';
import { dumpLxcInterfaces } from '../../src/datapath/maps/lxc-interfaces.js';
import { openPinnedDatapathMaps } from '../../src/datapath/pinned-maps.js';
import { PATHS, pod } from '../agent/helpers/objects.js';
import { endpointEntries, ping } from './helpers/datapath.js';
import { CniNode, NODE_NAME, podArgs } from './helpers/harness.js';

const INTERVAL_MS = 200;

/** A node whose agent writes the maps and sweeps every INTERVAL_MS with this grace period. */
function sweepingNode(podCIDR: string, graceMs: number): CniNode {
  const node = new CniNode(podCIDR);
  mkdirSync(node.dir, { recursive: true });
  const config = join(node.dir, 'agent.yaml');
  writeFileSync(config, JSON.stringify({
    sweep: { intervalMs: INTERVAL_MS, graceMs, hostNetns: node.netnsPath(node.nodeNs), ipamDataDir: node.ipamDir },
  }));
  node.agentArgs = ['--datapath', 'bpf', '--pin-dir', node.pinRoot, '--config', config, '--log-level', 'info'];
  return node;
}

interface Pod {
  readonly id: string;
  readonly netns: string;
  readonly ip: string;
}

async function addPod(node: CniNode, id: string, env: Record<string, string> = {}): Promise<Pod & { killed: boolean }> {
  node.api.put(PATHS.pods, pod('default', id, { node: NODE_NAME }));
  const netns = node.addPodNetns(id);
  const r = await node.call({ command: 'ADD', containerId: id, netns, ifname: 'eth0', args: podArgs(id), env }, node.conf());
  if (r.signal === 'SIGKILL') return { id, netns, ip: '', killed: true };
  assert.equal(r.exitCode, 0, `${r.stdout}${r.stderr}\n${node.agentOutput()}`);
  const ip = (r.json?.['ips'] as { address: string }[])[0]?.address.split('/')[0] ?? '';
  return { id, netns, ip, killed: false };
}

function lxcRows(node: CniNode): { endpointId: number; ip: string }[] {
  const maps = openPinnedDatapathMaps(node.pinRoot);
  try {
    return dumpLxcInterfaces(maps.interfaces).map((r) => ({ endpointId: r.endpointId, ip: formatIpv4(r.ipv4) }));
  } finally {
    maps.close();
  }
}

async function waitFor(what: string, cond: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The agent's /metrics (its address is in the "agent started" log line). */
async function scrape(node: CniNode): Promise<string> {
  const started = node.agentOutput().split('\n').find((l) => l.includes('"agent started"'));
  const http = (JSON.parse(started ?? '{}') as { http?: string }).http;
  assert.ok(http !== undefined, node.agentOutput());
  return (await fetch(`http://${http}/metrics`)).text();
}

async function registered(node: CniNode): Promise<Map<string, { endpointId: number; ip: string }>> {
  return new Map((await node.agentClient().list()).map((e) => [e.containerId, { endpointId: e.endpointId, ip: e.ip }]));
}

test('a pod netns deleted without DEL: the sweep frees registration, map entries, sl_lxc_v1 entry and address; a later ADD reuses it', async () => {
  // A /30: two addresses, so the later ADD can only succeed with the swept pod's.
  const node = sweepingNode('10.244.21.0/30', 1000);
  try {
    await node.setUp();
    const gone = await addPod(node, 'sw-gone');
    const kept = await addPod(node, 'sw-kept');
    const before = await registered(node);
    const goneId = before.get('sw-gone')?.endpointId ?? -1;
    const keptId = before.get('sw-kept')?.endpointId ?? -1;
    await waitFor('both endpoint entries', () => endpointEntries(node.pinRoot).includes(goneId) && endpointEntries(node.pinRoot).includes(keptId), 5000);
    assert.ok(ping(kept.netns, gone.ip), 'the pods reach each other before');
    assert.equal(lxcRows(node).length, 2);

    node.removePodNetns(gone.netns); // the runtime lost it: no DEL
    await waitFor('the sweep', async () => !(await registered(node)).has('sw-gone'), 10_000);

    assert.deepEqual([...(await registered(node)).keys()], ['sw-kept']);
    assert.deepEqual([...node.allocations()], [[kept.ip, 'sw-kept/eth0']]);
    assert.deepEqual(lxcRows(node), [{ endpointId: keptId, ip: kept.ip }]);
    await waitFor('the swept endpoint\'s map entry to go', () => !endpointEntries(node.pinRoot).includes(goneId), 5000);
    assert.ok(endpointEntries(node.pinRoot).includes(keptId));
    const log = node.agentOutput().split('\n').filter((l) => l.includes('endpoint swept')).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(log.length, 1, node.agentOutput());
    assert.deepEqual([log[0]?.['containerId'], log[0]?.['pod'], log[0]?.['ip']], ['sw-gone', 'default/sw-gone', gone.ip]);
    const metrics = await scrape(node);
    assert.match(metrics, /^sluice_agent_endpoint_sweep_removed_total 1$/m);
    assert.match(metrics, /^sluice_agent_endpoint_sweep_pending 0$/m);

    // The freed address goes to the next pod (the only one left in the /30), which the kept pod reaches.
    const next = await addPod(node, 'sw-next');
    assert.equal(next.ip, gone.ip);
    const nextId = (await registered(node)).get('sw-next')?.endpointId ?? -1;
    await waitFor('the new endpoint entry', () => endpointEntries(node.pinRoot).includes(nextId), 5000);
    assert.ok(ping(kept.netns, next.ip), 'the kept pod reaches the new one');
    assert.ok(ping(next.netns, kept.ip));
    assert.deepEqual(node.hostVeths().length, 2);
  } finally {
    await node.tearDown();
  }
});

test('an ADD killed after registering is not swept while its netns lives, and only after the grace period once it is gone', async () => {
  const graceMs = 2500;
  const node = sweepingNode('10.244.22.0/29', graceMs);
  try {
    await node.setUp();
    const live = await addPod(node, 'sw-live');
    const crashed = await addPod(node, 'sw-crashed', { SLUICE_CNI_TEST_CRASH_AT: 'after-register' });
    assert.equal(crashed.killed, true);
    const ip = [...node.allocations()].find(([, owner]) => owner === 'sw-crashed/eth0')?.[0];
    assert.ok(ip !== undefined);
    assert.ok((await registered(node)).has('sw-crashed'), 'registered, veth not attached, pod end down');

    // Veth and netns alive: an ADD in progress as far as anyone can tell — never swept.
    await new Promise((r) => setTimeout(r, graceMs + 4 * INTERVAL_MS));
    assert.ok((await registered(node)).has('sw-crashed'));
    assert.equal(node.allocations().get(ip), 'sw-crashed/eth0');

    node.removePodNetns(crashed.netns);
    const t0 = Date.now();
    await waitFor('the sweep', async () => !(await registered(node)).has('sw-crashed'), graceMs + 10_000);
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= graceMs, `swept after ${elapsed} ms, within the ${graceMs} ms grace period`);
    assert.equal(node.allocations().get(ip), undefined);
    assert.deepEqual([...(await registered(node)).keys()], ['sw-live']);
    assert.deepEqual([...node.allocations().values()], ['sw-live/eth0']);
    assert.ok(node.agentOutput().includes('sw-crashed/eth0: host veth'), 'the first sighting is logged');
    assert.equal(live.killed, false);
  } finally {
    await node.tearDown();
  }
});
