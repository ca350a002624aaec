/**
 * Host routing in the datapath (bpf/lib/host-routing.h, agent config
 * hostRouting 'bpf', the default), on a two-node cluster lab routed
 * natively: pods a and c on node 1, b on node 2 (round-robin). A DROP rule
 * in a node's FORWARD chain for packets to one podCIDR shows which of them
 * that node's stack forwarded: with host routing on, a → c (same node),
 * b → a arriving from the fabric, and b → a leaving node 2 never reach it;
 * with it off, the stack forwards them and the rule drops them. Real packets,
 * real API server, real agents.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openPinnedMap } from '../../src/datapath/bpf-map.js';
import { CONFIG_LAYOUT, openConfig, readGlobalConfig, setBpfHostRouting } from '../../src/datapath/maps/config.js';
import { LXC_ADDRESSES_LAYOUT, openLxcAddresses } from '../../src/datapath/maps/lxc-addresses.js';
import { LXC_IFACES_LAYOUT, openLxcInterfaces } from '../../src/datapath/maps/lxc-interfaces.js';
import { NODE_ROUTES_LAYOUT, openNodeRoutes } from '../../src/datapath/maps/node-routes.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { SluiceConfigFlags } from '../../src/datapath/generated/abi.js';
import { until } from '../agent/helpers/wait.js';
import { startCluster, type TestCluster } from './cluster-helpers.js';
import { inNetns, ping } from './helpers.js';

let c: TestCluster;
let node1Netns: string;
let node1Pins: string;
let node1PodCidr: string;
let node2Netns: string;

before(async () => {
  c = await startCluster(['a', 'b', 'c'], [], { family: 'hr', cluster: { nodes: 2, routing: 'native' } });
  const n1 = c.lab.nodes[0];
  assert.ok(n1);
  assert.deepEqual(['a', 'b', 'c'].map((p) => c.lab.pod(p).node), [n1.plan.name, c.lab.nodes[1]?.plan.name, n1.plan.name]);
  node1Netns = n1.plan.netns;
  node1Pins = n1.plan.pinRoot;
  node1PodCidr = n1.plan.podCidr;
  node2Netns = c.lab.nodes[1]?.plan.netns ?? '';
});

after(async () => {
  await c?.close();
});

function node2Pins(): string {
  return c.lab.nodes[1]?.plan.pinRoot ?? '';
}

/** Runs body with a node's config map open (node 1's by default). */
function withConfig<T>(body: (m: ReturnType<typeof openConfig>) => T, pins = node1Pins): T {
  const raw = openPinnedMap(join(pins, CONFIG_LAYOUT.name));
  try {
    return body(openConfig(raw));
  } finally {
    raw.close();
  }
}

/** Runs body with a DROP rule first in the FORWARD chain of the node netns, for packets to node 1's pods (replies to node 2 pass). */
async function withForwardDrop(body: () => Promise<void>, netns = node1Netns): Promise<void> {
  const rule = ['FORWARD', '-d', node1PodCidr, '-m', 'comment', '--comment', 'sluice-test-hr', '-j', 'DROP'];
  const r = await inNetns(netns, ['iptables', '-w', '-I', ...rule]);
  assert.equal(r.code, 0, r.stderr);
  try {
    await body();
  } finally {
    await inNetns(netns, ['iptables', '-w', '-D', ...rule]);
  }
}

test('the agent turns host routing on (hostRouting bpf by default), publishes every local pod by address and mirrors its routes to the other node', async () => {
  assert.ok((withConfig(readGlobalConfig).flags & SluiceConfigFlags.BPF_HOST_ROUTING) !== 0);
  const raw = openPinnedMap(join(node1Pins, LXC_ADDRESSES_LAYOUT.name));
  const ifRaw = openPinnedMap(join(node1Pins, LXC_IFACES_LAYOUT.name));
  try {
    const addresses = openLxcAddresses(raw);
    const interfaces = openLxcInterfaces(ifRaw);
    const want = JSON.stringify(['a', 'c'].map((p) => parseIpv4(c.lab.pod(p).ipv4)).sort().map((a) => [a, a]));
    const got = (): string => JSON.stringify([...addresses.entries()].map(([addr, a]) => [addr, interfaces.lookup(a.ifindex)?.ipv4]).sort());
    await until('node 1 publishes its pods by address', () => got() === want);
    assert.equal(got(), want, 'node 1 holds its two pods, each confirmed by its interface entry; b lives on node 2');
  } finally {
    raw.close();
    ifRaw.close();
  }
  const routesRaw = openPinnedMap(join(node1Pins, NODE_ROUTES_LAYOUT.name));
  try {
    const n2 = c.lab.nodes[1];
    assert.ok(n2?.plan.internalIp);
    const fab = JSON.parse((await inNetns(node1Netns, ['ip', '-j', 'link', 'show', 'fab0'])).stdout) as { ifindex: number; mtu: number }[];
    assert.deepEqual([...openNodeRoutes(routesRaw).entries()], [[n2.plan.podCidr, { ifindex: fab[0]?.ifindex, nextHop: parseIpv4(n2.plan.internalIp), mtu: fab[0]?.mtu }]]);
  } finally {
    routesRaw.close();
  }
});

test('host routing on: same-node, from-the-fabric and to-another-node packets skip the node\'s FORWARD chain; off: the stack forwards them', async () => {
  const a = c.lab.pod('a');
  const b = c.lab.pod('b');
  const local = c.lab.pod('c');
  await withForwardDrop(async () => {
    assert.equal((await ping(a.netns, local.ipv4, 2)).received, 2, 'a → c on node 1');
    assert.equal((await ping(b.netns, a.ipv4, 2)).received, 2, 'b (node 2) → a (node 1)');
    withConfig((m) => setBpfHostRouting(m, false));
    try {
      assert.equal((await ping(a.netns, local.ipv4, 2)).received, 0, 'the stack forwards a → c, and the rule drops it');
      assert.equal((await ping(b.netns, a.ipv4, 2)).received, 0, 'the stack forwards b → a, and the rule drops it');
    } finally {
      withConfig((m) => setBpfHostRouting(m, true));
    }
  });
  await withForwardDrop(async () => {
    assert.equal((await ping(b.netns, a.ipv4, 2)).received, 2, 'b → a leaves node 2 by sl_noderoute_v1, past its FORWARD chain');
    withConfig((m) => setBpfHostRouting(m, false), node2Pins());
    try {
      assert.equal((await ping(b.netns, a.ipv4, 2)).received, 0, 'node 2\'s stack forwards b → a, and the rule drops it');
    } finally {
      withConfig((m) => setBpfHostRouting(m, true), node2Pins());
    }
  }, node2Netns);
});

test('a redirected packet has its TTL decremented, as forwarding by the stack would', async () => {
  const r = await inNetns(c.lab.pod('a').netns, ['ping', '-n', '-c', '1', '-W', '1', c.lab.pod('c').ipv4]);
  assert.match(r.stdout, /ttl=63 /, 'c answers with TTL 64, one hop on the way back');
});

test('an address entry that its interface entry does not confirm is ignored: the packet goes to the stack, never to another pod', async () => {
  const a = c.lab.pod('a');
  const target = c.lab.pod('c');
  const client = c.lab.pod('b');
  const raw = openPinnedMap(join(node1Pins, LXC_ADDRESSES_LAYOUT.name));
  try {
    const addresses = openLxcAddresses(raw);
    const targetAddr = parseIpv4(target.ipv4);
    const right = addresses.lookup(targetAddr);
    const wrong = addresses.lookup(parseIpv4(a.ipv4));
    assert.ok(right && wrong);
    addresses.update(targetAddr, wrong); // c's address → a's veth, whose interface entry carries a's address
    try {
      assert.equal((await ping(client.netns, target.ipv4, 2)).received, 2, 'c still answers: the stack delivered it');
      await withForwardDrop(async () => {
        assert.equal((await ping(client.netns, target.ipv4, 2)).received, 0, 'and it was the stack: the FORWARD rule stops it');
      });
    } finally {
      addresses.update(targetAddr, right);
    }
  } finally {
    raw.close();
  }
});
