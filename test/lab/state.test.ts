import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveSpec } from '../../src/lab/spec.js';
import { type LabState, readState, removeState, writeState } from '../../src/lab/state.js';

test('state file: round-trip, atomic write leaves no temp file, remove is idempotent', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-lab-state-'));
  try {
    const path = join(dir, 'sub', 'x.json');
    assert.equal(await readState(path), undefined);
    const state: LabState = {
      version: 1,
      status: 'ready',
      createdAt: '2025-01-01T00:00:00.000Z',
      objectPath: '/x/lxc.o',
      plan: resolveSpec({ name: 'x', pods: ['a', 'b'] }, { bpffs: '/b', stateDir: dir }),
    };
    await writeState(path, state);
    assert.deepEqual(await readState(path), state);
    assert.deepEqual(await readdir(join(dir, 'sub')), ['x.json']);
    await removeState(path);
    await removeState(path);
    assert.equal(await readState(path), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('state file: a malformed file fails with its path and the field at fault', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-lab-state-'));
  try {
    const path = join(dir, 'bad.json');
    await writeFile(path, JSON.stringify({ version: 2 }));
    await assert.rejects(readState(path), new RegExp(`lab state ${path}: version 2, want 1`));
    const plan = resolveSpec({ name: 'x' }, { bpffs: '/b', stateDir: dir });
    const pods = [{ ...plan.pods[0], ipv4: 7 }];
    await writeFile(path, JSON.stringify({ version: 1, status: 'ready', createdAt: '', plan: { ...plan, pods } }));
    await assert.rejects(readState(path), /plan\.pods\[0\]\.ipv4 is not a string/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
