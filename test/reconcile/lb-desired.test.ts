/** Services and slices → the load balancer's frontend entries, tables and backends per Service port, before ids. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EndpointSlice, Service, SliceEndpoint } from '../../src/lb/model.js';
import { lbDesired, LbPlanner, type LbDesiredInput } from '../../src/reconcile/lb-desired.js';
import { lbEndpoint, lbService, lbSlice } from '../helpers/lb-fixtures.js';

const node = { name: 'n1', zone: 'z1' };
const svc = (name: string, extra: Partial<Service> = {}): Service => lbService(name, '10.96.0.10', extra);
const ep = (ip: string, nodeName: string, c: Partial<SliceEndpoint> = {}): SliceEndpoint => lbEndpoint(ip, { nodeName, ...c });
const slice = (service: string, endpoints: SliceEndpoint[]): EndpointSlice => lbSlice(service, endpoints);
function input(services: Service[], slices: EndpointSlice[], extra: Partial<LbDesiredInput> = {}): LbDesiredInput {
  return { services, slices, node, nodeAddresses: ['192.168.1.5'], algorithm: 'maglev', maglevTableSize: 251, ...extra };
}

test('a ClusterIP Service port: one pod-scope frontend on the cluster table; Maglev gives each backend ⌊M/N⌋ or ⌈M/N⌉ slots', () => {
  const d = lbDesired(input([svc('web')], [slice('web', [ep('10.0.0.1', 'n2'), ep('10.0.0.2', 'n1'), ep('10.0.0.3', 'n2')])]));
  assert.deepEqual([...d.services.keys()], ['ns/web:http/TCP']);
  const s = d.services.get('ns/web:http/TCP');
  assert.deepEqual(s?.frontends.map((f) => [f.key, f.kind, f.set, f.affinitySeconds, f.emptyDrop]), [['10.96.0.10:80/TCP pod', 'ClusterIP', 'cluster', 0, true]],
    'endpoints exist: were the table empty, the frontend would drop (it is not)');
  assert.deepEqual(s?.tables.cluster?.backends, ['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080']);
  assert.equal(s?.tables.local, undefined, 'no frontend uses the local set');
  const slots = s?.tables.cluster?.slots;
  assert.equal(slots?.length, 251);
  const shares = [0, 0, 0];
  for (const i of slots ?? []) shares[i] = (shares[i] ?? 0) + 1;
  for (const n of shares) assert.ok(n === 83 || n === 84, `share ${n} of 251 for 3 backends`);
  assert.deepEqual([...(s?.backends.values() ?? [])].map((b) => [b.key, b.selectable]), [['10.0.0.1:8080', true], ['10.0.0.2:8080', true], ['10.0.0.3:8080', true]]);
});

test('random: the table lists each backend once, no slots', () => {
  const d = lbDesired(input([svc('web')], [slice('web', [ep('10.0.0.2', 'n2'), ep('10.0.0.1', 'n2')])], { algorithm: 'random' }));
  const t = d.services.get('ns/web:http/TCP')?.tables.cluster;
  assert.deepEqual(t, { backends: ['10.0.0.1:8080', '10.0.0.2:8080'] });
});

test('NodePort under externalTrafficPolicy Local: each node address in both scopes; outside traffic gets the local set, pods the cluster set', () => {
  const s = svc('np', { type: 'NodePort', ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }], externalTrafficPolicy: 'Local', affinitySeconds: 60 });
  const d = lbDesired(input([s], [slice('np', [ep('10.0.0.1', 'n1'), ep('10.0.0.2', 'n2')])], { nodeAddresses: ['192.168.1.5', '10.1.1.1', 'fd00::5'] }));
  const got = d.services.get('ns/np:http/TCP');
  assert.deepEqual(got?.frontends.map((f) => [f.key, f.set, f.affinitySeconds]), [
    ['10.1.1.1:30080/TCP pod', 'cluster', 60], ['10.1.1.1:30080/TCP external', 'local', 60],
    ['192.168.1.5:30080/TCP pod', 'cluster', 60], ['192.168.1.5:30080/TCP external', 'local', 60],
    ['10.96.0.10:80/TCP pod', 'cluster', 60],
  ]);
  assert.deepEqual(got?.tables.cluster?.backends, ['10.0.0.1:8080', '10.0.0.2:8080']);
  assert.deepEqual(got?.tables.local?.backends, ['10.0.0.1:8080']);
  assert.ok(got?.frontends.every((f) => !f.masquerade), 'Local: the client\'s address is kept');
  const cluster = lbDesired(input([{ ...s, externalTrafficPolicy: 'Cluster' }], [slice('np', [ep('10.0.0.1', 'n1'), ep('10.0.0.2', 'n2')])]));
  assert.deepEqual(cluster.services.get('ns/np:http/TCP')?.frontends.map((f) => [f.key, f.set, f.masquerade]), [
    ['192.168.1.5:30080/TCP pod', 'cluster', false], ['192.168.1.5:30080/TCP external', 'cluster', true], ['10.96.0.10:80/TCP pod', 'cluster', false],
  ], 'Cluster: outside traffic is masqueraded (its backend may be on another node)');
});

test('internalTrafficPolicy Local with no local endpoint: the ClusterIP uses an empty local table and drops; no endpoint at all rejects', () => {
  const d = lbDesired(input([svc('loc', { internalTrafficPolicy: 'Local' }), svc('none', { clusterIPs: ['10.96.0.11'] })], [slice('loc', [ep('10.0.0.2', 'n2')])]));
  const loc = d.services.get('ns/loc:http/TCP');
  assert.deepEqual(loc?.frontends.map((f) => [f.set, f.emptyDrop]), [['local', true]]);
  assert.deepEqual(loc?.tables.local, { backends: [] });
  assert.deepEqual([...(loc?.backends.keys() ?? [])], ['10.0.0.2:8080'], 'the endpoint elsewhere still serves existing flows');
  assert.equal(loc?.backends.get('10.0.0.2:8080')?.selectable, false);
  const none = d.services.get('ns/none:http/TCP');
  assert.deepEqual(none?.frontends.map((f) => [f.set, f.emptyDrop]), [['cluster', false]]);
  assert.deepEqual(none?.tables.cluster, { backends: [] });
});

test('a serving-terminating endpoint beside Ready ones is a backend but not selectable; a not-serving one is no backend', () => {
  const d = lbDesired(input([svc('web')], [slice('web', [
    ep('10.0.0.1', 'n2'),
    ep('10.0.0.2', 'n2', { ready: false, serving: true, terminating: true }),
    ep('10.0.0.3', 'n2', { ready: false, serving: false, terminating: true }),
    ep('10.0.0.4', 'n2', { ready: false, serving: false, terminating: false }),
  ])]));
  const s = d.services.get('ns/web:http/TCP');
  assert.deepEqual(s?.tables.cluster?.backends, ['10.0.0.1:8080']);
  assert.deepEqual([...(s?.backends.values() ?? [])].map((b) => [b.key, b.selectable]), [['10.0.0.1:8080', true], ['10.0.0.2:8080', false]]);
});

test('only serving-terminating endpoints: they are the table (kube-proxy\'s fallback)', () => {
  const d = lbDesired(input([svc('web')], [slice('web', [ep('10.0.0.2', 'n2', { ready: false, serving: true, terminating: true })])]));
  const s = d.services.get('ns/web:http/TCP');
  assert.deepEqual(s?.tables.cluster?.backends, ['10.0.0.2:8080']);
  assert.equal(s?.backends.get('10.0.0.2:8080')?.selectable, true);
});

test('two Service ports wanting one frontend entry: the first by key keeps it, the conflict is reported', () => {
  const a = svc('a', { type: 'NodePort', ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }] });
  const b = svc('b', { clusterIPs: ['10.96.0.11'], ports: [{ name: 'http', protocol: 'TCP', port: 30080 }], externalIPs: ['192.168.1.5'] });
  const d = lbDesired(input([a, b], []));
  assert.deepEqual(d.services.get('ns/b:http/TCP')?.frontends.map((f) => f.key), ['10.96.0.11:30080/TCP pod']);
  assert.deepEqual(d.conflicts, [
    '192.168.1.5:30080/TCP pod: wanted by ns/a:http/TCP and ns/b:http/TCP; ns/a:http/TCP keeps it',
    '192.168.1.5:30080/TCP external: wanted by ns/a:http/TCP and ns/b:http/TCP; ns/a:http/TCP keeps it',
  ]);
});

test('the planner keeps a Service\'s result while its object and slices stay the same; a changed Service is planned again', () => {
  const planner = new LbPlanner();
  const a = svc('a');
  const b = svc('b', { clusterIPs: ['10.96.0.11'] });
  const aSlice = slice('a', [ep('10.0.0.1', 'n2'), ep('10.0.0.2', 'n2')]);
  const i = input([a, b], [aSlice, slice('b', [ep('10.0.0.3', 'n2')])]);
  const first = planner.desired(i);
  const second = planner.desired({ ...i, slices: [aSlice, slice('b', [ep('10.0.0.4', 'n2')])] });
  assert.equal(second.services.get('ns/a:http/TCP'), first.services.get('ns/a:http/TCP'), 'a: the same result object (its Maglev table not built again)');
  assert.notEqual(second.services.get('ns/b:http/TCP'), first.services.get('ns/b:http/TCP'));
  assert.deepEqual(second.services.get('ns/b:http/TCP')?.tables.cluster?.backends, ['10.0.0.4:8080']);
  assert.deepEqual(second, lbDesired({ ...i, slices: [aSlice, slice('b', [ep('10.0.0.4', 'n2')])] }), 'what a fresh planner gives');
  const moved = planner.desired({ ...i, slices: [aSlice, slice('b', [ep('10.0.0.4', 'n2')])], nodeAddresses: ['192.168.1.6'] });
  assert.notEqual(moved.services.get('ns/a:http/TCP'), first.services.get('ns/a:http/TCP'), 'new node addresses: planned afresh');
});

test('a Service that chose its algorithm gets it; the others the node\'s default', () => {
  const d = lbDesired(input([svc('a'), svc('b', { clusterIPs: ['10.96.0.11'] })], [slice('a', [ep('10.0.0.1', 'n2')]), slice('b', [ep('10.0.0.2', 'n2')])],
    { algorithms: new Map([['ns/b', 'random' as const]]) }));
  assert.equal(d.services.get('ns/a:http/TCP')?.algorithm, 'maglev');
  assert.equal(d.services.get('ns/a:http/TCP')?.tables.cluster?.slots?.length, 251);
  assert.equal(d.services.get('ns/b:http/TCP')?.algorithm, 'random');
  assert.deepEqual(d.services.get('ns/b:http/TCP')?.tables.cluster, { backends: ['10.0.0.2:8080'] });
});
