/**
 * 50 ADDs at once, then 50 DELs at once, as a runtime starting and stopping
 * a burst of pods would: every pod gets its own address (IPAM without a lock
 * must never hand one out twice), and afterwards nothing is left — no veth,
 * route, allocation or agent endpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CniNode, podArgs } from './helpers/harness.js';

const PODS = 50;

// agent in the root netns: every invocation is a Node plugin process (the shim falls back); in the node
// netns: all 100 run concurrently inside the agent (the shim's fast path), sharing its event loop.
for (const agentIn of ['root', 'node'] as const) {
test(`${PODS} parallel ADDs then ${PODS} parallel DELs: unique addresses, nothing leaked (agent in the ${agentIn} netns)`, async () => {
  const node = new CniNode(agentIn === 'root' ? '10.244.12.0/24' : '10.244.13.0/24');
  try {
    await node.setUp({ agent: true, agentIn });
    const conf = node.conf();
    const pods = Array.from({ length: PODS }, (_, i) => ({ id: `par-${i}`, netns: node.addPodNetns(`q${i}`) }));
    const adds = await Promise.all(pods.map((p) =>
      node.call({ command: 'ADD', containerId: p.id, netns: p.netns, ifname: 'eth0', args: podArgs(p.id) }, conf)));
    const failed = adds.filter((r) => r.exitCode !== 0);
    assert.deepEqual(failed.map((r) => r.stdout), []);
    const ips = adds.map((r) => String((r.json?.['ips'] as { address: string }[])[0]?.address));
    assert.equal(new Set(ips).size, PODS, `duplicate addresses: ${ips.join(' ')}`);
    assert.equal(node.allocations().size, PODS);
    assert.equal(node.hostVeths().length, PODS);
    assert.equal(node.hostRoutes().length, PODS);
    const endpoints = await node.agentClient().list();
    assert.equal(endpoints.length, PODS);
    assert.equal(new Set(endpoints.map((e) => e.endpointId)).size, PODS);
    assert.deepEqual(new Set(endpoints.map((e) => `${e.ip}/32`)), new Set(ips));

    const dels = await Promise.all(pods.map((p, i) =>
      node.call({ command: 'DEL', containerId: p.id, netns: p.netns, ifname: 'eth0' }, { ...conf, prevResult: adds[i]?.json })));
    assert.deepEqual(dels.filter((r) => r.exitCode !== 0).map((r) => r.stdout), []);
    assert.deepEqual([...node.allocations()], []);
    assert.deepEqual(node.hostVeths(), []);
    assert.deepEqual(node.hostRoutes(), []);
    assert.deepEqual(await node.agentClient().list(), []);
    const stats = await node.inProcessStats();
    assert.equal(agentIn === 'node' ? stats.done : stats.fallback['not-here'], 2 * PODS);
    assert.equal(agentIn === 'node' ? stats.fallback['not-here'] : stats.done, 0);
  } finally {
    await node.tearDown();
  }
});
}
