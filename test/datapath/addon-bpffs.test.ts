/** bpffs helpers: mount check, pin directories, and the refusal to remove anything else. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { BPFFS_MOUNT, ensureBpffsMounted, ensurePinDir, isBpffs, removePinDir } from '../../src/datapath/bpffs.js';
import { BpfError } from '../../src/datapath/errors.js';
import { pinDirName } from './addon-support.js';

test('bpffs is (made) mounted at /sys/fs/bpf; /tmp is not bpffs', () => {
  ensureBpffsMounted();
  assert.equal(isBpffs(BPFFS_MOUNT), true);
  assert.equal(isBpffs(tmpdir()), false);
});

test('pin directories are created with parents and removed with their pins', () => {
  const root = pinDirName();
  try {
    ensurePinDir(`${root}/a/b`);
    ensurePinDir(`${root}/a/b`); // exists: fine
    assert.ok(existsSync(`${root}/a/b`));
    removePinDir(root);
    assert.ok(!existsSync(root));
    removePinDir(root); // gone already: fine
  } finally {
    if (existsSync(root)) rmSync(root, { recursive: true, force: true });
  }
});

test('outside bpffs: no pin directory is made and nothing is removed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-na-'));
  try {
    assert.throws(() => ensurePinDir(join(dir, 'pins')), (e: BpfError) => e.code === 'EINVAL' && e.path === join(dir, 'pins') && /not on bpffs/.test(e.message));
    assert.ok(!existsSync(join(dir, 'pins')));
    mkdirSync(join(dir, 'keep'));
    assert.throws(() => removePinDir(dir), /refusing to remove/);
    assert.throws(() => removePinDir(BPFFS_MOUNT), /refusing to remove/);
    assert.ok(existsSync(join(dir, 'keep')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
