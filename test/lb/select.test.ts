/** kube-proxy's endpoint selection (CategorizeEndpoints), case by case. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { categorize, topologyMode, type PortEndpoint } from '../../src/lb/select.js';

const node = { name: 'n1', zone: 'z1' };
function ep(ip: string, state: 'ready' | 'serving-terminating' | 'terminating' | 'unready', extra: Partial<PortEndpoint> = {}): PortEndpoint {
  const s = {
    ready: { ready: true, serving: true, terminating: false },
    'serving-terminating': { ready: false, serving: true, terminating: true },
    terminating: { ready: false, serving: false, terminating: true },
    unready: { ready: false, serving: false, terminating: false },
  }[state];
  return { ip, port: 8080, protocol: 'TCP', ...s, nodeName: 'n2', ...extra };
}
const ips = (list: readonly PortEndpoint[]): string[] => list.map((e) => e.ip);

test('cluster set: Ready endpoints; with none Ready, the serving-and-terminating ones (fallback); never the unready', () => {
  const mixed = [ep('a', 'ready'), ep('b', 'serving-terminating'), ep('c', 'unready'), ep('d', 'terminating')];
  assert.deepEqual(ips(categorize(mixed, node).cluster), ['a']);
  const noneReady = [ep('b', 'serving-terminating'), ep('c', 'unready'), ep('d', 'terminating')];
  const c = categorize(noneReady, node);
  assert.deepEqual(ips(c.cluster), ['b']);
  assert.equal(c.hasAny, true);
  const nothingUsable = categorize([ep('c', 'unready'), ep('d', 'terminating')], node);
  assert.deepEqual(ips(nothingUsable.cluster), []);
  assert.equal(nothingUsable.hasAny, false, 'no usable endpoint anywhere: the frontend rejects');
});

test('local set: this node\'s Ready endpoints, else its serving-and-terminating ones, decided apart from the cluster set', () => {
  const list = [ep('remote', 'ready'), ep('mine-term', 'serving-terminating', { nodeName: 'n1' })];
  const c = categorize(list, node);
  assert.deepEqual(ips(c.local), ['mine-term'], 'local fallback while a Ready endpoint exists elsewhere');
  assert.deepEqual(ips(c.cluster), ['remote']);
  assert.deepEqual(ips(categorize([ep('mine', 'ready', { nodeName: 'n1' }), ep('mine-term', 'serving-terminating', { nodeName: 'n1' })], node).local), ['mine']);
  assert.deepEqual(ips(categorize([ep('remote', 'ready')], node).local), [], 'none here: Local policy drops');
});

test('topology: PreferSameZone when every Ready endpoint has a zone hint and one names our zone', () => {
  const zoned = [ep('a', 'ready', { hints: { forZones: ['z1'], forNodes: [] } }), ep('b', 'ready', { hints: { forZones: ['z2'], forNodes: [] } })];
  assert.equal(topologyMode(zoned, node), 'PreferSameZone');
  assert.deepEqual(ips(categorize(zoned, node).cluster), ['a']);
  // One Ready endpoint without a hint turns hints off for the Service.
  const oneBare = [...zoned, ep('c', 'ready')];
  assert.equal(topologyMode(oneBare, node), 'none');
  assert.deepEqual(ips(categorize(oneBare, node).cluster), ['a', 'b', 'c']);
  // Hints of endpoints that are not Ready do not count.
  assert.equal(topologyMode([...zoned, ep('d', 'serving-terminating')], node), 'PreferSameZone');
  // No endpoint for our zone: no filter.
  assert.equal(topologyMode(zoned, { name: 'n3', zone: 'z9' }), 'none');
  assert.equal(topologyMode(zoned, { name: 'n3' }), 'none', 'a node without a zone label');
});

test('topology: PreferSameNode before zones; the terminating fallback ignores topology', () => {
  const both = [
    ep('a', 'ready', { hints: { forZones: ['z1'], forNodes: ['n1'] } }),
    ep('b', 'ready', { hints: { forZones: ['z1'], forNodes: ['n2'] } }),
  ];
  assert.equal(topologyMode(both, node), 'PreferSameNode');
  assert.deepEqual(ips(categorize(both, node).cluster), ['a']);
  const onlyTerminating = [ep('t1', 'serving-terminating', { hints: { forZones: ['z9'], forNodes: [] } }), ep('t2', 'serving-terminating')];
  assert.deepEqual(ips(categorize(onlyTerminating, node).cluster), ['t1', 't2']);
});
