/**
 * Crash safety: SIGKILL the plugin at each step of ADD (test hook
 * SLUICE_CNI_TEST_CRASH_AT), then do what a runtime does next — retry the
 * ADD, or DEL — and check that the state converges: one address for the
 * attachment, a working pod after the retry, nothing at all after DEL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPinnedDatapathMaps } from '../../src/datapath/pinned-maps.js';
import { CniNode, podArgs, type CniNode as Node } from './helpers/harness.js';

const STEPS = ['after-ipam', 'after-veth', 'after-register', 'after-attach', 'after-pod'] as const;

async function assertClean(node: Node): Promise<void> {
  assert.deepEqual([...node.allocations()], []);
  assert.deepEqual(node.hostVeths(), []);
  assert.deepEqual(node.hostRoutes(), []);
  assert.deepEqual(await node.agentClient().list(), []);
  // No sl_lxc_v1 entry outlives its veth (a retry that replaced a leftover veth released the old one's).
  const maps = openPinnedDatapathMaps(node.pinRoot);
  try {
    assert.deepEqual([...maps.interfaces.entries()], []);
  } finally {
    maps.close();
  }
}

test('killed mid-ADD at every step: a rerun ADD converges, DEL leaves nothing', async () => {
  const node = new CniNode('10.244.13.0/24');
  try {
    await node.setUp();
    const conf = node.conf();
    for (const step of STEPS) {
      const id = `crash-${step}`;
      const ns = node.addPodNetns(step.replace('after-', 'k'));
      const call = { command: 'ADD', containerId: id, netns: ns, ifname: 'eth0', args: podArgs(id) };
      const killed = await node.call({ ...call, env: { SLUICE_CNI_TEST_CRASH_AT: step } }, conf);
      // nsenter execs the plugin (no fork), so we see its death directly.
      assert.equal(killed.signal, 'SIGKILL', `${step}: ${killed.stdout}${killed.stderr}`);
      assert.equal(killed.stdout, '', `${step}: a killed plugin printed something`);
      assert.equal([...node.allocations().values()].filter((o) => o === `${id}/eth0`).length, 1, `${step}: allocation`);

      // Retry: same address, everything wired, CHECK passes.
      const retry = await node.call(call, conf);
      assert.equal(retry.exitCode, 0, `${step}: ${retry.stdout}`);
      const ip = (retry.json?.['ips'] as { address: string }[])[0]?.address.split('/')[0];
      assert.equal(node.allocations().get(ip ?? ''), `${id}/eth0`, `${step}: the retry took another address`);
      assert.equal([...node.allocations().values()].filter((o) => o === `${id}/eth0`).length, 1);
      const check = await node.call({ ...call, command: 'CHECK' }, { ...conf, prevResult: retry.json });
      assert.equal(check.exitCode, 0, `${step}: ${check.stdout}`);
      const del = await node.call({ ...call, command: 'DEL' }, { ...conf, prevResult: retry.json });
      assert.equal(del.exitCode, 0, `${step}: ${del.stdout}`);
      await assertClean(node);

      // Or no retry: the runtime's DEL after the failed ADD (no prevResult) cleans up.
      const killedAgain = await node.call({ ...call, env: { SLUICE_CNI_TEST_CRASH_AT: step } }, conf);
      assert.equal(killedAgain.signal, 'SIGKILL');
      const delOnly = await node.call({ ...call, command: 'DEL' }, conf);
      assert.equal(delOnly.exitCode, 0, `${step}: ${delOnly.stdout}`);
      await assertClean(node);
    }
  } finally {
    await node.tearDown();
  }
});

test('GC removes attachments the runtime no longer knows, keeps the valid ones', async () => {
  const node = new CniNode('10.244.14.0/24');
  try {
    await node.setUp();
    const conf = node.conf();
    const ids = ['gc-keep', 'gc-stale', 'gc-crashed'];
    for (const id of ids) {
      const ns = node.addPodNetns(id);
      const env = id === 'gc-crashed' ? { SLUICE_CNI_TEST_CRASH_AT: 'after-register' } : {};
      const r = await node.call({ command: 'ADD', containerId: id, netns: ns, ifname: 'eth0', args: podArgs(id), env }, conf);
      if (id === 'gc-crashed') assert.equal(r.signal, 'SIGKILL');
      else assert.equal(r.exitCode, 0, r.stdout);
    }
    assert.equal(node.allocations().size, 3);
    const gc = await node.call({ command: 'GC' }, { ...conf, 'cni.dev/valid-attachments': [{ containerID: 'gc-keep', ifname: 'eth0' }] });
    assert.equal(gc.exitCode, 0, gc.stdout);
    assert.equal(gc.stdout, '');
    assert.deepEqual([...node.allocations().values()], ['gc-keep/eth0']);
    assert.equal(node.hostVeths().length, 1);
    assert.deepEqual((await node.agentClient().list()).map((e) => e.containerId), ['gc-keep']);
    // An absent list is an empty one (libcni omits it when empty): everything goes.
    const all = await node.call({ command: 'GC' }, conf);
    assert.equal(all.exitCode, 0, all.stdout);
    await assertClean(node);
  } finally {
    await node.tearDown();
  }
});
