/** The health-check servers over real HTTP on 127.0.0.1: kube-proxy's answers, counts changed in place, listeners opened, closed and retried. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { HealthCheckServers } from '../../src/agent/health-checks.js';
import { AgentMetrics } from '../../src/agent/metrics.js';
import { captureLog } from './helpers/logs.js';

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

function get(port: number, path = '/healthz'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A port nobody listens on right now. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function metric(metrics: AgentMetrics, state: string): Promise<number | undefined> {
  const m = await metrics.healthCheckServers.get();
  return m.values.find((v) => v.labels.state === state)?.value;
}

test('200 with the count while the node has Ready endpoints, 503 without; headers and body as kube-proxy\'s; any path', async () => {
  const port = await freePort();
  let healthy = true;
  const metrics = new AgentMetrics();
  const hc = new HealthCheckServers({ log: captureLog().log, metrics, proxyHealthy: () => healthy });
  try {
    await hc.update(['127.0.0.1', 'fd00::1', 'not-an-address'], [{ namespace: 'default', name: 'web', port, localEndpoints: 2 }]);
    assert.deepEqual(hc.listening(), [`127.0.0.1:${port}`], 'IPv4 node addresses only');
    const ok = await get(port);
    assert.equal(ok.status, 200);
    assert.deepEqual([ok.headers['content-type'], ok.headers['x-content-type-options'], ok.headers['x-load-balancing-endpoint-weight']], ['application/json', 'nosniff', '2']);
    assert.deepEqual(JSON.parse(ok.body), { service: { namespace: 'default', name: 'web' }, localEndpoints: 2, serviceProxyHealthy: true });
    assert.equal((await get(port, '/anything')).status, 200);

    await hc.update(['127.0.0.1'], [{ namespace: 'default', name: 'web', port, localEndpoints: 0 }]);
    const none = await get(port);
    assert.equal(none.status, 503);
    assert.deepEqual(JSON.parse(none.body), { service: { namespace: 'default', name: 'web' }, localEndpoints: 0, serviceProxyHealthy: true });
    assert.equal(none.headers['x-load-balancing-endpoint-weight'], '0');

    await hc.update(['127.0.0.1'], [{ namespace: 'default', name: 'web', port, localEndpoints: 1 }]);
    healthy = false;
    const sick = await get(port);
    assert.equal(sick.status, 503, 'an unhealthy proxy fails every check');
    assert.equal((JSON.parse(sick.body) as { serviceProxyHealthy: boolean }).serviceProxyHealthy, false);
    assert.equal(await metric(metrics, 'listening'), 1);
  } finally {
    await hc.close();
  }
  await assert.rejects(get(port), /ECONNREFUSED/, 'closed with the owner');
  assert.deepEqual(hc.listening(), []);
});

test('a Service gone closes its listener; a taken port is reported and retried at the next update', async () => {
  const [a, b] = [await freePort(), await freePort()];
  const captured = captureLog();
  const metrics = new AgentMetrics();
  const hc = new HealthCheckServers({ log: captured.log, metrics, proxyHealthy: () => true });
  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(b, '127.0.0.1', resolve));
  try {
    const checks = [{ namespace: 'default', name: 'a', port: a, localEndpoints: 1 }, { namespace: 'default', name: 'b', port: b, localEndpoints: 1 }];
    await hc.update(['127.0.0.1'], checks);
    assert.deepEqual(hc.listening(), [`127.0.0.1:${a}`]);
    assert.match(hc.failures().get(`127.0.0.1:${b}`) ?? '', /EADDRINUSE/);
    assert.equal(captured.find('cannot listen').length, 1);
    assert.deepEqual([await metric(metrics, 'listening'), await metric(metrics, 'failing')], [1, 1]);

    await new Promise<void>((resolve) => squatter.close(() => resolve()));
    await hc.update(['127.0.0.1'], checks);
    assert.deepEqual(hc.listening(), [`127.0.0.1:${a}`, `127.0.0.1:${b}`].sort());
    assert.equal(hc.failures().size, 0);
    assert.equal((await get(b)).status, 200);

    await hc.update(['127.0.0.1'], checks.slice(1));
    assert.deepEqual(hc.listening(), [`127.0.0.1:${b}`]);
    await assert.rejects(get(a), /ECONNREFUSED/);
  } finally {
    squatter.close();
    await hc.close();
  }
});
