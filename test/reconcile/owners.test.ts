/** The lxc-interfaces and conntrack-config owners, and how a round keeps owners outside a group apart, over in-memory maps. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import type { CtConfig, EndpointConfig, LxcAddress } from '../../src/datapath/generated/abi.js';
import { CtConfigOwner } from '../../src/reconcile/ct-config.js';
import { LxcInterfacesOwner } from '../../src/reconcile/lxc-interfaces.js';
import type { MapStore } from '../../src/reconcile/map-writes.js';
import { Phase, type Reconciler } from '../../src/reconcile/reconciler.js';
import { runRound } from '../../src/reconcile/round.js';

/** A Map as a MapStore; `failUpdates` makes every update fail with E2BIG (a full map). */
function memoryMap<V>(initial: readonly (readonly [number, V])[] = []): MapStore<number, V> & {
  data: Map<number, V>; failUpdates: boolean; reads: number; lookup(k: number): V | undefined;
} {
  const data = new Map(initial);
  const m = {
    data,
    lookup: (k: number) => data.get(k),
    failUpdates: false,
    reads: 0,
    entries: () => {
      m.reads++;
      return [...data];
    },
    update: (k: number, v: V) => {
      if (m.failUpdates) throw Object.assign(new Error('map full'), { errno: constants.errno.E2BIG });
      data.set(k, v);
    },
    delete: (k: number) => data.delete(k),
  };
  return m;
}

test('lxc interfaces: one entry per registered endpoint, by ifindex and by address; stale entries deleted, unchanged ones not rewritten', () => {
  const map = memoryMap<EndpointConfig>([[7, { endpointId: 1, ipv4: 0x0a000002 }], [9, { endpointId: 4, ipv4: 0x0a000009 }]]);
  const addresses = memoryMap<LxcAddress>([[0x0a000002, { ifindex: 7 }], [0x0a000009, { ifindex: 9 }]]);
  const owner = new LxcInterfacesOwner({ interfaces: map, addresses });
  const want = [{ hostIfindex: 7, endpointId: 1, ipv4: 0x0a000002 }, { hostIfindex: 12, endpointId: 2, ipv4: 0x0a000003 }, { hostIfindex: 13, endpointId: 5, ipv4: 0 }];
  const round = runRound([owner], { interfaces: want });
  assert.equal(round.planned, 5, 'by ifindex two new entries and one stale, by address one of each; the unchanged ones are left alone');
  assert.deepEqual([...map.data].sort(([a], [b]) => a - b), [[7, { endpointId: 1, ipv4: 0x0a000002 }], [12, { endpointId: 2, ipv4: 0x0a000003 }], [13, { endpointId: 5, ipv4: 0 }]]);
  assert.deepEqual([...addresses.data].sort(([a], [b]) => a - b), [[0x0a000002, { ifindex: 7 }], [0x0a000003, { ifindex: 12 }]], 'an endpoint without an address has no address entry');
  assert.deepEqual(round.owners[0]?.complete, true);
  const again = runRound([owner], { interfaces: want });
  assert.equal(again.planned, 0);
  assert.equal(map.reads, 1, 'a complete round is trusted: no read-back');
  assert.equal(addresses.reads, 1);
});

test('lxc interfaces: an address that moves to another veth is rewritten', () => {
  const map = memoryMap<EndpointConfig>();
  const addresses = memoryMap<LxcAddress>();
  const owner = new LxcInterfacesOwner({ interfaces: map, addresses });
  runRound([owner], { interfaces: [{ hostIfindex: 7, endpointId: 1, ipv4: 0x0a000002 }] });
  runRound([owner], { interfaces: [{ hostIfindex: 8, endpointId: 2, ipv4: 0x0a000002 }] });
  assert.deepEqual([...addresses.data], [[0x0a000002, { ifindex: 8 }]]);
  assert.deepEqual([...map.data], [[8, { endpointId: 2, ipv4: 0x0a000002 }]]);
});

test('lxc interfaces: a failed write is reported by ifindex and the next round reads the map back', () => {
  const map = memoryMap<EndpointConfig>();
  const owner = new LxcInterfacesOwner({ interfaces: map, addresses: memoryMap<LxcAddress>() });
  map.failUpdates = true;
  const round = runRound([owner], { interfaces: [{ hostIfindex: 5, endpointId: 3, ipv4: 1 }] });
  assert.equal(round.owners[0]?.complete, false);
  assert.deepEqual(round.owners[0]?.failures.map((f) => [f.step, f.map, f.key, f.errno]), [['lxc-upsert', 'lxc', 'ifindex 5', constants.errno.E2BIG]]);
  map.failUpdates = false;
  runRound([owner], { interfaces: [{ hostIfindex: 5, endpointId: 3, ipv4: 1 }] });
  assert.equal(map.reads, 2);
  assert.deepEqual(map.data.get(5), { endpointId: 3, ipv4: 1 });
});

test('conntrack config: written when it differs, 0 for what the node does not set', () => {
  const zero: CtConfig = { tcpSynMs: 0, tcpEstablishedMs: 0, tcpFinMs: 0, tcpClosedMs: 0, udpMs: 0, icmpMs: 0 };
  const map = memoryMap<CtConfig>([[0, zero]]);
  const owner = new CtConfigOwner(map);
  assert.equal(runRound([owner], { conntrack: {} }).planned, 0, 'defaults are what the map holds');
  const round = runRound([owner], { conntrack: { udpMs: 5000 } });
  assert.equal(round.operations, 1);
  assert.deepEqual(map.data.get(0), { ...zero, udpMs: 5000 });
  map.data.set(0, { ...zero, udpMs: 1 });
  owner.invalidate();
  assert.equal(runRound([owner], { conntrack: { udpMs: 5000 } }).operations, 1, 'a map changed behind the owner is put back after a read-back');
  assert.equal(map.data.get(0)?.udpMs, 5000);
});

test('a round: an owner outside a group fails alone; the others complete', () => {
  const lxcMap = memoryMap<EndpointConfig>();
  const ctMap = memoryMap<CtConfig>([[0, { tcpSynMs: 0, tcpEstablishedMs: 0, tcpFinMs: 0, tcpClosedMs: 0, udpMs: 0, icmpMs: 0 }]]);
  lxcMap.failUpdates = true;
  const round = runRound<{ interfaces: { hostIfindex: number; endpointId: number; ipv4: number }[]; conntrack: { udpMs: number } }>(
    [new LxcInterfacesOwner({ interfaces: lxcMap, addresses: memoryMap<LxcAddress>() }), new CtConfigOwner(ctMap)],
    { interfaces: [{ hostIfindex: 3, endpointId: 1, ipv4: 1 }], conntrack: { udpMs: 9 } },
  );
  assert.deepEqual(round.owners.map((o) => [o.name, o.complete]), [['lxc', false], ['ct-config', true]]);
  assert.equal(ctMap.data.get(0)?.udpMs, 9);
});

test('a round: an owner that cannot read its map writes nothing, and neither does the rest of its group', () => {
  const broken: MapStore<number, EndpointConfig> & { lookup(k: number): EndpointConfig | undefined } = {
    lookup: () => undefined,
    entries: () => {
      throw new Error('EPERM');
    },
    update: () => assert.fail('no write'),
    delete: () => assert.fail('no write'),
  };
  const a = new LxcInterfacesOwner({ interfaces: broken, addresses: memoryMap<LxcAddress>() });
  const b = new LxcInterfacesOwner({ interfaces: memoryMap<EndpointConfig>(), addresses: memoryMap<LxcAddress>() });
  const grouped = (o: LxcInterfacesOwner, name: string) => Object.assign(Object.create(o) as LxcInterfacesOwner, { name, group: 'g' });
  const round = runRound([grouped(a, 'a'), grouped(b, 'b')], { interfaces: [{ hostIfindex: 1, endpointId: 1, ipv4: 1 }] });
  assert.equal(round.operations, 0);
  assert.match(round.owners[0]?.planError?.message ?? '', /EPERM/);
  assert.deepEqual(round.owners.map((o) => o.complete), [false, false]);
});

test('a round times each owner: its plan apart from its writes', () => {
  const busy = (ms: number): void => {
    const end = performance.now() + ms;
    while (performance.now() < end) { /* a plan or a write that takes this long */ }
  };
  const owner = (name: string, planMs: number, writeMs: number): Reconciler<unknown> => ({
    name,
    plan: () => {
      busy(planMs);
      return [{ phase: Phase.PUBLISH, kind: `${name}-upsert`, size: 1, run: () => (busy(writeMs), 1) }];
    },
    settle: () => undefined,
    invalidate: () => undefined,
  });
  const round = runRound([owner('slow-plan', 30, 0), owner('slow-write', 0, 30)], {});
  const [slowPlan, slowWrite] = round.owners;
  assert.ok(slowPlan !== undefined && slowWrite !== undefined);
  assert.ok(slowPlan.planMs >= 30 && slowPlan.writeMs < 30, JSON.stringify(slowPlan));
  assert.ok(slowWrite.writeMs >= 30 && slowWrite.planMs < 30, JSON.stringify(slowWrite));
});
