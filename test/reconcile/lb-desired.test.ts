/** Services and slices → the load balancer's frontend entries, tables and backends per Service port, before ids. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EndpointSlice, Service, SliceEndpoint } from '../../src/lb/model.js';
import { hostPortServices, type HostPortMapping } from '../../src/lb/host-ports.js';
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
  // A result's map is current until the next call (updated in place): what is compared later is read now.
  const [firstA, firstB] = [first.services.get('ns/a:http/TCP'), first.services.get('ns/b:http/TCP')];
  const second = planner.desired({ ...i, slices: [aSlice, slice('b', [ep('10.0.0.4', 'n2')])] });
  assert.notEqual(second, first, 'a change: a new result object');
  assert.equal(second.services.get('ns/a:http/TCP'), firstA, 'a: the same result object (its Maglev table not built again)');
  assert.notEqual(second.services.get('ns/b:http/TCP'), firstB);
  assert.deepEqual(second.services.get('ns/b:http/TCP')?.tables.cluster?.backends, ['10.0.0.4:8080']);
  assert.deepEqual(second, lbDesired({ ...i, slices: [aSlice, slice('b', [ep('10.0.0.4', 'n2')])] }), 'what a fresh planner gives');
  const moved = planner.desired({ ...i, slices: [aSlice, slice('b', [ep('10.0.0.4', 'n2')])], nodeAddresses: ['192.168.1.6'] });
  assert.notEqual(moved.services.get('ns/a:http/TCP'), firstA, 'new node addresses: planned afresh');
});

test('a Service that chose its algorithm gets it; the others the node\'s default', () => {
  const d = lbDesired(input([svc('a'), svc('b', { clusterIPs: ['10.96.0.11'] })], [slice('a', [ep('10.0.0.1', 'n2')]), slice('b', [ep('10.0.0.2', 'n2')])],
    { algorithms: new Map([['ns/b', 'random' as const]]) }));
  assert.equal(d.services.get('ns/a:http/TCP')?.algorithm, 'maglev');
  assert.equal(d.services.get('ns/a:http/TCP')?.tables.cluster?.slots?.length, 251);
  assert.equal(d.services.get('ns/b:http/TCP')?.algorithm, 'random');
  assert.deepEqual(d.services.get('ns/b:http/TCP')?.tables.cluster, { backends: ['10.0.0.2:8080'] });
});

test('changed(): undefined after planning afresh, then only the Service ports whose desired state changed (added, changed, gone)', () => {
  const planner = new LbPlanner();
  const a = svc('a');
  const b = svc('b', { clusterIPs: ['10.96.0.11'] });
  const aSlice = slice('a', [ep('10.0.0.1', 'n2')]);
  const bSlice = slice('b', [ep('10.0.0.3', 'n2')]);
  const i = input([a, b], [aSlice, bSlice]);
  planner.desired(i);
  assert.equal(planner.changed(), undefined);
  const same = planner.desired({ ...i });
  assert.deepEqual(planner.changed(), new Set());
  assert.equal(planner.desired({ ...i }), same, 'nothing changed: the same result');
  planner.desired({ ...i, slices: [aSlice, slice('b', [ep('10.0.0.4', 'n2')])] });
  assert.deepEqual(planner.changed(), new Set(['ns/b:http/TCP']));
  const c = svc('c', { clusterIPs: ['10.96.0.12'] });
  planner.desired({ ...i, services: [a, c], slices: [aSlice] });
  assert.deepEqual(planner.changed(), new Set(['ns/b:http/TCP', 'ns/c:http/TCP']));
  planner.desired({ ...i, services: [a, c], slices: [aSlice], algorithms: new Map([['ns/a', 'random' as const]]) });
  assert.deepEqual(planner.changed(), new Set(['ns/a:http/TCP']), 'an algorithm chosen for a: a only');
});

test('a frontend entry two Services want moves to the other when its holder goes; changed() names both', () => {
  const planner = new LbPlanner();
  const a = svc('a', { type: 'NodePort', ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }] });
  const b = svc('b', { clusterIPs: ['10.96.0.11'], ports: [{ name: 'http', protocol: 'TCP', port: 30080 }], externalIPs: ['192.168.1.5'] });
  const c = svc('c', { clusterIPs: ['10.96.0.12'] });
  planner.desired(input([a, b, c], []));
  const d = planner.desired(input([b, c], []));
  assert.deepEqual(d.conflicts, []);
  assert.deepEqual(d.services.get('ns/b:http/TCP')?.frontends.map((f) => f.key),
    ['10.96.0.11:30080/TCP pod', '192.168.1.5:30080/TCP pod', '192.168.1.5:30080/TCP external']);
  assert.deepEqual(planner.changed(), new Set(['ns/a:http/TCP', 'ns/b:http/TCP']), 'c is not among them');
});

test('an LbPlanner fed a sequence of edits gives what a fresh planner gives, and changed() covers every entry that differs', () => {
  // A deterministic sequence of Service and slice edits (xorshift), conflicts included (shared external IPs).
  let seed = 12345;
  const rand = (n: number): number => {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const names = Array.from({ length: 12 }, (_, k) => `s${k}`);
  const make = (name: string): Service => svc(name, {
    clusterIPs: [`10.96.1.${names.indexOf(name)}`], externalIPs: rand(3) === 0 ? ['192.168.7.7'] : [],
    ...(rand(4) === 0 ? { internalTrafficPolicy: 'Local' as const } : {}),
  });
  const makeSlice = (name: string): EndpointSlice =>
    slice(name, Array.from({ length: 1 + rand(3) }, (_, k) => ep(`10.0.${names.indexOf(name)}.${k + rand(4)}`, rand(2) === 0 ? 'n1' : 'n2')));
  let services = names.slice(0, 8).map(make);
  let slices = services.map((s) => makeSlice(s.name));
  const planner = new LbPlanner();
  let before = planner.desired(input(services, slices, { algorithm: 'random' }));
  for (let step = 0; step < 200; step++) {
    const name = names[rand(names.length)] as string;
    const at = services.findIndex((s) => s.name === name);
    switch (rand(6)) {
      case 0: services = at < 0 ? [...services, make(name)] : services.filter((_, k) => k !== at); break;
      case 1: if (at >= 0) services = services.map((s, k) => (k === at ? make(name) : s)); break;
      case 2: slices = [...slices.filter((s) => s.serviceName !== name), makeSlice(name)]; break;
      case 3: slices = [...slices, { ...makeSlice(name), name: `${name}-${step}` }]; break; // one more slice of a Service
      case 4: { // a slice relabelled to another Service, in its place
        const k = rand(Math.max(1, slices.length));
        slices = slices.map((s, j) => (j === k ? { ...s, serviceName: name } : s));
        break;
      }
      default: slices = slices.map((s) => (s.serviceName === name && rand(2) === 0 ? { ...makeSlice(name), name: s.name } : s));
    }
    const i = input(services, slices, { algorithm: 'random' });
    const after = planner.desired(i);
    assert.deepEqual(after, lbDesired(i), `step ${step}`);
    const changed = planner.changed() ?? new Set();
    for (const [k, d] of after.services) if (before.services.get(k) !== d) assert.ok(changed.has(k), `step ${step}: ${k} changed but not named`);
    for (const k of before.services.keys()) if (!after.services.has(k)) assert.ok(changed.has(k), `step ${step}: ${k} gone but not named`);
    before = after;
  }
});

test('prime() compiles every Service ahead, pausing after each; the first desired() then gives what a fresh planner gives', async () => {
  const planner = new LbPlanner();
  const i = input([svc('a'), svc('b', { clusterIPs: ['10.96.0.11'] })], [slice('a', [ep('10.0.0.1', 'n2')]), slice('b', [ep('10.0.0.2', 'n2')])]);
  let pauses = 0;
  await planner.prime(i, async () => {
    pauses++;
    await Promise.resolve();
  });
  assert.equal(pauses, 2);
  const d = planner.desired(i);
  assert.deepEqual(d, lbDesired(i));
  assert.equal(planner.changed(), undefined, 'the first desired() plans everything');
  await planner.prime(i, async () => {
    pauses++;
    await Promise.resolve();
  });
  assert.equal(pauses, 2, 'after a desired(), prime() does nothing');
});

test('a pod\'s hostPort: every node address in both scopes and 127.0.0.1 for the node\'s sockets, on the local set, never masqueraded; a hostIP only there; a real Service keeps a frontend both want', () => {
  const mappings: HostPortMapping[] = [
    { namespace: 'ns', pod: 'p1', podIP: '10.0.0.7', hostIP: '', hostPort: 30080, containerPort: 8080, protocol: 'TCP' },
    { namespace: 'ns', pod: 'p1', podIP: '10.0.0.7', hostIP: '192.168.1.5', hostPort: 5353, containerPort: 53, protocol: 'UDP' },
  ];
  const hp = hostPortServices(mappings, 'n1');
  const np = svc('np', { type: 'NodePort', ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }] });
  const d = lbDesired(input([np, ...hp.services], [slice('np', [ep('10.0.0.1', 'n2')]), ...hp.slices], { nodeAddresses: ['192.168.1.5', '10.1.1.1'] }));
  const any = d.services.get('ns/hostport:p1:*:30080/TCP:/TCP');
  assert.deepEqual(any?.frontends.map((f) => [f.key, f.kind, f.set, f.masquerade]), [['127.0.0.1:30080/TCP pod', 'HostPort', 'local', false]],
    'the NodePort 30080 keeps both node addresses, in both scopes');
  assert.equal(d.conflicts.filter((c) => c.includes('ns/np:http/TCP keeps it')).length, 4, JSON.stringify(d.conflicts));
  assert.deepEqual(any?.tables.local?.backends, ['10.0.0.7:8080']);
  const alone = lbDesired(input(hp.services, hp.slices, { nodeAddresses: ['192.168.1.5', '10.1.1.1'] })).services.get('ns/hostport:p1:*:30080/TCP:/TCP');
  assert.deepEqual(alone?.frontends.map((f) => [f.key, f.kind, f.set, f.masquerade]), [
    ['10.1.1.1:30080/TCP pod', 'HostPort', 'local', false], ['10.1.1.1:30080/TCP external', 'HostPort', 'local', false],
    ['192.168.1.5:30080/TCP pod', 'HostPort', 'local', false], ['192.168.1.5:30080/TCP external', 'HostPort', 'local', false],
    ['127.0.0.1:30080/TCP pod', 'HostPort', 'local', false],
  ]);
  const one = d.services.get('ns/hostport:p1:192.168.1.5:5353/UDP:/UDP');
  assert.deepEqual(one?.frontends.map((f) => f.key), ['192.168.1.5:5353/UDP pod', '192.168.1.5:5353/UDP external']);
  assert.deepEqual(one?.tables.local?.backends, ['10.0.0.7:53']);
});
