/** The Services whose health kube-proxy serves, and their local endpoint counts (LocalReadyEndpoints). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { healthChecks } from '../../src/lb/health.js';
import type { EndpointSlice, Service, SliceEndpoint } from '../../src/lb/model.js';

const node = { name: 'n1' };
function svc(name: string, extra: Partial<Service> = {}): Service {
  return {
    namespace: 'ns', name, labels: {}, type: 'LoadBalancer', clusterIPs: ['10.96.0.10'],
    ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }], externalIPs: [], loadBalancerIPs: [],
    externalTrafficPolicy: 'Local', internalTrafficPolicy: 'Cluster', healthCheckNodePort: 32000, ...extra,
  };
}
const ep = (ip: string, nodeName: string, c: Partial<Pick<SliceEndpoint, 'ready' | 'serving' | 'terminating'>> = {}): SliceEndpoint =>
  ({ addresses: [ip], ready: true, serving: true, terminating: false, nodeName, ...c });
const slice = (name: string, service: string, endpoints: SliceEndpoint[], ports: EndpointSlice['ports'] = [{ name: 'http', protocol: 'TCP', port: 8080 }]): EndpointSlice =>
  ({ namespace: 'ns', name, serviceName: service, addressType: 'IPv4', ports, endpoints });

test('a LoadBalancer under Local counts this node\'s Ready endpoint addresses; other nodes\' and terminating ones do not count', () => {
  const r = healthChecks([svc('web')], [slice('web-1', 'web', [
    ep('10.0.0.1', 'n1'), ep('10.0.0.2', 'n1'), ep('10.0.1.1', 'n2'),
    ep('10.0.0.3', 'n1', { ready: false, serving: true, terminating: true }),
    ep('10.0.0.4', 'n1', { ready: false, serving: false, terminating: false }),
  ])], node);
  assert.deepEqual(r, [{ namespace: 'ns', name: 'web', port: 32000, localEndpoints: 2 }]);
});

test('only serving-and-terminating local endpoints: 0, although the NodePort still sends them traffic', () => {
  const r = healthChecks([svc('web')], [slice('web-1', 'web', [ep('10.0.0.3', 'n1', { ready: false, serving: true, terminating: true })])], node);
  assert.deepEqual(r.map((c) => c.localEndpoints), [0]);
});

test('an address is counted once over all of the Service\'s ports and slices', () => {
  const two = svc('web', { ports: [{ name: 'http', protocol: 'TCP', port: 80 }, { name: 'https', protocol: 'TCP', port: 443 }] });
  const r = healthChecks([two], [
    slice('web-1', 'web', [ep('10.0.0.1', 'n1')], [{ name: 'http', protocol: 'TCP', port: 8080 }, { name: 'https', protocol: 'TCP', port: 8443 }]),
    slice('web-2', 'web', [ep('10.0.0.1', 'n1'), ep('10.0.0.2', 'n1')], [{ name: 'https', protocol: 'TCP', port: 8443 }]),
  ], node);
  assert.deepEqual(r.map((c) => c.localEndpoints), [2]);
});

test('no health check: Cluster policy, no healthCheckNodePort, a ClusterIP without external IPs, an ignored Service', () => {
  const r = healthChecks([
    svc('cluster', { externalTrafficPolicy: 'Cluster' }),
    svc('none', { healthCheckNodePort: undefined as unknown as number }),
    svc('internal', { type: 'ClusterIP', healthCheckNodePort: 32001 }),
    svc('headless', { clusterIPs: ['None'], healthCheckNodePort: 32002 }),
    svc('other-proxy', { labels: { 'service.kubernetes.io/service-proxy-name': 'x' }, healthCheckNodePort: 32003 }),
    svc('external', { type: 'ClusterIP', externalIPs: ['203.0.113.1'], healthCheckNodePort: 32004 }),
  ].map((s) => (s.healthCheckNodePort === undefined ? (({ healthCheckNodePort: _drop, ...rest }) => rest)(s) : s)), [], node);
  assert.deepEqual(r.map((c) => `${c.name}:${c.port}`), ['external:32004']);
});

test('two Services on one port: the first by namespace/name keeps it; the list is sorted by port', () => {
  const r = healthChecks([svc('b', { healthCheckNodePort: 32000 }), svc('a', { healthCheckNodePort: 32000 }), svc('c', { healthCheckNodePort: 31000 })], [], node);
  assert.deepEqual(r.map((c) => `${c.name}:${c.port}`), ['c:31000', 'a:32000']);
});
