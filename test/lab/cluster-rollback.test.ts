/**
 * A cluster lab whose `up` fails half-way — after the control plane, the
 * API bridge, the agent and pod a's CNI ADD, at pod b's namespace (a
 * fault-injecting runner) — rolls back everything: a DEL for a through the
 * CNI, the agent, the bridge and the control plane stopped, namespaces, pins,
 * files gone.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BPFFS_MOUNT, ensureBpffsMounted, ensurePinDir, removePinDir } from '../../src/datapath/bpffs.js';
import { ClusterLab, downCluster } from '../../src/lab/cluster/cluster-lab.js';
import { CommandError, execRunner, type Runner } from '../../src/lab/command.js';
import { isProcessAlive } from '../../src/lab/controlplane/process.js';
import { LabError } from '../../src/lab/errors.js';
import { readState } from '../../src/lab/state.js';
import { clusterLabName } from './cluster-helpers.js';
import { labLeftovers } from './helpers.js';

test('a failure half-way through up --cluster rolls back the control plane, the agent, the CNI attachments and the lab', async () => {
  ensureBpffsMounted();
  const name = clusterLabName();
  const bpffs = `${BPFFS_MOUNT}/sluice-t-ld-${name.slice(2)}`;
  ensurePinDir(bpffs);
  const paths = { bpffs, stateDir: mkdtempSync(join(tmpdir(), 'sluice-ld-')) };
  const statePath = join(paths.stateDir, `${name}.json`);
  const seen: { pids: number[]; cpDir?: string; attachments: number } = { pids: [], attachments: 0 };
  // Fails creating pod b's namespace; records what the state file listed just before.
  const runner: Runner = async (file, args) => {
    if (file === 'ip' && args[0] === 'netns' && args[1] === 'add' && args[2] === `sluice-${name}-b`) {
      const c = (await readState(statePath))?.cluster;
      seen.pids = [...(c?.pids ?? [])];
      if (c?.controlPlaneDir !== undefined) seen.cpDir = c.controlPlaneDir;
      seen.attachments = c?.attachments.length ?? 0;
      throw new CommandError(['ip', ...args], 1, 'injected failure');
    }
    return execRunner(file, args);
  };
  try {
    await assert.rejects(ClusterLab.up({ runner, paths }, { name, pods: ['a', 'b'] }), (e: unknown) => {
      assert.ok(e instanceof LabError && e.code === 'setup-failed', String(e));
      assert.match(e.message, new RegExp(`^lab "${name}": pod "b" failed: ip netns add sluice-${name}-b: injected failure; rolled back$`));
      return true;
    });
    assert.equal(seen.pids.length, 5, 'etcd, apiserver, controller manager, the API forwarder and the agent were running and recorded');
    assert.equal(seen.attachments, 1, "pod a's attachment was recorded");
    assert.deepEqual(seen.pids.filter(isProcessAlive), [], 'no process is left');
    assert.equal(seen.cpDir !== undefined && existsSync(seen.cpDir), false, "the control plane's dir is gone");
    assert.deepEqual(await labLeftovers(name), []);
    assert.deepEqual(readdirSync(bpffs), [], 'no pins');
    assert.deepEqual(readdirSync(paths.stateDir), [], 'no state, dir or log');
  } finally {
    await downCluster({ runner: execRunner, paths }, name).catch(() => undefined);
    removePinDir(bpffs);
    rmSync(paths.stateDir, { recursive: true, force: true });
  }
});
