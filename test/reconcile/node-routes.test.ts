/**
 * The node-routes owner over an in-memory NodeNetworkPort, and its input from
 * Node objects (pure): native routes, the diff against what the kernel holds
 * (only the owner's protocol), vxlan device, FDB and neighbour entries, the
 * fabric program attached once per podCIDR, failures reported per entry with
 * a read-back next round.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nodeRoutingInput } from '../../src/agent/datapath/node-routing.js';
import type { SlimNode } from '../../src/agent/k8s/resources.js';
import {
  AF_BRIDGE, AF_INET, NodeRoutesOwner, VXLAN_IFNAME, vtepMac, type NeighEntry, type NodeNetworkPort, type NodeRoutingInput, type RouteEntry,
} from '../../src/reconcile/node-routes.js';
import { runRound } from '../../src/reconcile/round.js';
import type { MapStore } from '../../src/reconcile/map-writes.js';
import type { NodeRoute } from '../../src/datapath/generated/abi.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';

/** sl_noderoute_v1 in memory. */
function memoryRoutes(): MapStore<string, NodeRoute> & { data: Map<string, NodeRoute> } {
  const data = new Map<string, NodeRoute>();
  return { data, entries: () => [...data], update: (k, v) => void data.set(k, v), delete: (k) => data.delete(k) };
}

interface FakeNet extends NodeNetworkPort {
  routes: Map<string, RouteEntry>;
  neigh: Map<string, NeighEntry[]>;
  links: Map<string, { ifindex: number; mtu: number; kind: string | undefined }>;
  vxlan: Parameters<NodeNetworkPort['createVxlan']>[0][];
  hosts: string[];
  routeReads: number;
  failRoute: string | undefined;
}

function fakeNet(): FakeNet {
  const n: FakeNet = {
    routes: new Map(),
    neigh: new Map(),
    links: new Map([['fab0', { ifindex: 3, mtu: 1550, kind: 'veth' }]]),
    vxlan: [],
    hosts: [],
    routeReads: 0,
    failRoute: undefined,
    listRoutes: () => {
      n.routeReads++;
      return [...n.routes.values()];
    },
    setRoute: (r) => {
      if (r.dst === n.failRoute) throw Object.assign(new Error('route replace: Network is unreachable'), { errno: 101 });
      n.routes.set(r.dst, r);
    },
    delRoute: (dst) => void n.routes.delete(dst),
    link: (name) => n.links.get(name),
    createVxlan: (r) => {
      n.vxlan.push(r);
      n.links.set(r.name, { ifindex: 9, mtu: r.mtu, kind: 'vxlan' });
    },
    listNeigh: (ifindex, family) => [...(n.neigh.get(`${ifindex}/${family}`) ?? [])],
    setNeigh: (ifindex, family, e) => void n.neigh.set(`${ifindex}/${family}`, [...(n.neigh.get(`${ifindex}/${family}`) ?? []), e]),
    delNeigh: (ifindex, family, e) =>
      void n.neigh.set(`${ifindex}/${family}`, (n.neigh.get(`${ifindex}/${family}`) ?? []).filter((x) => x.mac !== e.mac || x.dst !== e.dst)),
    attachHostProgram: (devices, podCidr, nodeAddress) => void n.hosts.push(`${podCidr} ${devices.join(',')} ${nodeAddress ?? '-'}`),
  };
  return n;
}

const node = (name: string, podCidr: string | undefined, ip: string | undefined): SlimNode => ({
  metadata: { name },
  ...(podCidr !== undefined ? { spec: { podCIDR: podCidr, podCIDRs: [podCidr] } } : {}),
  ...(ip !== undefined ? { status: { addresses: [{ type: 'InternalIP', address: ip }, { type: 'Hostname', address: name }] } } : {}),
});

const NODES = [node('n1', '10.9.0.0/24', '172.30.0.11'), node('n2', '10.9.1.0/24', '172.30.0.12'), node('n3', '10.9.2.0/24', '172.30.0.13')];
const routing = (mode: 'native' | 'vxlan', nodes: readonly SlimNode[] = NODES): NodeRoutingInput =>
  nodeRoutingInput(nodes, 'n1', { mode, device: 'fab0', vni: 2, port: 8472 });

test('input: every other node with a podCIDR and an InternalIP is a peer; this node gives its own address and podCIDR', () => {
  const r = routing('native', [...NODES, node('n4', undefined, '172.30.0.14'), node('n5', '10.9.4.0/24', undefined)]);
  assert.deepEqual(r.peers.map((p) => [p.node, p.podCidr, p.internalIp]), [['n2', '10.9.1.0/24', '172.30.0.12'], ['n3', '10.9.2.0/24', '172.30.0.13']]);
  assert.deepEqual([r.self, r.selfPodCidr], ['172.30.0.11', '10.9.0.0/24']);
});

test('native: a route per peer via its InternalIP on the fabric device, mirrored for the programs; the fabric program attached once', () => {
  const net = fakeNet();
  const mirror = memoryRoutes();
  const owner = new NodeRoutesOwner(net, mirror);
  const round = runRound([owner], { nodeRouting: routing('native') });
  assert.equal(round.owners[0]?.complete, true);
  assert.deepEqual([...net.routes.values()], [
    { dst: '10.9.1.0/24', gateway: '172.30.0.12', ifindex: 3, onlink: false },
    { dst: '10.9.2.0/24', gateway: '172.30.0.13', ifindex: 3, onlink: false },
  ]);
  assert.deepEqual([...mirror.data], [
    ['10.9.1.0/24', { ifindex: 3, nextHop: parseIpv4('172.30.0.12'), mtu: 1550 }],
    ['10.9.2.0/24', { ifindex: 3, nextHop: parseIpv4('172.30.0.13'), mtu: 1550 }],
  ]);
  assert.deepEqual(net.hosts, ['10.9.0.0/24 fab0 172.30.0.11'], 'masquerading Services to this node\'s InternalIP');
  const again = runRound([owner], { nodeRouting: routing('native') });
  assert.equal(again.planned, 0, 'nothing to do');
  assert.equal(net.routeReads, 1, 'a complete round is trusted');
  assert.deepEqual(net.hosts, ['10.9.0.0/24 fab0 172.30.0.11']);
  runRound([owner], { nodeRouting: routing('native', [node('n1', '10.9.0.0/24', '172.30.0.21'), ...NODES.slice(1)]) });
  assert.deepEqual(net.hosts, ['10.9.0.0/24 fab0 172.30.0.11', '10.9.0.0/24 fab0 172.30.0.21'], 'a new InternalIP: attached again with it');
});

test('native: a node that goes loses its route; a moved address is replaced', () => {
  const net = fakeNet();
  net.routes.set('10.9.7.0/24', { dst: '10.9.7.0/24', gateway: '172.30.0.17', ifindex: 3, onlink: false }); // ours, stale
  net.routes.set('10.9.1.0/24', { dst: '10.9.1.0/24', gateway: '172.30.0.99', ifindex: 3, onlink: false }); // ours, moved
  const mirror = memoryRoutes();
  mirror.data.set('10.9.7.0/24', { ifindex: 3, nextHop: parseIpv4('172.30.0.17'), mtu: 1550 });
  const owner = new NodeRoutesOwner(net, mirror);
  runRound([owner], { nodeRouting: routing('native', NODES.slice(0, 2)) });
  assert.deepEqual([...net.routes.keys()], ['10.9.1.0/24']);
  assert.equal(net.routes.get('10.9.1.0/24')?.gateway, '172.30.0.12');
  assert.deepEqual([...mirror.data], [['10.9.1.0/24', { ifindex: 3, nextHop: parseIpv4('172.30.0.12'), mtu: 1550 }]], 'the mirror follows');
});

test('vxlan: the device (fabric MTU − 50, this node\'s VTEP), an FDB and a neighbour entry and an onlink route per peer', () => {
  const net = fakeNet();
  const mirror = memoryRoutes();
  const owner = new NodeRoutesOwner(net, mirror);
  runRound([owner], { nodeRouting: routing('vxlan') });
  assert.deepEqual([...mirror.data], [
    ['10.9.1.0/24', { ifindex: 9, nextHop: parseIpv4('10.9.1.0'), mtu: 1500 }],
    ['10.9.2.0/24', { ifindex: 9, nextHop: parseIpv4('10.9.2.0'), mtu: 1500 }],
  ], 'the vxlan device, the next hop its neighbour entry resolves, its MTU');
  assert.deepEqual(net.vxlan, [{ name: VXLAN_IFNAME, vni: 2, port: 8472, local: '172.30.0.11', device: 'fab0', mac: vtepMac('172.30.0.11'), mtu: 1500 }]);
  assert.equal(vtepMac('172.30.0.12'), '02:5c:ac:1e:00:0c');
  assert.deepEqual(net.neigh.get(`9/${AF_BRIDGE}`), [{ dst: '172.30.0.12', mac: '02:5c:ac:1e:00:0c' }, { dst: '172.30.0.13', mac: '02:5c:ac:1e:00:0d' }]);
  assert.deepEqual(net.neigh.get(`9/${AF_INET}`), [{ dst: '10.9.1.0', mac: '02:5c:ac:1e:00:0c' }, { dst: '10.9.2.0', mac: '02:5c:ac:1e:00:0d' }]);
  assert.deepEqual([...net.routes.values()].map((r) => [r.dst, r.gateway, r.ifindex, r.onlink]), [['10.9.1.0/24', '10.9.1.0', 9, true], ['10.9.2.0/24', '10.9.2.0', 9, true]]);
  assert.deepEqual(net.hosts, [`10.9.0.0/24 fab0,${VXLAN_IFNAME} 172.30.0.11`]);
  runRound([owner], { nodeRouting: routing('vxlan', NODES.slice(0, 2)) });
  assert.deepEqual(net.neigh.get(`9/${AF_BRIDGE}`), [{ dst: '172.30.0.12', mac: '02:5c:ac:1e:00:0c' }], 'n3 went: its FDB entry too');
  assert.equal(net.vxlan.length, 1, 'the device is made once');
});

test('vxlan without this node\'s InternalIP: the owner cannot plan, and says why', () => {
  const net = fakeNet();
  const round = runRound([new NodeRoutesOwner(net, memoryRoutes())], { nodeRouting: routing('vxlan', [node('n1', '10.9.0.0/24', undefined), ...NODES.slice(1)]) });
  assert.match(round.owners[0]?.planError?.message ?? '', /vxlan needs this node's InternalIP/);
});

test('a refused route is reported by destination; the next round reads the routes back and retries', () => {
  const net = fakeNet();
  net.failRoute = '10.9.2.0/24';
  const owner = new NodeRoutesOwner(net, memoryRoutes());
  const round = runRound([owner], { nodeRouting: routing('native') });
  assert.equal(round.owners[0]?.complete, false);
  assert.deepEqual(round.owners[0]?.failures.map((f) => [f.step, f.map, f.key, f.errno]), [['route-upsert', 'node-routes', '10.9.2.0/24 via 172.30.0.13', 101]]);
  net.failRoute = undefined;
  runRound([owner], { nodeRouting: routing('native') });
  assert.equal(net.routeReads, 2);
  assert.equal(net.routes.size, 2);
});
