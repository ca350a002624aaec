/** The nodes of a cluster lab (src/lab/cluster/nodes.ts): names, podCIDRs, fabric addresses, zones, Node objects (pure). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_NODES, nodeObject, planNodes, ZONE_LABEL } from '../../src/lab/cluster/nodes.js';
import { clusterObjects } from '../../src/lab/cluster/objects.js';
import { LabError } from '../../src/lab/errors.js';
import { resolveSpec } from '../../src/lab/spec.js';

const paths = { bpffs: '/sys/fs/bpf', stateDir: '/run/sluice/lab' };
const plan = resolveSpec({ name: 'hnunit', pods: ['a', 'b', 'c'], cidr: '10.9.0.0/24' }, paths);

test('one node: the one-node lab\'s names, the lab cidr, no fabric address, no zone', () => {
  assert.deepEqual(planNodes(plan, paths), [{
    index: 1, name: 'sluice-hnunit', netns: 'sluice-hnunit-node', podCidr: '10.9.0.0/24', pinRoot: '/sys/fs/bpf/sluice-hnunit', dir: '/run/sluice/lab/hnunit.d',
  }]);
});

test('one node on the fabric: its address and zone1, as node 1 of several would have', () => {
  assert.deepEqual(planNodes(plan, paths, { fabric: true }).map((n) => [n.name, n.podCidr, n.internalIp, n.zone]), [['sluice-hnunit', '10.9.0.0/24', '172.30.0.11', 'zone1']]);
});

test('three nodes: consecutive blocks of the lab cidr\'s size, fabric addresses, zones given then zone<k>', () => {
  const nodes = planNodes(plan, paths, { count: 3, zones: ['east'] });
  assert.deepEqual(nodes.map((n) => [n.name, n.netns, n.podCidr, n.pinRoot, n.dir, n.internalIp, n.zone]), [
    ['sluice-hnunit', 'sluice-hnunit-node', '10.9.0.0/24', '/sys/fs/bpf/sluice-hnunit', '/run/sluice/lab/hnunit.d', '172.30.0.11', 'east'],
    ['sluice-hnunit-2', 'sluice-hnunit-node2', '10.9.1.0/24', '/sys/fs/bpf/sluice-hnunit-node2', '/run/sluice/lab/hnunit.d/node2', '172.30.0.12', 'zone2'],
    ['sluice-hnunit-3', 'sluice-hnunit-node3', '10.9.2.0/24', '/sys/fs/bpf/sluice-hnunit-node3', '/run/sluice/lab/hnunit.d/node3', '172.30.0.13', 'zone3'],
  ]);
  assert.deepEqual(planNodes(plan, paths, { count: 1 }, 4).map((n) => [n.index, n.podCidr, n.internalIp]), [[4, '10.9.3.0/24', '172.30.0.14']], 'a node added later');
  assert.deepEqual(nodeObject(nodes[1]!), {
    apiVersion: 'v1', kind: 'Node',
    metadata: { name: 'sluice-hnunit-2', labels: { 'kubernetes.io/hostname': 'sluice-hnunit-2', [ZONE_LABEL]: 'zone2' } },
    spec: { podCIDR: '10.9.1.0/24', podCIDRs: ['10.9.1.0/24'] },
    status: { addresses: [{ type: 'InternalIP', address: '172.30.0.12' }, { type: 'Hostname', address: 'sluice-hnunit-2' }] },
  });
});

test('pods: spec.nodeName places them, the others go round-robin; a name that is no node of the lab fails', () => {
  const nodes = planNodes(plan, paths, { count: 2 });
  const o = clusterObjects(plan, [{ kind: 'Pod', metadata: { name: 'a' }, spec: { nodeName: 'sluice-hnunit-2' } }], nodes);
  assert.deepEqual(o.pods.map((p) => (p.object['spec'] as { nodeName: string }).nodeName), ['sluice-hnunit-2', 'sluice-hnunit-2', 'sluice-hnunit']);
  assert.equal(o.nodes.length, 2);
  assert.throws(() => clusterObjects(plan, [{ kind: 'Pod', metadata: { name: 'a' }, spec: { nodeName: 'elsewhere' } }], nodes),
    (e: unknown) => e instanceof LabError && /Pod a: spec.nodeName "elsewhere" is not a node of the lab/.test(e.message));
});

test('bad counts and zones fail naming the field', () => {
  const bad = (f: () => unknown, field: string): void => assert.throws(f, (e: unknown) => e instanceof LabError && e.field === field);
  bad(() => planNodes(plan, paths, { count: 0 }), 'nodes');
  bad(() => planNodes(plan, paths, { count: MAX_NODES + 1 }), 'nodes');
  bad(() => planNodes(plan, paths, { count: 2, zones: ['a', 'b', 'c'] }), 'zones');
  bad(() => planNodes(plan, paths, { count: 2, zones: ['Bad Zone'] }), 'zones');
  bad(() => planNodes(resolveSpec({ name: 'hnunit', pods: ['a'], cidr: '255.255.255.0/24' }, paths), paths, { count: 2 }), 'cidr');
  bad(() => resolveSpec({ name: 'hnunit', pods: ['node2'] }, paths), 'pods[0]');
  bad(() => resolveSpec({ name: 'hnunit', pods: ['fabric'] }, paths), 'pods[0]');
});
