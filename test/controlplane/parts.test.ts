// The harness's small parts, without the real binaries: versions file,
// binary resolution, credentials, kubeconfig, flags, ports, processes and
// readiness failures (fast exit with the process's output, deadline).
import { strict as assert } from 'node:assert';
import { createPrivateKey, createPublicKey, createSign, createVerify } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { binaryPaths, cacheRoot, findBinaries, parseVersions } from '../../src/lab/controlplane/binaries.js';
import { ControlPlane } from '../../src/lab/controlplane/controlplane.js';
import { renderTokenFile, writeServiceAccountKeys } from '../../src/lab/controlplane/credentials.js';
import { ControlPlaneError } from '../../src/lab/controlplane/errors.js';
import { apiserverArgs, controllerManagerArgs, DEFAULT_CONTROLLERS, etcdArgs } from '../../src/lab/controlplane/flags.js';
import { renderKubeconfig } from '../../src/lab/controlplane/kubeconfig.js';
import { freePorts } from '../../src/lab/controlplane/ports.js';
import { ManagedProcess } from '../../src/lab/controlplane/process.js';
import { waitReady } from '../../src/lab/controlplane/readiness.js';

const scratch = mkdtempSync(join(tmpdir(), 'sluice-cp-parts-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function isControlPlaneError(code: string, text?: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof ControlPlaneError, `expected a ControlPlaneError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (text) assert.match(e.message, text);
    return true;
  };
}

describe('versions and binaries', () => {
  test('parses the versions file, ignoring comments', () => {
    const v = parseVersions('# c\n\nKUBERNETES_VERSION=v1.34.4\nETCD_VERSION=v3.5.35\n');
    assert.deepEqual(v, { kubernetes: 'v1.34.4', etcd: 'v3.5.35' });
  });

  test('rejects a malformed or incomplete versions file', () => {
    assert.throws(() => parseVersions('KUBERNETES_VERSION=1.34\n'), isControlPlaneError('versions-file', /malformed/));
    assert.throws(() => parseVersions('KUBERNETES_VERSION=v1.34.4\n'), isControlPlaneError('versions-file', /ETCD_VERSION/));
  });

  test('the repo versions file matches the wrapper go.mod files', () => {
    const root = new URL('../../../', import.meta.url);
    const v = parseVersions(readFileSync(new URL('tools/k8s-bin/versions', root), 'utf8'));
    const k8sMod = readFileSync(new URL('tools/k8s-bin/kubernetes/go.mod', root), 'utf8');
    const etcdMod = readFileSync(new URL('tools/k8s-bin/etcd/go.mod', root), 'utf8');
    assert.match(k8sMod, new RegExp(`\\sk8s\\.io/kubernetes ${v.kubernetes.replaceAll('.', '\\.')}\\b`));
    assert.match(etcdMod, new RegExp(`go\\.etcd\\.io/etcd/server/v3 ${v.etcd.replaceAll('.', '\\.')}\\b`));
    // Every staging replace points at the matching v0.Y.Z tag.
    const staging = `v0.${v.kubernetes.slice('v1.'.length)}`;
    const replaces = [...k8sMod.matchAll(/=> (k8s\.io\/[a-z-]+) (v\S+)/g)];
    assert.ok(replaces.length >= 29, `only ${replaces.length} staging replaces`);
    for (const m of replaces) assert.equal(m[2], staging, `${m[1]} replaced with ${m[2]}`);
  });

  test('paths are keyed by version under the cache root', () => {
    const b = binaryPaths({ kubernetes: 'v1.34.4', etcd: 'v3.5.35' }, '/c');
    assert.equal(b.etcd, '/c/k8s-bin/etcd-v3.5.35/etcd');
    assert.equal(b.kubeApiserver, '/c/k8s-bin/kubernetes-v1.34.4/kube-apiserver');
    assert.equal(b.kubectl, '/c/k8s-bin/kubernetes-v1.34.4/kubectl');
    assert.equal(cacheRoot({}), '/var/cache/sluice');
    assert.equal(cacheRoot({ SLUICE_CACHE: '/x' }), '/x');
  });

  test('missing binaries are an error that says how to build them', () => {
    assert.throws(
      () => findBinaries({ cacheRoot: join(scratch, 'empty-cache') }),
      isControlPlaneError('binaries-missing', /etcd-v3\.5\.\d+\/etcd.*scripts\/build-controlplane/),
    );
  });
});

describe('credentials and kubeconfig', () => {
  test('service-account keys are a matching RSA pair, private key 0600', () => {
    const dir = mkdtempSync(join(scratch, 'sa-'));
    const f = writeServiceAccountKeys(dir);
    const priv = createPrivateKey(readFileSync(f.privateKeyFile));
    const pub = createPublicKey(readFileSync(f.publicKeyFile));
    assert.equal(priv.asymmetricKeyType, 'rsa');
    const sig = createSign('sha256').update('x').sign(priv);
    assert.ok(createVerify('sha256').update('x').verify(pub, sig));
    assert.equal(statSync(f.privateKeyFile).mode & 0o777, 0o600);
  });

  test('token file lines quote the groups; separators in values are rejected', () => {
    const text = renderTokenFile([{ name: 'admin', uid: 'u1', groups: ['system:masters', 'g2'], token: 't0k' }]);
    assert.equal(text, 't0k,admin,u1,"system:masters,g2"\n');
    assert.throws(() => renderTokenFile([{ name: 'a,b', uid: 'u', groups: [], token: 't' }]), /user "a,b"/);
  });

  test('kubeconfig carries server, CA data and token in its current context', () => {
    const doc = JSON.parse(renderKubeconfig({ server: 'https://127.0.0.1:1', caPem: 'PEM', token: 'tok' })) as {
      'current-context': string;
      contexts: { name: string; context: { cluster: string; user: string } }[];
      clusters: { name: string; cluster: { server: string; 'certificate-authority-data': string } }[];
      users: { name: string; user: { token: string } }[];
    };
    const ctx = doc.contexts.find((c) => c.name === doc['current-context']);
    assert.ok(ctx);
    const cluster = doc.clusters.find((c) => c.name === ctx.context.cluster);
    const user = doc.users.find((u) => u.name === ctx.context.user);
    assert.equal(cluster?.cluster.server, 'https://127.0.0.1:1');
    assert.equal(Buffer.from(cluster?.cluster['certificate-authority-data'] ?? '', 'base64').toString(), 'PEM');
    assert.equal(user?.user.token, 'tok');
  });
});

describe('flags', () => {
  test('etcd listens and advertises on the given loopback ports without fsync', () => {
    const a = etcdArgs({ host: '127.0.0.1', clientPort: 1, peerPort: 2, dataDir: '/d' });
    assert.ok(a.includes('--listen-client-urls=http://127.0.0.1:1'));
    assert.ok(a.includes('--initial-cluster=sluice=http://127.0.0.1:2'));
    assert.ok(a.includes('--unsafe-no-fsync'));
  });

  test('apiserver: loopback advertise, no endpoint reconciler, token auth, RBAC', () => {
    const a = apiserverArgs({
      host: '127.0.0.1', securePort: 3, etcdUrl: 'http://127.0.0.1:1', certDir: '/c', tokenFile: '/t',
      saPublicKeyFile: '/p', saPrivateKeyFile: '/k', serviceClusterIpRange: '10.96.0.0/16', extraArgs: ['--v=2'],
    });
    for (const f of ['--advertise-address=127.0.0.1', '--endpoint-reconciler-type=none', '--token-auth-file=/t',
      '--authorization-mode=RBAC', '--secure-port=3', '--etcd-servers=http://127.0.0.1:1', '--v=2']) {
      assert.ok(a.includes(f), `missing ${f}`);
    }
  });

  test('controller manager: no leader election, nodeipam only with a cluster CIDR, no node lifecycle', () => {
    const base = { host: '127.0.0.1', securePort: 4, kubeconfig: '/kc', certDir: '/c', controllers: DEFAULT_CONTROLLERS, serviceClusterIpRange: '10.96.0.0/16' };
    const plain = controllerManagerArgs(base);
    assert.ok(plain.includes('--leader-elect=false'));
    assert.ok(plain.includes(`--controllers=${DEFAULT_CONTROLLERS.join(',')}`));
    assert.ok(!plain.some((f) => f.startsWith('--allocate-node-cidrs')));
    const ipam = controllerManagerArgs({ ...base, clusterCidr: '10.244.0.0/16' });
    assert.ok(ipam.includes(`--controllers=${[...DEFAULT_CONTROLLERS, 'nodeipam'].join(',')}`));
    assert.ok(ipam.includes('--cluster-cidr=10.244.0.0/16'));
    assert.ok(!ipam.join(' ').includes('nodelifecycle'));
  });
});

describe('ports and processes', () => {
  test('free ports are distinct and bindable', async () => {
    const ports = await freePorts(5);
    assert.equal(new Set(ports).size, 5);
    for (const port of ports) {
      await new Promise<void>((resolve, reject) => {
        const s = createServer().once('error', reject);
        s.listen(port, '127.0.0.1', () => s.close(() => resolve()));
      });
    }
  });

  test('stop() ends a process that ignores SIGTERM with SIGKILL after the grace', async () => {
    const p = ManagedProcess.start({
      name: 'stubborn', file: '/bin/sh', args: ['-c', 'trap "" TERM; echo up; while :; do sleep 0.05; done'],
      logFile: join(scratch, 'stubborn.log'),
    });
    await waitReady({ component: 'stubborn', process: p, deadlineMs: 5000, check: () => Promise.resolve(p.tail().includes('up') ? undefined : 'no output') });
    const t0 = performance.now();
    const s = await p.stop(300);
    assert.equal(s.signal, 'SIGKILL');
    assert.ok(performance.now() - t0 >= 250);
    assert.equal(p.running, false);
    assert.match(readFileSync(join(scratch, 'stubborn.log'), 'utf8'), /up/);
  });

  test('waiting on a process that exits fails at once with its last output', async () => {
    const p = ManagedProcess.start({
      name: 'crasher', file: '/bin/sh', args: ['-c', 'echo "flag --bogus: unknown" >&2; exit 3'],
      logFile: join(scratch, 'crasher.log'),
    });
    await assert.rejects(
      waitReady({ component: 'crasher', process: p, deadlineMs: 10000, check: () => Promise.resolve('never') }),
      isControlPlaneError('exited', /crasher exited with code 3[\s\S]*flag --bogus: unknown/),
    );
  });

  test('a deadline names the last reason', async () => {
    await assert.rejects(
      waitReady({ component: 'slow', deadlineMs: 200, intervalMs: 20, check: () => Promise.resolve('GET /readyz: HTTP 500') }),
      isControlPlaneError('not-ready', /slow not ready after 200 ms: GET \/readyz: HTTP 500/),
    );
  });
});

describe('start failures clean up', () => {
  test('a component that dies at start: clear error, nothing left behind', async () => {
    const dir = mkdtempSync(join(scratch, 'fake-bin-'));
    const base = mkdtempSync(join(scratch, 'base-'));
    const fake = join(dir, 'etcd');
    writeFileSync(fake, '#!/bin/sh\necho "etcd: cannot access data directory: boom" >&2\nexit 1\n');
    chmodSync(fake, 0o755);
    const bins = { versions: { kubernetes: 'v0.0.0', etcd: 'v0.0.0' }, etcd: fake, kubeApiserver: fake, kubeControllerManager: fake, kubectl: fake };
    await assert.rejects(
      ControlPlane.start({ binaries: bins, baseDir: base, readyTimeoutMs: 10000 }),
      isControlPlaneError('exited', /etcd exited with code 1[\s\S]*boom/),
    );
    assert.deepEqual(readdirSync(base), []);
    assert.ok(existsSync(base));
  });
});
