// The real control plane: etcd, kube-apiserver and kube-controller-manager
// from the build cache (scripts/build-controlplane). If they were never built
// this file FAILS with that instruction; it never skips.
//
// Proves: kubectl and @kubernetes/client-node work with the harness's
// kubeconfig; Nodes and bound Pods with hand-patched status are real API
// objects; the controller manager turns a selector Service into an
// EndpointSlice with the pod's address and allocates podCIDRs; an apiserver
// outage fails requests and a restart on the same port finds the data; stop()
// leaves no process and no temp dir.
import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { ControlPlane } from '../../src/lab/controlplane/controlplane.js';
import { isProcessAlive } from '../../src/lab/controlplane/process.js';
import { httpGet } from '../../src/lab/controlplane/readiness.js';

const NS = 'sluice-cp-test';

/** Retries `fn` until it returns {value}, or fails with its last reason (a string or error) at the deadline. */
async function eventually<T>(what: string, deadlineMs: number, fn: () => Promise<{ value: T } | string>): Promise<T> {
  const start = performance.now();
  let last = 'not tried';
  for (;;) {
    try {
      const r = await fn();
      if (typeof r !== 'string') return r.value;
      last = r;
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    if (performance.now() - start > deadlineMs) assert.fail(`${what}: not within ${deadlineMs} ms; last: ${last}`);
    await sleep(200);
  }
}

const manifests = `
apiVersion: v1
kind: Namespace
metadata: {name: ${NS}, labels: {team: sluice}}
---
apiVersion: v1
kind: Node
metadata: {name: node-a, labels: {kubernetes.io/hostname: node-a}}
spec: {podCIDR: 10.244.1.0/24, podCIDRs: [10.244.1.0/24]}
---
apiVersion: v1
kind: Node
metadata: {name: node-b}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: ${NS}, labels: {app: web}}
spec:
  nodeName: node-a
  containers:
  - name: web
    image: example.invalid/web:1
    ports: [{name: http, containerPort: 8080}]
`;

const service = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: ${NS}}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
`;

const policy = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-http, namespace: ${NS}}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: sluice}}
      podSelector: {matchLabels: {role: client}}
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    ports:
    - {protocol: TCP, port: http}
    - {protocol: TCP, port: 9000, endPort: 9100}
`;

interface EndpointSliceList {
  items: { addressType: string; endpoints?: { addresses: string[]; conditions?: { ready?: boolean }; nodeName?: string }[]; ports?: { name?: string; port?: number }[] }[];
}

describe('real control plane', () => {
  let started: ControlPlane | undefined;
  let startError: unknown;
  /** The running control plane; rethrows start()'s error so every test FAILS (not cancels) without binaries. */
  const plane = (): ControlPlane => {
    if (started) return started;
    throw startError instanceof Error ? startError : new Error(`control plane did not start: ${String(startError)}`);
  };

  before(async () => {
    try {
      // Throws ControlPlaneError('binaries-missing', '... run `bash scripts/build-controlplane` ...') when not built.
      started = await ControlPlane.start({ clusterCidr: '10.244.0.0/16' });
    } catch (e) {
      startError = e;
      return;
    }
    const t = started.timings;
    console.log(
      `control plane ready in ${t.totalMs.toFixed(0)} ms (etcd ${t.etcdMs.toFixed(0)}, apiserver ${t.apiserverMs.toFixed(0)}, controller-manager ${t.controllerManagerMs.toFixed(0)})`,
    );
  });
  after(async () => {
    await started?.stop();
  });

  test('versions: the apiserver and etcd are the pinned builds', async () => {
    const cp = plane();
    const out = JSON.parse(await cp.kubectl(['version', '-o', 'json'])) as {
      clientVersion: { gitVersion: string };
      serverVersion: { gitVersion: string };
    };
    assert.equal(out.serverVersion.gitVersion, cp.binaries.versions.kubernetes);
    assert.equal(out.clientVersion.gitVersion, cp.binaries.versions.kubernetes);
    const etcd = JSON.parse((await httpGet({ url: `${cp.etcdUrl}/version` })).body) as { etcdserver: string };
    assert.equal(`v${etcd.etcdserver}`, cp.binaries.versions.etcd);
  });

  test('the token is required: anonymous requests cannot list pods', async () => {
    const cp = plane();
    const r = await httpGet({ url: `${cp.server}/api/v1/pods`, ca: cp.caPem });
    assert.ok(r.status === 401 || r.status === 403, `anonymous list gave HTTP ${r.status}`);
    const ok = await httpGet({ url: `${cp.server}/api/v1/pods`, ca: cp.caPem, token: cp.token });
    assert.equal(ok.status, 200);
  });

  test('Namespace, Nodes and a bound Pod apply; the Pod status is patched to Running/Ready', async () => {
    const cp = plane();
    await cp.kubectl(['apply', '-f', '-'], { input: manifests });
    await cp.kubectl([
      'patch', 'pod', 'web-1', '-n', NS, '--subresource=status', '--type=merge', '-p',
      JSON.stringify({
        status: {
          phase: 'Running',
          podIP: '10.244.1.10',
          podIPs: [{ ip: '10.244.1.10' }],
          conditions: [{ type: 'Ready', status: 'True' }],
        },
      }),
    ]);
    const pod = JSON.parse(await cp.kubectl(['get', 'pod', 'web-1', '-n', NS, '-o', 'json'])) as {
      spec: { nodeName: string };
      status: { phase: string; podIP: string; conditions: { type: string; status: string }[] };
    };
    assert.equal(pod.spec.nodeName, 'node-a');
    assert.equal(pod.status.phase, 'Running');
    assert.equal(pod.status.podIP, '10.244.1.10');
    assert.ok(pod.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True'));
  });

  test('nodeipam gives the Node without a podCIDR one; the explicit one is kept', async () => {
    const cp = plane();
    const cidr = await eventually('node-b podCIDR', 30000, async () => {
      const n = JSON.parse(await cp.kubectl(['get', 'node', 'node-b', '-o', 'json'])) as { spec: { podCIDR?: string } };
      return n.spec.podCIDR !== undefined ? { value: n.spec.podCIDR } : 'no podCIDR yet';
    });
    assert.match(cidr, /^10\.244\.\d+\.0\/24$/);
    assert.notEqual(cidr, '10.244.1.0/24');
    const a = JSON.parse(await cp.kubectl(['get', 'node', 'node-a', '-o', 'json'])) as { spec: { podCIDR?: string } };
    assert.equal(a.spec.podCIDR, '10.244.1.0/24');
  });

  test('a selector Service gets an EndpointSlice with the pod address (controller manager works)', async () => {
    const cp = plane();
    await cp.kubectl(['apply', '-f', '-'], { input: service });
    const ep = await eventually('EndpointSlice for web', 30000, async () => {
      const list = JSON.parse(
        await cp.kubectl(['get', 'endpointslices', '-n', NS, '-l', 'kubernetes.io/service-name=web', '-o', 'json']),
      ) as EndpointSliceList;
      const eps = list.items.flatMap((s) => (s.endpoints ?? []).map((e) => ({ ...e, ports: s.ports ?? [], type: s.addressType })));
      const found = eps.find((e) => e.addresses.includes('10.244.1.10'));
      return found ? { value: found } : `slices: ${JSON.stringify(list.items)}`;
    });
    assert.equal(ep.type, 'IPv4');
    assert.equal(ep.conditions?.ready, true);
    assert.equal(ep.nodeName, 'node-a');
    assert.deepEqual(ep.ports.map((p) => [p.name, p.port]), [['http', 8080]]);
  });

  test('a NetworkPolicy applies and reads back unchanged', async () => {
    const cp = plane();
    await cp.kubectl(['apply', '-f', '-'], { input: policy });
    const np = JSON.parse(await cp.kubectl(['get', 'networkpolicy', 'allow-http', '-n', NS, '-o', 'json'])) as {
      spec: {
        podSelector: unknown;
        policyTypes: string[];
        ingress: { from: unknown[]; ports: unknown[] }[];
      };
    };
    assert.deepEqual(np.spec.podSelector, { matchLabels: { app: 'web' } });
    assert.deepEqual(np.spec.policyTypes, ['Ingress']);
    assert.deepEqual(np.spec.ingress[0]?.from, [
      { namespaceSelector: { matchLabels: { team: 'sluice' } }, podSelector: { matchLabels: { role: 'client' } } },
      { ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } },
    ]);
    assert.deepEqual(np.spec.ingress[0]?.ports, [
      { protocol: 'TCP', port: 'http' },
      { protocol: 'TCP', port: 9000, endPort: 9100 },
    ]);
  });

  test('@kubernetes/client-node lists the pods with the same kubeconfig', async () => {
    const cp = plane();
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const pods = await core.listNamespacedPod({ namespace: NS });
    assert.deepEqual(
      pods.items.map((p) => [p.metadata?.name, p.status?.podIP, p.spec?.nodeName]),
      [['web-1', '10.244.1.10', 'node-a']],
    );
    assert.ok(pods.metadata?.resourceVersion, 'list has a resourceVersion to watch from');
  });

  test('namespace deletion completes (namespace controller)', async () => {
    const cp = plane();
    await cp.kubectl(['create', 'namespace', 'sluice-cp-doomed']);
    await cp.kubectl(['create', 'configmap', 'c', '-n', 'sluice-cp-doomed', '--from-literal=k=v']);
    await cp.kubectl(['delete', 'namespace', 'sluice-cp-doomed', '--wait=false']);
    await eventually('namespace gone', 30000, async () => {
      const out = await cp.kubectl(['get', 'namespaces', '-o', 'name']);
      return out.includes('namespace/sluice-cp-doomed') ? 'still there' : { value: true };
    });
  });

  test('apiserver outage: requests fail; after a restart on the same port the data is still there', async () => {
    const cp = plane();
    const before = JSON.parse(await cp.kubectl(['get', 'pod', 'web-1', '-n', NS, '-o', 'json'])) as {
      metadata: { uid: string; resourceVersion: string };
    };
    const etcdPid = cp.pids().get('etcd');
    const kcmPid = cp.pids().get('kube-controller-manager');

    await cp.stopApiserver();
    assert.equal(cp.apiserverRunning, false);
    await assert.rejects(cp.kubectl(['get', 'pods', '-n', NS], { timeoutMs: 10000 }), /connection refused|unable to connect|was refused/i);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    await assert.rejects(kc.makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace: NS }));
    // Only the apiserver went away.
    assert.equal(cp.pids().get('etcd'), etcdPid);
    assert.equal(cp.pids().get('kube-controller-manager'), kcmPid);

    const ms = await cp.startApiserver();
    console.log(`apiserver restarted, /readyz ok in ${ms.toFixed(0)} ms`);
    const again = JSON.parse(await cp.kubectl(['get', 'pod', 'web-1', '-n', NS, '-o', 'json'])) as {
      metadata: { uid: string; resourceVersion: string };
      status: { podIP: string };
    };
    assert.equal(again.metadata.uid, before.metadata.uid);
    assert.equal(again.metadata.resourceVersion, before.metadata.resourceVersion);
    assert.equal(again.status.podIP, '10.244.1.10');
    // The same client (same CA, same token) works again.
    const pods = await kc.makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace: NS });
    assert.equal(pods.items.length, 1);
    // The controller manager reconnected by itself: a new Service gets its slice.
    await cp.kubectl(['apply', '-f', '-'], { input: service.replace('name: web,', 'name: web2,') });
    await eventually('EndpointSlice for web2 after restart', 30000, async () => {
      const list = JSON.parse(
        await cp.kubectl(['get', 'endpointslices', '-n', NS, '-l', 'kubernetes.io/service-name=web2', '-o', 'json']),
      ) as EndpointSliceList;
      return list.items.some((s) => s.endpoints?.some((e) => e.addresses.includes('10.244.1.10'))) ? { value: true } : 'no slice yet';
    });
  });

  test('stop() leaves no process and no temp dir; it is idempotent', async () => {
    const cp = plane();
    const pids = [...cp.pids().values()];
    assert.equal(pids.length, 3);
    await cp.stop();
    for (const pid of pids) assert.equal(isProcessAlive(pid), false, `pid ${pid} still alive`);
    assert.equal(existsSync(cp.dir), false, `${cp.dir} still exists`);
    await cp.stop();
    await assert.rejects(cp.startApiserver(), /stopped/);
  });
});
