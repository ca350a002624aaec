/**
 * sluice-cni against a real agent, real namespaces and the real datapath:
 * ADD wires and protects a pod, CHECK sees breakage, DEL removes everything
 * (twice), STATUS follows the agent, and a restarted agent does not stop DEL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { CniNode, podArgs, sh } from './helpers/harness.js';
import { admitEndpoints, endpointEntries, ping } from './helpers/datapath.js';

interface AddResult {
  interfaces: { name: string; mac?: string; mtu?: number; sandbox?: string }[];
  ips: { address: string; gateway?: string; interface?: number }[];
  routes: { dst: string; gw?: string }[];
  dns: Record<string, unknown>;
}

function nsName(path: string): string {
  return path.split('/').pop() ?? '';
}

// The agent in the root netns: the shim's invocations are "not here" and run in the Node plugin (fallback);
// in the node netns, where the plugin runs: the agent runs each one in-process (the shim's fast path).
for (const agentIn of ['root', 'node'] as const) {
test(`ADD wires and protects a pod; CHECK passes, then fails after breakage; DEL cleans up twice (agent in the ${agentIn} netns)`, async () => {
  const node = new CniNode();
  try {
    await node.setUp({ agent: true, agentIn });
    const a = node.addPodNetns('a');
    const b = node.addPodNetns('b');
    const conf = node.conf({ mtu: 1400, dns: { nameservers: ['10.96.0.10'], search: ['default.svc.cluster.local'] } });
    const addA = await node.call({ command: 'ADD', containerId: 'ctr-a', netns: a, ifname: 'eth0', args: podArgs('pod-a') }, conf);
    assert.equal(addA.exitCode, 0, addA.stdout + addA.stderr);
    const addB = await node.call({ command: 'ADD', containerId: 'ctr-b', netns: b, ifname: 'eth0', args: podArgs('pod-b') }, conf);
    assert.equal(addB.exitCode, 0, addB.stdout + addB.stderr);

    // The result: host veth + container interface with sandbox, /32 address via the link-local gateway.
    const ra = addA.json as unknown as AddResult;
    assert.equal(addA.json?.['cniVersion'], '1.1.0');
    assert.equal(ra.interfaces.length, 2);
    assert.match(ra.interfaces[0]?.name ?? '', /^lxc[0-9a-f]{11}$/);
    assert.equal(ra.interfaces[0]?.sandbox, undefined);
    assert.deepEqual({ ...ra.interfaces[1], mac: undefined }, { name: 'eth0', mac: undefined, mtu: 1400, sandbox: a });
    assert.equal(ra.ips.length, 1);
    assert.match(ra.ips[0]?.address ?? '', /^10\.244\.7\.\d+\/32$/);
    assert.equal(ra.ips[0]?.gateway, '169.254.1.1');
    assert.equal(ra.ips[0]?.interface, 1);
    assert.deepEqual(ra.routes, [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }]);
    assert.deepEqual(ra.dns, { nameservers: ['10.96.0.10'], search: ['default.svc.cluster.local'] });
    const ipA = (ra.ips[0]?.address ?? '').split('/')[0] ?? '';
    const ipB = ((addB.json as unknown as AddResult).ips[0]?.address ?? '').split('/')[0] ?? '';
    assert.notEqual(ipA, ipB);

    // Inside the pod: address, MAC, MTU, default route via 169.254.1.1 with a permanent neighbour.
    const addr = JSON.parse(sh('ip', ['-n', nsName(a), '-j', 'addr', 'show', 'dev', 'eth0'])) as Record<string, unknown>[];
    assert.equal(addr[0]?.['mtu'], 1400);
    assert.equal(addr[0]?.['address'], ra.interfaces[1]?.mac);
    assert.deepEqual((addr[0]?.['addr_info'] as { local: string; prefixlen: number }[]).map((x) => `${x.local}/${x.prefixlen}`), [`${ipA}/32`]);
    assert.match(sh('ip', ['-n', nsName(a), 'route', 'show', 'default']), /default via 169\.254\.1\.1 dev eth0/);
    assert.match(sh('ip', ['-n', nsName(a), 'neigh', 'show', '169.254.1.1']), new RegExp(`lladdr ${ra.interfaces[0]?.mac ?? ''} PERMANENT`));

    // Registered with the agent, programs attached: fail closed until the endpoint entries exist.
    const endpoints = await node.agentClient().list();
    assert.deepEqual(endpoints.map((e) => [e.containerId, e.ip, e.hostIfname]).sort(), [
      ['ctr-a', ipA, ra.interfaces[0]?.name], ['ctr-b', ipB, (addB.json as unknown as AddResult).interfaces[0]?.name],
    ].sort());
    assert.equal(ping(a, ipB), false, 'traffic passed before the endpoints had entries');
    admitEndpoints(node.pinRoot, endpoints.map((e) => e.endpointId));
    assert.equal(ping(a, ipB), true, 'no connectivity a → b');
    assert.equal(ping(b, ipA), true, 'no connectivity b → a');

    // CHECK passes right after ADD …
    const check = await node.call({ command: 'CHECK', containerId: 'ctr-a', netns: a, ifname: 'eth0', args: podArgs('pod-a') }, { ...conf, prevResult: addA.json });
    assert.equal(check.exitCode, 0, check.stdout + check.stderr);
    assert.equal(check.stdout, '');
    // … and fails with 103, naming each difference, once the interface is broken.
    sh('ip', ['-n', nsName(a), 'addr', 'flush', 'dev', 'eth0']);
    sh('ip', ['-n', nsName(a), 'link', 'set', 'eth0', 'mtu', '1300']);
    const broken = await node.call({ command: 'CHECK', containerId: 'ctr-a', netns: a, ifname: 'eth0', args: podArgs('pod-a') }, { ...conf, prevResult: addA.json });
    assert.equal(broken.exitCode, 1);
    assert.equal(broken.json?.['code'], 103);
    assert.match(String(broken.json?.['msg']), new RegExp(`lacks address ${ipA.replace(/\./g, '\\.')}/32`));
    assert.match(String(broken.json?.['msg']), /MTU 1300, want 1400/);
    assert.match(String(broken.json?.['msg']), /no default route via 169\.254\.1\.1/);
    // Programs detached: CHECK says traffic is not enforced.
    sh('tc', ['-n', node.nodeNs, 'qdisc', 'del', 'dev', ra.interfaces[0]?.name ?? '', 'clsact']);
    const noProg = await node.call({ command: 'CHECK', containerId: 'ctr-a', netns: a, ifname: 'eth0' }, { ...conf, prevResult: addA.json });
    assert.equal(noProg.json?.['code'], 103);
    assert.match(String(noProg.json?.['msg']), /no program on tc ingress/);

    // DEL removes veth, route, registration and address; a second DEL succeeds; DEL of an unknown container too.
    for (const [id, ns, res] of [['ctr-a', a, addA], ['ctr-b', b, addB]] as const) {
      const del = await node.call({ command: 'DEL', containerId: id, netns: ns, ifname: 'eth0' }, { ...conf, prevResult: res.json });
      assert.equal(del.exitCode, 0, del.stdout + del.stderr);
      assert.equal(del.stdout, '');
    }
    assert.deepEqual(node.hostVeths(), []);
    assert.deepEqual(node.hostRoutes(), []);
    assert.deepEqual([...node.allocations()], []);
    assert.deepEqual(await node.agentClient().list(), []);
    assert.deepEqual((JSON.parse(sh('ip', ['-n', nsName(a), '-j', 'link', 'show'])) as { ifname: string }[]).map((l) => l.ifname), ['lo']);
    const again = await node.call({ command: 'DEL', containerId: 'ctr-a', netns: a, ifname: 'eth0' }, { ...conf, prevResult: addA.json });
    assert.equal(again.exitCode, 0, again.stdout);
    const unknown = await node.call({ command: 'DEL', containerId: 'never-added', ifname: 'eth0' }, conf);
    assert.equal(unknown.exitCode, 0, unknown.stdout);
    // The endpoint entries are the agent's to delete (not wired yet); the programs went with the veth.
    assert.ok(endpointEntries(node.pinRoot).length <= 2);
    // 9 invocations: 2 ADD, 3 CHECK, 4 DEL — each ran where the agent's namespace says.
    const stats = await node.inProcessStats();
    assert.deepEqual(stats, agentIn === 'node'
      ? { done: 9, fallback: { 'not-here': 0, 'not-mine': 0, 'not-in-process': 0 } }
      : { done: 0, fallback: { 'not-here': 9, 'not-mine': 0, 'not-in-process': 0 } });
  } finally {
    await node.tearDown();
  }
});
}

test('DEL succeeds when the netns is already gone', async () => {
  const node = new CniNode();
  try {
    await node.setUp();
    const a = node.addPodNetns('gone');
    const add = await node.call({ command: 'ADD', containerId: 'ctr-gone', netns: a, ifname: 'eth0', args: podArgs('gone') }, node.conf());
    assert.equal(add.exitCode, 0, add.stdout);
    node.removePodNetns(a);
    const del = await node.call({ command: 'DEL', containerId: 'ctr-gone', netns: a, ifname: 'eth0' }, node.conf());
    assert.equal(del.exitCode, 0, del.stdout);
    assert.deepEqual(node.hostVeths(), []);
    assert.deepEqual([...node.allocations()], []);
    assert.deepEqual(await node.agentClient().list(), []);
  } finally {
    await node.tearDown();
  }
});

test('STATUS follows the agent; ADD answers 11 while it is down; a restarted agent lets DEL clean up', async () => {
  const node = new CniNode();
  try {
    await node.setUp();
    const conf = node.conf();
    const ok = await node.call({ command: 'STATUS' }, conf);
    assert.equal(ok.exitCode, 0, ok.stdout);
    assert.equal(ok.stdout, '');

    const a = node.addPodNetns('r');
    const add = await node.call({ command: 'ADD', containerId: 'ctr-r', netns: a, ifname: 'eth0', args: podArgs('r') }, conf);
    assert.equal(add.exitCode, 0, add.stdout);

    await node.stopAgent();
    const down = await node.call({ command: 'STATUS' }, conf);
    assert.equal(down.exitCode, 1);
    assert.equal(down.json?.['code'], 50);
    assert.match(String(down.json?.['msg']), /not reachable at .*agent\.sock/);

    const b = node.addPodNetns('r2');
    const addDown = await node.call({ command: 'ADD', containerId: 'ctr-r2', netns: b, ifname: 'eth0', args: podArgs('r2') }, conf);
    assert.equal(addDown.json?.['code'], 11, addDown.stdout);
    // The failed ADD left nothing behind.
    assert.deepEqual([...node.allocations().values()], ['ctr-r/eth0']);
    assert.equal(node.hostVeths().length, 1);

    // DEL while the agent is down: the veth goes, the address stays (the agent still holds the endpoint): 11, retry.
    const delDown = await node.call({ command: 'DEL', containerId: 'ctr-r', netns: a, ifname: 'eth0' }, { ...conf, prevResult: add.json });
    assert.equal(delDown.json?.['code'], 11, delDown.stdout);
    assert.deepEqual(node.hostVeths(), []);
    assert.deepEqual([...node.allocations().values()], ['ctr-r/eth0']);

    await node.startAgent();
    assert.equal((await node.agentClient().list()).length, 1, 'the restarted agent lost the endpoint');
    const del = await node.call({ command: 'DEL', containerId: 'ctr-r', netns: a, ifname: 'eth0' }, { ...conf, prevResult: add.json });
    assert.equal(del.exitCode, 0, del.stdout);
    assert.deepEqual([...node.allocations()], []);
    assert.deepEqual(await node.agentClient().list(), []);
    const st = await node.call({ command: 'STATUS' }, conf);
    assert.equal(st.exitCode, 0, st.stdout);
  } finally {
    await node.tearDown();
  }
});

test('pod CIDR from the agent\'s Node, results in every supported version', async () => {
  const node = new CniNode('10.244.9.0/28');
  try {
    await node.setUp();
    const versions = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
    for (const [i, v] of versions.entries()) {
      const ns = node.addPodNetns(`v${i}`);
      const add = await node.call({ command: 'ADD', containerId: `ctr-v${i}`, netns: ns, ifname: 'eth0', args: podArgs(`v${i}`) }, node.conf({ cniVersion: v }));
      assert.equal(add.exitCode, 0, add.stdout);
      const r = add.json as unknown as AddResult & { cniVersion: string; ips: { version?: string }[] };
      assert.equal(r.cniVersion, v);
      assert.match(r.ips[0]?.address ?? '', /^10\.244\.9\.([1-9]|1[0-4])\/32$/);
      assert.equal(r.ips[0]?.version, v.startsWith('0.') ? '4' : undefined);
      assert.equal(r.interfaces[1]?.mtu, v === '1.1.0' ? 1500 : undefined);
      if (v !== '0.3.0' && v !== '0.3.1') {
        const check = await node.call({ command: 'CHECK', containerId: `ctr-v${i}`, netns: ns, ifname: 'eth0' }, node.conf({ cniVersion: v, prevResult: add.json }));
        assert.equal(check.exitCode, 0, `${v}: ${check.stdout}`);
      }
    }
    for (const [i, v] of versions.entries()) {
      const del = await node.call({ command: 'DEL', containerId: `ctr-v${i}`, ifname: 'eth0' }, node.conf({ cniVersion: v }));
      assert.equal(del.exitCode, 0, del.stdout);
    }
    assert.deepEqual([...node.allocations()], []);
    assert.deepEqual(node.hostVeths(), []);
  } finally {
    await node.tearDown();
  }
});

test('ADD refuses to take over an interface name that exists in the pod', async () => {
  const node = new CniNode();
  try {
    await node.setUp();
    const ns = node.addPodNetns('taken');
    sh('ip', ['-n', nsName(ns), 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'other0']);
    const add = await node.call({ command: 'ADD', containerId: 'ctr-t', netns: ns, ifname: 'eth0', args: podArgs('t') }, node.conf());
    assert.equal(add.json?.['code'], 102, add.stdout);
    assert.match(String(add.json?.['msg']), /eth0 already exists/);
    assert.deepEqual([...node.allocations()], []);
    assert.deepEqual(await node.agentClient().list(), []);
    assert.equal(spawnSync('ip', ['-n', nsName(ns), 'link', 'show', 'eth0']).status, 0, 'the existing interface was removed');
  } finally {
    await node.tearDown();
  }
});
