/** API objects (as the informers store them) → the load balancer's input, field by field as kube-proxy reads them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ENDPOINT_SLICES, NODES, PODS, SERVICES } from '../../src/agent/k8s/resources.js';
import { DEFAULT_AFFINITY_SECONDS, hostPortsOf, lbInputFrom, lbServicesOf, lbSlicesOf, localNodeAddresses, localNodeOf, serviceOf, sliceOf } from '../../src/agent/lb-input.js';
import { compileServices } from '../../src/lb/compile.js';

const slimService = (raw: unknown) => {
  const s = SERVICES.slim(raw);
  assert.ok(s !== undefined);
  return s;
};
const slimSlice = (raw: unknown) => {
  const s = ENDPOINT_SLICES.slim(raw);
  assert.ok(s !== undefined);
  return s;
};
/** The whole input as the snapshot puts it together from its parts. */
const lbInputOf = (node: string, nodes: Parameters<typeof lbInputFrom>[1], services: Parameters<typeof lbServicesOf>[0], slices: Parameters<typeof lbSlicesOf>[0]) =>
  lbInputFrom(node, nodes, lbServicesOf(services), lbSlicesOf(slices));

test('a Service: API defaults applied (type ClusterIP, protocol TCP, unnamed port ""), clusterIP when clusterIPs is absent', () => {
  const r = serviceOf(slimService({ metadata: { name: 'web', namespace: 'ns', labels: { a: 'b' } }, spec: { clusterIP: '10.96.0.10', ports: [{ port: 80, targetPort: 8080 }] } }));
  assert.ok(r.ok);
  assert.equal(r.value.type, 'ClusterIP');
  assert.deepEqual(r.value.clusterIPs, ['10.96.0.10']);
  assert.deepEqual(r.value.ports, [{ name: '', protocol: 'TCP', port: 80 }]);
  assert.deepEqual(r.value.labels, { a: 'b' });
  assert.equal(r.value.affinitySeconds, undefined);
  assert.equal(r.value.internalTrafficPolicy, 'Cluster');
  assert.equal(r.value.externalTrafficPolicy, 'Cluster');
});

test('a LoadBalancer Service: clusterIPs, nodePorts, external and ingress IPs, ClientIP affinity and Local policies', () => {
  const r = serviceOf(slimService({
    metadata: { name: 'lb', namespace: 'ns' },
    spec: {
      type: 'LoadBalancer', clusterIP: '10.96.0.1', clusterIPs: ['10.96.0.11', 'fd00::11'],
      ports: [{ name: 'dns', protocol: 'UDP', port: 53, nodePort: 30053 }, { name: 'web', protocol: 'TCP', port: 80 }],
      externalIPs: ['203.0.113.250'], sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 125 } },
      externalTrafficPolicy: 'Local', internalTrafficPolicy: 'Local',
    },
    status: { loadBalancer: { ingress: [{ ip: '198.51.100.10' }, { hostname: 'lb.example' }] } },
  }));
  assert.ok(r.ok);
  assert.deepEqual(r.value.clusterIPs, ['10.96.0.11', 'fd00::11'], 'clusterIPs wins over clusterIP');
  assert.deepEqual(r.value.ports, [{ name: 'dns', protocol: 'UDP', port: 53, nodePort: 30053 }, { name: 'web', protocol: 'TCP', port: 80 }]);
  assert.deepEqual(r.value.externalIPs, ['203.0.113.250']);
  assert.deepEqual(r.value.loadBalancerIPs, ['198.51.100.10'], 'a hostname-only ingress has no IP to program');
  assert.equal(r.value.affinitySeconds, 125);
  assert.equal(r.value.externalTrafficPolicy, 'Local');
  assert.equal(r.value.internalTrafficPolicy, 'Local');
});

test('ClientIP affinity without a config gets the API default timeout; an out-of-range one leaves the Service out', () => {
  const base = { metadata: { name: 's', namespace: 'ns' }, spec: { clusterIP: '10.96.0.1', ports: [{ port: 80 }], sessionAffinity: 'ClientIP' } };
  const r = serviceOf(slimService(base));
  assert.ok(r.ok);
  assert.equal(r.value.affinitySeconds, DEFAULT_AFFINITY_SECONDS);
  const bad = serviceOf(slimService({ ...base, spec: { ...base.spec, sessionAffinityConfig: { clientIP: { timeoutSeconds: 90000 } } } }));
  assert.equal(bad.ok, false);
  assert.match(bad.ok ? '' : bad.error, /timeoutSeconds: want 1\.\.86400, got 90000/);
});

test('a malformed Service is named by field; the others are still adapted', () => {
  const good = slimService({ metadata: { name: 'good', namespace: 'ns' }, spec: { clusterIP: '10.96.0.1', ports: [{ port: 80 }] } });
  const badPort = slimService({ metadata: { name: 'bad-port', namespace: 'ns' }, spec: { clusterIP: '10.96.0.2', ports: [{ port: 70000 }] } });
  const badProto = slimService({ metadata: { name: 'bad-proto', namespace: 'ns' }, spec: { clusterIP: '10.96.0.3', ports: [{ port: 80, protocol: 'ICMP' }] } });
  const badType = slimService({ metadata: { name: 'bad-type', namespace: 'ns' }, spec: { type: 'Magic', clusterIP: '10.96.0.4' } });
  const { input, problems } = lbInputOf('n1', [], [good, badPort, badProto, badType], []);
  assert.deepEqual(input.services.map((s) => s.name), ['good']);
  assert.deepEqual(problems.map((p) => [p.kind, p.name, p.severity]), [
    ['Service', 'ns/bad-port', 'error'], ['Service', 'ns/bad-proto', 'error'], ['Service', 'ns/bad-type', 'error'],
  ]);
  assert.match(problems[0]?.message ?? '', /^spec\.ports\[0\]\.port: want a port 1\.\.65535, got 70000/);
  assert.match(problems[1]?.message ?? '', /^spec\.ports\[0\]\.protocol: want one of TCP, UDP, SCTP, got "ICMP"/);
  assert.match(problems[2]?.message ?? '', /^spec\.type: /);
});

test('an EndpointSlice: its Service from the service-name label, whoever manages it; nil ready/serving mean true, nil terminating false', () => {
  const r = sliceOf(slimSlice({
    metadata: { name: 'web-abc', namespace: 'ns', labels: { 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': 'someone-else' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }, { port: 9090 }, { name: 'noport' }],
    endpoints: [
      { addresses: ['10.0.0.1'], nodeName: 'n1', zone: 'z1', hints: { forZones: [{ name: 'z1' }], forNodes: [{ name: 'n1' }] } },
      { addresses: ['10.0.0.2'], conditions: { ready: false, serving: true, terminating: true } },
    ],
  }));
  assert.ok(r?.ok);
  assert.equal(r.value.serviceName, 'web');
  assert.deepEqual(r.value.ports, [{ name: 'http', protocol: 'TCP', port: 8080 }, { name: '', protocol: 'TCP', port: 9090 }]);
  assert.deepEqual(r.warnings, ['ports[2]: no port number: skipped']);
  assert.deepEqual(r.value.endpoints, [
    { addresses: ['10.0.0.1'], ready: true, serving: true, terminating: false, nodeName: 'n1', zone: 'z1', hints: { forZones: ['z1'], forNodes: ['n1'] } },
    { addresses: ['10.0.0.2'], ready: false, serving: true, terminating: true },
  ]);
});

test('a slice without the service-name label belongs to no Service: skipped without a problem', () => {
  assert.equal(sliceOf(slimSlice({ metadata: { name: 'orphan', namespace: 'ns' }, addressType: 'IPv4', endpoints: [] })), undefined);
  const { input, problems } = lbInputOf('n1', [], [], [slimSlice({ metadata: { name: 'orphan', namespace: 'ns' }, addressType: 'IPv4' })]);
  assert.deepEqual(input.slices, []);
  assert.deepEqual(problems, []);
});

test('a slice with a non-boolean condition is left out and named', () => {
  const { input, problems } = lbInputOf('n1', [], [], [slimSlice({
    metadata: { name: 'bad', namespace: 'ns', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4', endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: 'yes' } }],
  })]);
  assert.deepEqual(input.slices, []);
  assert.deepEqual(problems.map((p) => [p.kind, p.name, p.message]), [['EndpointSlice', 'ns/bad', 'endpoints[0].conditions.ready: want a boolean: its endpoints are left out']]);
});

test('the local node: its name and its Node\'s zone label (none when the Node is not known)', () => {
  const nodes = [NODES.slim({ metadata: { name: 'n1', labels: { 'topology.kubernetes.io/zone': 'z1' } } }), NODES.slim({ metadata: { name: 'n2' } })]
    .filter((n) => n !== undefined);
  assert.deepEqual(localNodeOf('n1', nodes), { name: 'n1', zone: 'z1' });
  assert.deepEqual(localNodeOf('n2', nodes), { name: 'n2' });
  assert.deepEqual(localNodeOf('n3', nodes), { name: 'n3' });
});

test('the local node\'s addresses: InternalIP and ExternalIP, each once; none for an unknown Node', () => {
  const nodes = [NODES.slim({
    metadata: { name: 'n1' },
    status: { addresses: [{ type: 'InternalIP', address: '192.168.1.5' }, { type: 'Hostname', address: 'n1' }, { type: 'ExternalIP', address: '203.0.113.5' }, { type: 'InternalIP', address: '192.168.1.5' }] },
  })].filter((n) => n !== undefined);
  assert.deepEqual(localNodeAddresses('n1', nodes), ['192.168.1.5', '203.0.113.5']);
  assert.deepEqual(localNodeAddresses('n2', nodes), []);
  assert.deepEqual(lbInputOf('n1', nodes, [], []).input.nodeAddresses, ['192.168.1.5', '203.0.113.5']);
});

test('the slice shape keeps topology hints: PreferSameZone from API objects selects this zone\'s endpoints', () => {
  const nodes = [NODES.slim({ metadata: { name: 'n1', labels: { 'topology.kubernetes.io/zone': 'z1' } } })].filter((n) => n !== undefined);
  const service = slimService({ metadata: { name: 'web', namespace: 'ns' }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] } });
  const slice = slimSlice({
    metadata: { name: 'web-1', namespace: 'ns', labels: { 'kubernetes.io/service-name': 'web' }, managedFields: [{ manager: 'x' }] },
    addressType: 'IPv4', ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    endpoints: [
      { addresses: ['10.0.0.1'], conditions: { ready: true }, zone: 'z1', hints: { forZones: [{ name: 'z1' }] } },
      { addresses: ['10.0.0.2'], conditions: { ready: true }, zone: 'z2', hints: { forZones: [{ name: 'z2' }] } },
    ],
  });
  const { input } = lbInputOf('n1', nodes, [service], [slice]);
  const compiled = compileServices(input.services, input.slices, input.node);
  assert.deepEqual(compiled.frontends.get('10.96.0.10:80/TCP')?.backends.map((b) => b.ip), ['10.0.0.1']);
});

test('a Service\'s lb-algorithm annotation picks its algorithm; another value is a warning; other annotations are not kept', () => {
  const svcWith = (name: string, annotations: Record<string, string>) => slimService({
    metadata: { name, namespace: 'ns', annotations: { ...annotations, 'kubectl.kubernetes.io/last-applied-configuration': '{"big":true}' } },
    spec: { clusterIP: '10.96.0.1', ports: [{ port: 80 }] },
  });
  const random = svcWith('r', { 'service.sluice.io/lb-algorithm': 'random' });
  assert.deepEqual(random.metadata.annotations, { 'service.sluice.io/lb-algorithm': 'random' }, 'the slim Service keeps that one annotation only');
  const { input, problems } = lbInputOf('n1', [], [random, svcWith('m', { 'service.sluice.io/lb-algorithm': 'maglev' }), svcWith('x', { 'service.sluice.io/lb-algorithm': 'rr' }), svcWith('d', {})], []);
  assert.deepEqual([...input.algorithms], [['ns/r', 'random'], ['ns/m', 'maglev']]);
  assert.deepEqual(input.services.map((s) => s.name), ['r', 'm', 'x', 'd'], 'a bad annotation does not leave the Service out');
  assert.deepEqual(problems.map((p) => [p.name, p.severity]), [['ns/x', 'warning']]);
  assert.match(problems[0]?.message ?? '', /service\.sluice\.io\/lb-algorithm: want maglev or random, got "rr"/);
});

test('an address that is not an IP is left out with a warning naming its field; the Service and slice are still used', () => {
  const service = slimService({
    metadata: { name: 'web', namespace: 'ns' },
    spec: { clusterIPs: ['10.96.0.10'], ports: [{ port: 80 }], externalIPs: ['203.0.113.9', '300.1.1.1'] },
    status: { loadBalancer: { ingress: [{ ip: 'lb.example' }, { ip: '198.51.100.7' }] } },
  });
  const headless = slimService({ metadata: { name: 'hl', namespace: 'ns' }, spec: { clusterIP: 'None', ports: [{ port: 80 }] } });
  const slice = slimSlice({
    metadata: { name: 'web-1', namespace: 'ns', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4', ports: [{ port: 8080 }], endpoints: [{ addresses: ['10.0.0.1'] }, { addresses: ['010.0.0.2'] }],
  });
  const { input, problems } = lbInputOf('n1', [], [service, headless], [slice]);
  assert.deepEqual(input.services[0]?.externalIPs, ['203.0.113.9']);
  assert.deepEqual(input.services[0]?.loadBalancerIPs, ['198.51.100.7']);
  assert.deepEqual(input.services[1]?.clusterIPs, ['None'], '"None" stays: it marks a headless Service');
  assert.deepEqual(input.slices[0]?.endpoints.map((e) => e.addresses), [['10.0.0.1'], []]);
  assert.deepEqual(problems.map((p) => `${p.kind} ${p.name}: ${p.message}`), [
    'Service ns/web: spec.externalIPs[1]: "300.1.1.1" is not an IP address: left out',
    'Service ns/web: status.loadBalancer.ingress[0].ip: "lb.example" is not an IP address: left out',
    'EndpointSlice ns/web-1: endpoints[1].addresses[0]: "010.0.0.2" is not an IP address: left out',
  ]);
});

test('hostPorts: the ports of this node\'s pods that have an address, each a Service of type HostPort; host-network, other nodes\', ended pods and bad ports left out, the bad ones named', () => {
  const pod = (name: string, spec: Record<string, unknown>, status: Record<string, unknown> = { phase: 'Running', podIP: '10.0.0.7' }) => {
    const p = PODS.slim({ metadata: { name, namespace: 'ns' }, spec, status });
    assert.ok(p !== undefined);
    return p;
  };
  const ports = (...list: Record<string, unknown>[]) => ({ nodeName: 'n1', containers: [{ name: 'c', ports: list }] });
  const pods = [
    pod('web', ports({ containerPort: 8080, hostPort: 30080 }, { containerPort: 53, hostPort: 5353, protocol: 'UDP', hostIP: '192.168.1.5' }, { containerPort: 9090 })),
    pod('any', ports({ containerPort: 80, hostPort: 8000, hostIP: '0.0.0.0' })),
    pod('host', { ...ports({ containerPort: 80, hostPort: 8001 }), hostNetwork: true }),
    pod('elsewhere', { ...ports({ containerPort: 80, hostPort: 8002 }), nodeName: 'n2' }),
    pod('done', ports({ containerPort: 80, hostPort: 8003 }), { phase: 'Succeeded', podIP: '10.0.0.8' }),
    pod('pending', ports({ containerPort: 80, hostPort: 8004 }), { phase: 'Pending' }),
    pod('bad', ports({ containerPort: 80, hostPort: 70000 }, { containerPort: 80, hostPort: 8005, hostIP: 'fd00::1' })),
  ];
  const hp = hostPortsOf(pods, 'n1');
  assert.deepEqual(hp.mappings.map((m) => [m.pod, m.hostIP, m.hostPort, m.containerPort, m.protocol, m.podIP]), [
    ['web', '', 30080, 8080, 'TCP', '10.0.0.7'], ['web', '192.168.1.5', 5353, 53, 'UDP', '10.0.0.7'], ['any', '', 8000, 80, 'TCP', '10.0.0.7'],
  ]);
  assert.deepEqual(hp.problems.map((p) => [p.kind, p.name, p.message]), [
    ['Pod', 'ns/bad', 'spec.containers[0].ports[0].hostPort: want a port 1..65535, got 70000: the hostPort is not mapped'],
    ['Pod', 'ns/bad', 'spec.containers[0].ports[1].hostIP: want an IPv4 address, got "fd00::1": the hostPort is not mapped'],
  ]);
  const input = lbInputFrom('n1', [], lbServicesOf([]), lbSlicesOf([]), hp).input;
  const frontends = compileServices(input.services, input.slices, input.node).frontends;
  assert.deepEqual([...frontends.values()].map((f) => [f.key, f.kind, f.backends.map((b) => `${b.ip}:${b.port}`)]), [
    ['*:30080/TCP', 'HostPort', ['10.0.0.7:8080']], ['*:8000/TCP', 'HostPort', ['10.0.0.7:80']], ['192.168.1.5:5353/UDP', 'HostPort', ['10.0.0.7:53']],
  ]);
  assert.equal(hostPortsOf(pods.slice(2, 6), 'n1'), hostPortsOf([], 'n1'), 'none: the one empty part (the load balancer\'s input stays the same object)');
  const again = lbInputFrom('n1', [], lbServicesOf([slimService({ metadata: { name: 'web', namespace: 'ns' }, spec: { clusterIP: '10.96.0.10', ports: [{ port: 80 }] } })]), lbSlicesOf([]), hp).input;
  assert.deepEqual(again.services.slice(1), [...input.services], 'a Service changing: the part\'s hostPort Services come again as the same objects (the planner compiles them once)');
  for (const [i, svc] of input.services.entries()) assert.equal(again.services[i + 1], svc);
});
