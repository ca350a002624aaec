// The Sluice image (Dockerfile, scripts/build-image). Needs a Docker engine:
// when none answers, every test here is reported as not run (skipped, with
// the reason), never as passed. `bash scripts/docker-engine start` starts one.
//
// Proves: the image builds here (debian:trixie-slim made locally when no
// registry answers); sluice-agent --help runs in it; `sluice-cni install`
// from it writes the CNI front end, its fallback and the conflist; the agent
// in it, on the host's network, lists and watches a real API server (the
// lab's control plane) and serves /readyz 200.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ControlPlane } from '../../src/lab/controlplane/controlplane.js';
import { httpGet } from '../../src/lab/controlplane/readiness.js';
import { dockerUnusable } from '../helpers/k8s-tools.js';

const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DOCKER = process.env['DOCKER'] ?? 'docker';
const TAG = 'sluice-image-test:latest';
const unusable = await dockerUnusable();
// Each test carries the reason, so the run counts them as skipped (a skipped suite counts nothing).
const skip = unusable ?? false;

function docker(args: readonly string[], timeoutMs = 120_000): Promise<{ stdout: string; stderr: string }> {
  return run(DOCKER, args, { timeout: timeoutMs, maxBuffer: 64 << 20 });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

describe('image', () => {
  before(async () => {
    if (unusable !== undefined) return;
    // Cold: ~6 min on 2 cores (the base, the build stage's packages, npm ci, compiles); cached after.
    await run('bash', [join(ROOT, 'scripts', 'build-image'), '--tag', TAG], { timeout: 30 * 60_000, maxBuffer: 64 << 20 });
  });

  test('sluice-agent --help runs in it', { skip }, async () => {
    const { stdout } = await docker(['run', '--rm', '--network', 'none', TAG, '--help']);
    assert.match(stdout, /usage: sluice-agent/);
    assert.match(stdout, /--node-name NAME/);
  });

  test('sluice-cni install from it writes the front end, its fallback and the conflist', { skip }, async () => {
    const { stdout } = await docker([
      'run', '--rm', '--network', 'none', '--entrypoint', 'sh', TAG, '-c',
      'sluice-cni install --bin-dir /tmp/bin --conf-dir /tmp/net.d && ls /tmp/bin /tmp/net.d && /tmp/bin/sluice-cni </dev/null; ' +
      'CNI_COMMAND=VERSION /tmp/bin/sluice-cni </dev/null',
    ]);
    assert.match(stdout, /^sluice-cni$/m);
    assert.match(stdout, /^sluice-cni-node$/m);
    assert.match(stdout, /^05-sluice\.conflist$/m);
    assert.match(stdout, /"supportedVersions"/);
  });

  describe('against a real API server', () => {
    let cp: ControlPlane | undefined;
    let dir = '';
    before(async () => {
      if (unusable !== undefined) return;
      cp = await ControlPlane.start();
      dir = await mkdtemp(join(tmpdir(), 'sluice-image-'));
    });
    after(async () => {
      await cp?.stop();
      if (dir !== '') await rm(dir, { recursive: true, force: true });
    });

    test('the agent in it serves /readyz 200', { skip }, async () => {
      assert.ok(cp);
      const port = await freePort();
      const name = `sluice-image-test-${process.pid}`;
      // --network host: the control plane listens on 127.0.0.1; the container adds nothing to the
      // host's network (no bridge, no veth) and reaches nothing outside the machine.
      await docker([
        'run', '-d', '--name', name, '--network', 'host', '-v', `${cp.kubeconfigPath}:/etc/sluice/kubeconfig:ro`,
        TAG, '--datapath', 'none', '--kubeconfig', '/etc/sluice/kubeconfig', '--node-name', 'node-a',
        '--state-dir', '/tmp/sluice', '--endpoint-socket', '/tmp/sluice/agent.sock', '--http-listen', `127.0.0.1:${port}`,
      ]);
      try {
        const deadline = performance.now() + 60_000;
        let last = '';
        for (;;) {
          const r = await httpGet({ url: `http://127.0.0.1:${port}/readyz` }).catch((e: Error) => ({ status: 0, body: e.message }));
          if (r.status === 200) break;
          last = `${r.status} ${r.body}`;
          if (performance.now() > deadline) {
            const logs = await docker(['logs', '--tail', '30', name]).catch(() => ({ stdout: '', stderr: '' }));
            assert.fail(`/readyz not 200 within 60 s: ${last}\n${logs.stdout}${logs.stderr}`);
          }
          await sleep(200);
        }
        const { stdout } = await docker(['logs', name]);
        assert.match(stdout, /pods: first list done/);
      } finally {
        await docker(['rm', '-f', name]).catch(() => undefined);
      }
    });
  });
});
