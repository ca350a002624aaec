/**
 * The node-shared lxc instance as sluice-cni uses it (src/datapath/lxc-shared.ts):
 * one load per build and node, pinned programs attached by fd, sl_lxc_v1
 * entries per host veth. Real namespaces, real traffic, real agent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { LXC_OBJECT_PATH } from '../../src/datapath/lxc.js';
import { sharedLxcDir } from '../../src/datapath/lxc-shared.js';
import { formatIpv4, parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { dumpLxcInterfaces } from '../../src/datapath/maps/lxc-interfaces.js';
import { readCounter } from '../../src/datapath/maps/metrics.js';
import { openPinnedDatapathMaps } from '../../src/datapath/pinned-maps.js';
import { queryTc } from '../../src/datapath/tc.js';
import { SluiceDirection, SluiceDropReason } from '../../src/datapath/generated/abi.js';
import { admitEndpoints, ping } from './helpers/datapath.js';
import { CniNode, podArgs, type PluginRun } from './helpers/harness.js';

interface Pod {
  readonly id: string;
  readonly netns: string;
  readonly ip: string;
  readonly hostIfname: string;
  readonly add: PluginRun;
}

async function addPod(node: CniNode, id: string, conf: Record<string, unknown>): Promise<Pod> {
  const netns = node.addPodNetns(id);
  const add = await node.call({ command: 'ADD', containerId: id, netns, ifname: 'eth0', args: podArgs(id) }, conf);
  assert.equal(add.exitCode, 0, add.stdout + add.stderr);
  const json = add.json as { ips: { address: string }[]; interfaces: { name: string }[] };
  return { id, netns, ip: json.ips[0]?.address.split('/')[0] ?? '', hostIfname: json.interfaces[0]?.name ?? '', add };
}

/** Program ids on the host veth's two hooks, looked up inside the node namespace. */
function progIds(node: CniNode, pod: Pod): [number | undefined, number | undefined] {
  const ref = { ifname: pod.hostIfname, netns: node.netnsPath(node.nodeNs) };
  return [queryTc(ref, 'ingress')?.progId, queryTc(ref, 'egress')?.progId];
}

function ifindexOf(node: CniNode, ifname: string): number {
  const link = JSON.parse(node.nsExec(['ip', '-j', 'link', 'show', 'dev', ifname])) as { ifindex: number }[];
  return link[0]?.ifindex ?? -1;
}

function interfaceRows(node: CniNode): { ifindex: number; endpointId: number; ip: string }[] {
  const maps = openPinnedDatapathMaps(node.pinRoot);
  try {
    return dumpLxcInterfaces(maps.interfaces).map((r) => ({ ifindex: r.ifindex, endpointId: r.endpointId, ip: formatIpv4(r.ipv4) }));
  } finally {
    maps.close();
  }
}

function programDirs(node: CniNode): string[] {
  return readdirSync(node.pinRoot).filter((n) => n.startsWith('lxc-')).sort();
}

test('shared instance: two pods forward real traffic through one pinned program pair; entries written before up', async () => {
  const node = new CniNode('10.244.21.0/24');
  try {
    await node.setUp();
    const conf = node.conf();
    const a = await addPod(node, 'sh-a', conf);
    const b = await addPod(node, 'sh-b', conf);

    // One program pair, pinned under the object's hash; both pods run it (the second ADD did not load).
    assert.deepEqual(programDirs(node), [sharedLxcDir(node.pinRoot, LXC_OBJECT_PATH).split('/').pop()]);
    const [aFrom, aTo] = progIds(node, a);
    assert.ok(aFrom !== undefined && aTo !== undefined && aFrom !== aTo, `ids ${aFrom} ${aTo}`);
    assert.deepEqual(progIds(node, b), [aFrom, aTo], 'the second ADD attached other programs than the pinned pair');

    // Each host veth's ifindex → the agent's endpoint id and the pod's address.
    const endpoints = await node.agentClient().list();
    const want = [a, b].map((p) => {
      const ep = endpoints.find((e) => e.containerId === p.id);
      assert.ok(ep !== undefined, p.id);
      return { ifindex: ifindexOf(node, p.hostIfname), endpointId: ep.endpointId, ip: p.ip };
    }).sort((x, y) => x.ifindex - y.ifindex);
    assert.deepEqual(interfaceRows(node), want);

    // Fail closed until the agent's endpoint entries exist, then both directions pass.
    assert.equal(ping(a.netns, b.ip), false, 'traffic passed before the endpoints had entries');
    admitEndpoints(node.pinRoot, endpoints.map((e) => e.endpointId));
    assert.equal(ping(a.netns, b.ip), true, 'no connectivity a → b');
    assert.equal(ping(b.netns, a.ip), true, 'no connectivity b → a');

    // CHECK sees the entry; DEL removes the veth and then the entry.
    const check = await node.call({ command: 'CHECK', containerId: a.id, netns: a.netns, ifname: 'eth0', args: podArgs(a.id) }, { ...conf, prevResult: a.add.json });
    assert.equal(check.exitCode, 0, check.stdout);
    const del = await node.call({ command: 'DEL', containerId: a.id, netns: a.netns, ifname: 'eth0', args: podArgs(a.id) }, conf);
    assert.equal(del.exitCode, 0, del.stdout);
    assert.deepEqual(interfaceRows(node).map((r) => r.ip), [b.ip]);
  } finally {
    await node.tearDown();
  }
});

test('shared instance: an interface without an entry drops everything as INTERFACE_UNKNOWN; CHECK says so; GC removes stale entries', async () => {
  const node = new CniNode('10.244.22.0/24');
  try {
    await node.setUp();
    const conf = node.conf();
    const a = await addPod(node, 'un-a', conf);
    const b = await addPod(node, 'un-b', conf);
    admitEndpoints(node.pinRoot, (await node.agentClient().list()).map((e) => e.endpointId));
    assert.equal(ping(a.netns, b.ip), true);

    const aIfindex = ifindexOf(node, a.hostIfname);
    const maps = openPinnedDatapathMaps(node.pinRoot);
    try {
      const before = readCounter(maps.metrics, SluiceDirection.EGRESS, SluiceDropReason.INTERFACE_UNKNOWN).packets;
      assert.ok(maps.interfaces.delete(aIfindex));
      assert.equal(ping(a.netns, b.ip), false, 'a pod whose interface has no entry still sent traffic');
      const after = readCounter(maps.metrics, SluiceDirection.EGRESS, SluiceDropReason.INTERFACE_UNKNOWN).packets;
      assert.ok(after > before, `INTERFACE_UNKNOWN egress drops ${before} → ${after}`);
      // b → a: b's egress is fine, a's ingress (tc egress of a's veth) drops.
      const inBefore = readCounter(maps.metrics, SluiceDirection.INGRESS, SluiceDropReason.INTERFACE_UNKNOWN).packets;
      assert.equal(ping(b.netns, a.ip), false);
      assert.ok(readCounter(maps.metrics, SluiceDirection.INGRESS, SluiceDropReason.INTERFACE_UNKNOWN).packets > inBefore);

      const check = await node.call({ command: 'CHECK', containerId: a.id, netns: a.netns, ifname: 'eth0', args: podArgs(a.id) }, { ...conf, prevResult: a.add.json });
      assert.equal(check.json?.['code'], 103, check.stdout);
      assert.match(String(check.json?.['msg']), new RegExp(`no sl_lxc_v1 entry for ${a.hostIfname}`));

      // A wrong entry is a CHECK failure too.
      maps.interfaces.update(aIfindex, { endpointId: 4242, ipv4: parseIpv4('10.9.9.9') });
      const wrong = await node.call({ command: 'CHECK', containerId: a.id, netns: a.netns, ifname: 'eth0', args: podArgs(a.id) }, { ...conf, prevResult: a.add.json });
      assert.equal(wrong.json?.['code'], 103, wrong.stdout);
      assert.match(String(wrong.json?.['msg']), /to endpoint 4242.*address 10\.9\.9\.9/);

      // Stale entries (interfaces that are gone or not ours) go at GC; the live pods' stay.
      maps.interfaces.delete(aIfindex);
      maps.interfaces.update(999_999, { endpointId: 77, ipv4: parseIpv4('10.244.22.250') });
      maps.interfaces.update(1, { endpointId: 78, ipv4: parseIpv4('10.244.22.251') }); // lo: not one of our veths
    } finally {
      maps.close();
    }
    const gc = await node.call({ command: 'GC' }, { ...conf, 'cni.dev/valid-attachments': [{ containerID: a.id, ifname: 'eth0' }, { containerID: b.id, ifname: 'eth0' }] });
    assert.equal(gc.exitCode, 0, gc.stdout);
    assert.deepEqual(interfaceRows(node).map((r) => r.ifindex), [ifindexOf(node, b.hostIfname)]);
  } finally {
    await node.tearDown();
  }
});

test('shared instance: another build of lxc.o is loaded and pinned apart, never reusing the old pins; GC drops the old pins only', async () => {
  const node = new CniNode('10.244.23.0/24');
  const upgraded = join(node.dir, 'lxc-upgraded.o');
  try {
    await node.setUp();
    const a = await addPod(node, 'up-a', node.conf());
    // Same programs, different bytes: trailing data after the ELF section table changes the hash only.
    copyFileSync(LXC_OBJECT_PATH, upgraded);
    appendFileSync(upgraded, Buffer.from('sluice upgrade test\n'));
    const oldDir = sharedLxcDir(node.pinRoot, LXC_OBJECT_PATH);
    const newDir = sharedLxcDir(node.pinRoot, upgraded);
    assert.notEqual(oldDir, newDir);

    const b = await addPod(node, 'up-b', node.conf({ bpfObject: upgraded }));
    assert.deepEqual(programDirs(node), [oldDir, newDir].map((d) => d.split('/').pop()).sort());
    const [aFrom, aTo] = progIds(node, a);
    const [bFrom, bTo] = progIds(node, b);
    assert.ok(bFrom !== undefined && bTo !== undefined);
    assert.notEqual(bFrom, aFrom, 'the upgraded object reused the old build\'s program');
    assert.notEqual(bTo, aTo);
    // A third pod on the upgraded build reuses its pins.
    const c = await addPod(node, 'up-c', node.conf({ bpfObject: upgraded }));
    assert.deepEqual(progIds(node, c), [bFrom, bTo]);

    // GC under the upgraded build removes the old pins; pod a keeps its attached programs and traffic.
    const gc = await node.call({ command: 'GC' }, { ...node.conf({ bpfObject: upgraded }), 'cni.dev/valid-attachments': ['up-a', 'up-b', 'up-c'].map((id) => ({ containerID: id, ifname: 'eth0' })) });
    assert.equal(gc.exitCode, 0, gc.stdout);
    assert.equal(existsSync(oldDir), false);
    assert.equal(existsSync(newDir), true);
    assert.deepEqual(progIds(node, a), [aFrom, aTo]);
    admitEndpoints(node.pinRoot, (await node.agentClient().list()).map((e) => e.endpointId));
    assert.equal(ping(a.netns, b.ip), true, 'old-build pod → new-build pod');
    assert.equal(ping(c.netns, a.ip), true, 'new-build pod → old-build pod');
  } finally {
    await node.tearDown();
  }
});

test('shared instance: concurrent first ADDs on a fresh node load once into one pin directory and all attach the same pair', async () => {
  const node = new CniNode('10.244.24.0/24');
  try {
    await node.setUp();
    const conf = node.conf();
    const ids = Array.from({ length: 8 }, (_, i) => `race-${i}`);
    const pods = await Promise.all(ids.map((id) => addPod(node, id, conf)));
    assert.equal(programDirs(node).length, 1, programDirs(node).join(', '));
    assert.deepEqual(readdirSync(node.pinRoot).filter((n) => n.startsWith('lxctmp-')), [], 'a loader left its temporary directory');
    const first = progIds(node, pods[0] as Pod);
    for (const p of pods) assert.deepEqual(progIds(node, p), first, p.id);
    assert.equal(interfaceRows(node).length, ids.length);
  } finally {
    await node.tearDown();
  }
});
