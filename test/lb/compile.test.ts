/** Services and EndpointSlices → frontends and backends, as kube-proxy would program them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileServices } from '../../src/lb/compile.js';
import type { EndpointSlice, Service, SliceEndpoint } from '../../src/lb/model.js';

const node = { name: 'n1', zone: 'z1' };
function svc(name: string, extra: Partial<Service> = {}): Service {
  return {
    namespace: 'ns', name, labels: {}, type: 'ClusterIP', clusterIPs: ['10.96.0.10'],
    ports: [{ name: 'http', protocol: 'TCP', port: 80 }], externalIPs: [], loadBalancerIPs: [],
    externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster', ...extra,
  };
}
const ready = (ip: string, nodeName = 'n2'): SliceEndpoint => ({ addresses: [ip], ready: true, serving: true, terminating: false, nodeName });
function slice(name: string, service: string, ports: EndpointSlice['ports'], endpoints: SliceEndpoint[], addressType = 'IPv4'): EndpointSlice {
  return { namespace: 'ns', name, serviceName: service, addressType, ports, endpoints };
}
const backends = (r: ReturnType<typeof compileServices>, key: string): string[] =>
  (r.frontends.get(key)?.backends ?? []).map((b) => `${b.ip}:${b.port}`);

test('all slices of a Service merge, whoever manages them; a named port resolves per slice (per endpoint)', () => {
  const r = compileServices([svc('web')], [
    slice('web-a', 'web', [{ name: 'http', protocol: 'TCP', port: 8080 }], [ready('10.0.0.1')]),
    slice('web-b', 'web', [{ name: 'http', protocol: 'TCP', port: 9090 }], [ready('10.0.0.2')]),
    slice('web-other-port', 'web', [{ name: 'metrics', protocol: 'TCP', port: 9100 }], [ready('10.0.0.3')]),
    slice('web-v6', 'web', [{ name: 'http', protocol: 'TCP', port: 8080 }], [ready('fd00::1')], 'IPv6'),
    slice('db', 'db', [{ name: 'http', protocol: 'TCP', port: 5432 }], [ready('10.0.0.9')]),
  ], node);
  assert.deepEqual(backends(r, '10.96.0.10:80/TCP'), ['10.0.0.1:8080', '10.0.0.2:9090']);
});

test('the same port number on TCP and UDP are two frontends (protocol is part of the key)', () => {
  const r = compileServices([svc('dns', { ports: [{ name: 'dns', protocol: 'UDP', port: 53 }, { name: 'dns-tcp', protocol: 'TCP', port: 53 }] })], [
    slice('dns-1', 'dns', [{ name: 'dns', protocol: 'UDP', port: 53 }, { name: 'dns-tcp', protocol: 'TCP', port: 5353 }], [ready('10.0.0.5')]),
  ], node);
  assert.deepEqual([...r.frontends.keys()], ['10.96.0.10:53/TCP', '10.96.0.10:53/UDP']);
  assert.deepEqual(backends(r, '10.96.0.10:53/UDP'), ['10.0.0.5:53']);
  assert.deepEqual(backends(r, '10.96.0.10:53/TCP'), ['10.0.0.5:5353']);
});

test('Services kube-proxy ignores stay ignored, each with why', () => {
  const r = compileServices([
    svc('other', { labels: { 'service.kubernetes.io/service-proxy-name': 'foo' } }),
    svc('hl', { labels: { 'service.kubernetes.io/headless': '' } }),
    svc('none', { clusterIPs: ['None'] }),
    svc('ext', { type: 'ExternalName', clusterIPs: [] }),
  ], [], node);
  assert.equal(r.frontends.size, 0);
  assert.deepEqual(r.ignored, [
    'ns/other: label service.kubernetes.io/service-proxy-name=foo', 'ns/hl: label service.kubernetes.io/headless',
    'ns/none: clusterIP None (headless)', 'ns/ext: type ExternalName',
  ]);
});

test('no usable endpoint anywhere rejects; Local policy with endpoints elsewhere only drops', () => {
  const r = compileServices([svc('empty'), svc('local', { clusterIPs: ['10.96.0.11'], internalTrafficPolicy: 'Local' })], [
    slice('local-1', 'local', [{ name: 'http', protocol: 'TCP', port: 8080 }], [ready('10.0.0.7', 'n2')]),
  ], node);
  assert.equal(r.frontends.get('10.96.0.10:80/TCP')?.whenEmpty, 'reject');
  assert.deepEqual(backends(r, '10.96.0.11:80/TCP'), []);
  assert.equal(r.frontends.get('10.96.0.11:80/TCP')?.whenEmpty, 'drop');
});

test('NodePort, external and load-balancer IPs follow externalTrafficPolicy; Local also carries the cluster set for local pods', () => {
  const s = svc('lb', {
    type: 'LoadBalancer', ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }], externalIPs: ['203.0.113.250'],
    loadBalancerIPs: ['198.51.100.10'], externalTrafficPolicy: 'Local', affinitySeconds: 10800,
  });
  const r = compileServices([s], [slice('lb-1', 'lb', [{ name: 'http', protocol: 'TCP', port: 8080 }], [ready('10.0.0.1', 'n1'), ready('10.0.0.2', 'n2')])], node);
  assert.deepEqual([...r.frontends.keys()], ['*:30080/TCP', '10.96.0.10:80/TCP', '198.51.100.10:80/TCP', '203.0.113.250:80/TCP']);
  assert.deepEqual(backends(r, '10.96.0.10:80/TCP'), ['10.0.0.1:8080', '10.0.0.2:8080'], 'ClusterIP: internal policy Cluster');
  for (const key of ['*:30080/TCP', '198.51.100.10:80/TCP', '203.0.113.250:80/TCP']) {
    const f = r.frontends.get(key);
    assert.deepEqual(backends(r, key), ['10.0.0.1:8080'], `${key}: this node's endpoint only`);
    assert.deepEqual(f?.clusterBackends?.map((b) => b.ip), ['10.0.0.1', '10.0.0.2']);
    assert.equal(f?.affinitySeconds, 10800);
  }
  assert.equal(r.frontends.get('*:30080/TCP')?.kind, 'NodePort');
});

test('a terminating-but-serving endpoint serves as the fallback and is marked terminating; an address listed twice counts once, Ready first', () => {
  const term: SliceEndpoint = { addresses: ['10.0.0.4'], ready: false, serving: true, terminating: true, nodeName: 'n2' };
  const r = compileServices([svc('web')], [slice('a', 'web', [{ name: 'http', protocol: 'TCP', port: 8080 }], [term])], node);
  assert.deepEqual(r.frontends.get('10.96.0.10:80/TCP')?.backends, [{ ip: '10.0.0.4', port: 8080, state: 'terminating' }]);
  const twice = compileServices([svc('web')], [
    slice('a', 'web', [{ name: 'http', protocol: 'TCP', port: 8080 }], [{ ...term }]),
    slice('b', 'web', [{ name: 'http', protocol: 'TCP', port: 8080 }], [ready('10.0.0.4')]),
  ], node);
  assert.deepEqual(twice.frontends.get('10.96.0.10:80/TCP')?.backends, [{ ip: '10.0.0.4', port: 8080, state: 'active' }]);
});
