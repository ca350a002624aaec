/**
 * The endpoint sweep's decisions (src/agent/endpoints/sweep.ts) over a real
 * registry (in-memory store) and a fake host: evidence, grace period, DEL's
 * order, one failure not stopping the round, address retries, the timer.
 * The real node is test/cni/sweep.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EndpointRegistry } from '../../src/agent/endpoints/registry.js';
import { EMPTY_STATE, type EndpointState, type EndpointStateStore } from '../../src/agent/endpoints/state-file.js';
import { EndpointSweeper, type SweepHost, type SweepStep } from '../../src/agent/endpoints/sweep.js';
import type { EndpointRecord, EndpointSpec } from '../../src/endpoint/contract.js';
import { FakeClock } from './helpers/fake-clock.js';
import { captureLog } from './helpers/logs.js';

class MemoryStore implements EndpointStateStore {
  state: EndpointState = EMPTY_STATE;
  failSaves = false;
  load(): Promise<EndpointState> {
    return Promise.resolve(this.state);
  }
  save(state: EndpointState): Promise<void> {
    if (this.failSaves) return Promise.reject(new Error('disk full'));
    this.state = state;
    return Promise.resolve();
  }
}

/** A node: live veth names, existing netns paths, sl_lxc_v1 entries, IPAM links; every call recorded. */
class FakeHost implements SweepHost {
  readonly veths = new Set<string>();
  readonly netns = new Set<string>();
  readonly lxc = new Map<number, number>();
  readonly ipam = new Map<string, string>();
  readonly calls: string[] = [];
  failLinks = false;
  failNetns = new Set<string>();
  failLxc = new Set<number>();
  failIpam = false;

  snapshotLinks(): { hasHostVeth(e: EndpointRecord): boolean } {
    if (this.failLinks) throw new Error('nsenter: cannot open /var/run/netns/node');
    const names = new Set(this.veths);
    return { hasHostVeth: (e) => names.has(e.hostIfname) };
  }
  netnsExists(path: string): boolean {
    if (this.failNetns.has(path)) throw new Error(`EACCES: ${path}`);
    return this.netns.has(path);
  }
  releaseLxcEntry(ifindex: number, endpointId: number): boolean {
    if (this.failLxc.has(ifindex)) throw new Error('EPERM: sl_lxc_v1');
    this.calls.push(`lxc ${ifindex}`);
    if (this.lxc.get(ifindex) !== endpointId) return false;
    return this.lxc.delete(ifindex);
  }
  releaseAddress(ip: string, e: EndpointRecord): boolean {
    if (this.failIpam) throw new Error('EROFS: ipam');
    this.calls.push(`ipam ${ip}`);
    if (this.ipam.get(ip) !== `${e.containerId}/${e.ifname}`) return false;
    return this.ipam.delete(ip);
  }
}

function spec(n: number): EndpointSpec {
  return {
    containerId: `c${n}`, ifname: 'eth0', netns: `/var/run/netns/pod${n}`, podNamespace: 'default', podName: `pod${n}`,
    ip: `10.1.0.${n}`, hostIfname: `lxc0000000000${n}`, hostIfindex: 100 + n,
  };
}

interface Setup {
  clock: FakeClock;
  host: FakeHost;
  store: MemoryStore;
  registry: EndpointRegistry;
  sweeper: EndpointSweeper;
  removed: string[];
  errors: SweepStep[];
  pending: number[];
  logs: ReturnType<typeof captureLog>;
}

/** n endpoints, each with a live veth, netns, lxc entry and address. */
async function setUp(n: number, graceMs = 1000): Promise<Setup> {
  const clock = new FakeClock();
  const host = new FakeHost();
  const store = new MemoryStore();
  const registry = await EndpointRegistry.open({ store });
  for (let i = 1; i <= n; i++) {
    const s = spec(i);
    const { endpoint } = await registry.add(s);
    host.veths.add(s.hostIfname);
    host.netns.add(s.netns);
    host.lxc.set(s.hostIfindex, endpoint.endpointId);
    host.ipam.set(s.ip, `${s.containerId}/eth0`);
  }
  const removed: string[] = [];
  const errors: SweepStep[] = [];
  const pending: number[] = [];
  const logs = captureLog('info');
  const sweeper = new EndpointSweeper({
    registry, host, clock, log: logs.log, intervalMs: 500, graceMs,
    metrics: { removed: () => undefined, error: (s) => errors.push(s), pending: (k) => pending.push(k) },
    onRemoved: (e) => removed.push(e.containerId),
  });
  return { clock, host, store, registry, sweeper, removed, errors, pending, logs };
}

/** What a netns deleted without DEL leaves: the veth and the netns path go, everything else stays. */
function vanish(host: FakeHost, n: number): void {
  host.veths.delete(spec(n).hostIfname);
  host.netns.delete(spec(n).netns);
}

test('an endpoint whose veth and netns are gone is swept after the grace period, in DEL order; others untouched', async () => {
  const s = await setUp(2);
  vanish(s.host, 1);
  assert.deepEqual(await s.sweeper.sweep(), [], 'first sighting only starts the grace period');
  assert.deepEqual(s.pending, [1]);
  await s.clock.advance(999);
  assert.deepEqual(await s.sweeper.sweep(), [], 'within the grace period');
  await s.clock.advance(1);
  const swept = await s.sweeper.sweep();
  assert.deepEqual(swept.map((x) => [x.endpoint.containerId, x.lxcEntry, x.addressReleased]), [['c1', true, true]]);
  assert.deepEqual(s.host.calls, ['lxc 101', 'ipam 10.1.0.1'], 'entry, then (registry), then address');
  assert.deepEqual(s.removed, ['c1']);
  assert.deepEqual(s.registry.list().map((e) => e.containerId), ['c2']);
  assert.deepEqual(s.store.state.endpoints.map((e) => e.containerId), ['c2'], 'persisted');
  assert.deepEqual([...s.host.lxc.keys()], [102]);
  assert.deepEqual([...s.host.ipam.keys()], ['10.1.0.2']);
  assert.deepEqual(s.pending.at(-1), 0);
  const line = s.logs.find('endpoint swept')[0];
  assert.equal(line?.['containerId'], 'c1');
  assert.equal(line?.['pod'], 'default/pod1');
  assert.equal(line?.['ip'], '10.1.0.1');
  assert.deepEqual(s.errors, []);
});

test('not swept while either the veth or the netns exists; a return restarts the grace period', async () => {
  const s = await setUp(3);
  s.host.veths.delete(spec(1).hostIfname); // veth gone, netns still there (a DEL in progress, a rerun ADD replacing its veth)
  s.host.netns.delete(spec(2).netns); // netns path gone, veth still there (a netns kept alive elsewhere)
  vanish(s.host, 3);
  await s.sweeper.sweep();
  s.host.veths.add(spec(3).hostIfname); // back (a tool recreated it)
  await s.clock.advance(5000);
  assert.deepEqual(await s.sweeper.sweep(), []);
  s.host.veths.delete(spec(3).hostIfname);
  await s.sweeper.sweep();
  await s.clock.advance(999);
  assert.deepEqual(await s.sweeper.sweep(), [], 'the grace period restarted when the veth came back');
  await s.clock.advance(1);
  assert.deepEqual((await s.sweeper.sweep()).map((x) => x.endpoint.containerId), ['c3']);
  assert.equal(s.registry.size, 2);
});

test('an endpoint registered after the first sighting of a gone one is judged on its own clock', async () => {
  const s = await setUp(1);
  vanish(s.host, 1);
  await s.sweeper.sweep();
  await s.clock.advance(900);
  const late = spec(2);
  await s.registry.add(late); // registered, its veth and netns not (visible) yet
  await s.sweeper.sweep();
  await s.clock.advance(100);
  assert.deepEqual((await s.sweeper.sweep()).map((x) => x.endpoint.containerId), ['c1'], 'c2 has only been gone for 100 ms');
  assert.deepEqual(s.registry.list().map((e) => e.containerId), ['c2']);
});

test('one bad record does not stop the round; a failed listing judges nothing', async () => {
  const s = await setUp(4);
  for (const n of [1, 2, 3, 4]) vanish(s.host, n);
  s.host.failLinks = true;
  assert.deepEqual(await s.sweeper.sweep(), []);
  assert.deepEqual(s.errors, ['links']);
  assert.deepEqual(s.pending, [], 'nothing judged');
  s.host.failLinks = false;
  s.host.failNetns.add(spec(1).netns); // cannot tell: never swept
  s.host.failLxc.add(spec(2).hostIfindex); // entry cannot be deleted: kept registered, retried next time
  await s.sweeper.sweep();
  await s.clock.advance(1000);
  const swept = await s.sweeper.sweep();
  assert.deepEqual(swept.map((x) => x.endpoint.containerId), ['c3', 'c4']);
  assert.deepEqual(s.errors, ['links', 'evidence', 'evidence', 'lxc']);
  assert.deepEqual(s.registry.list().map((e) => e.containerId), ['c1', 'c2']);
  s.host.failLxc.clear();
  await s.sweeper.sweep();
  await s.clock.advance(1000);
  assert.deepEqual((await s.sweeper.sweep()).map((x) => x.endpoint.containerId), ['c2']);
});

test('a failed deregistration releases nothing; a failed address release is retried', async () => {
  const s = await setUp(1);
  vanish(s.host, 1);
  await s.sweeper.sweep();
  await s.clock.advance(1000);
  s.store.failSaves = true;
  assert.deepEqual(await s.sweeper.sweep(), []);
  assert.deepEqual(s.errors, ['registry']);
  assert.equal(s.registry.size, 1);
  assert.equal(s.host.ipam.size, 1, 'the address stays while the endpoint is registered');
  s.store.failSaves = false;
  s.host.failIpam = true;
  await s.sweeper.sweep();
  await s.clock.advance(1000);
  const swept = await s.sweeper.sweep();
  assert.deepEqual(swept.map((x) => [x.endpoint.containerId, x.addressReleased]), [['c1', false]]);
  assert.equal(s.registry.size, 0);
  assert.equal(s.host.ipam.size, 1);
  s.host.failIpam = false;
  await s.sweeper.sweep();
  assert.equal(s.host.ipam.size, 0, 'released on the next round');
  assert.equal(s.logs.find('released 10.1.0.1 of c1/eth0 on retry').length, 1);
});

test('an address or entry that is no longer the endpoint\'s is not touched', async () => {
  const s = await setUp(1);
  vanish(s.host, 1);
  s.host.lxc.set(101, 999); // the ifindex now serves another endpoint
  s.host.ipam.set('10.1.0.1', 'other/eth0'); // the address belongs to another attachment
  await s.sweeper.sweep();
  await s.clock.advance(1000);
  const swept = await s.sweeper.sweep();
  assert.deepEqual(swept.map((x) => [x.lxcEntry, x.addressReleased]), [[false, false]]);
  assert.equal(s.host.lxc.get(101), 999);
  assert.equal(s.host.ipam.get('10.1.0.1'), 'other/eth0');
});

test('a DEL that deregistered the endpoint first leaves the address to the DEL', async () => {
  const s = await setUp(1);
  vanish(s.host, 1);
  await s.sweeper.sweep();
  await s.clock.advance(1000);
  const registry = s.registry;
  const del = registry.delete('c1', 'eth0'); // queued before the sweep's own delete
  const swept = await s.sweeper.sweep();
  await del;
  assert.deepEqual(swept, []);
  assert.deepEqual(s.host.calls, ['lxc 101'], 'no address released by the sweep');
  assert.deepEqual(s.removed, []);
});

test('the timer sweeps every interval until stopped', async () => {
  const s = await setUp(1, 1000);
  vanish(s.host, 1);
  s.sweeper.start();
  await s.clock.advance(500);
  assert.equal(s.registry.size, 1);
  await s.clock.advance(1000);
  assert.equal(s.registry.size, 0, 'seen gone at 500, swept at 1500');
  await s.sweeper.stop();
  assert.deepEqual(s.clock.pending(), []);
});
