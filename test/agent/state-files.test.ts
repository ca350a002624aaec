/**
 * The agent's state files (src/agent/state-files.ts): the whole new content or the old one, mode 0600,
 * no temp file left behind; absent reads as undefined, other failures are io errors naming the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readStateText, writeFileAtomic, writeStateText } from '../../src/agent/state-files.js';
import { AgentError } from '../../src/agent/errors.js';

test('replaces the file whole, creates its directory 0700 and the file 0600, leaves no temp file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-t-ag-atomic-'));
  try {
    const path = join(dir, 'state', 'x.json');
    await writeFileAtomic(path, 'one');
    await writeFileAtomic(path, 'two');
    assert.equal(readFileSync(path, 'utf8'), 'two');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'state')).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(join(dir, 'state')), ['x.json']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failed write rejects and leaves the old content', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-t-ag-atomic-'));
  try {
    const path = join(dir, 'x.json');
    writeFileSync(path, 'old');
    // A directory where the temp file goes: open() fails before anything is written.
    mkdirSync(`${path}.tmp-${process.pid}`);
    await assert.rejects(writeFileAtomic(path, 'new'), /EISDIR|is a directory/i);
    assert.equal(readFileSync(path, 'utf8'), 'old');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('state text: absent is undefined, other failures are io errors naming what and where', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-t-ag-atomic-'));
  try {
    assert.equal(await readStateText(join(dir, 'none.json'), 'compile seed'), undefined);
    await writeStateText(join(dir, 'a.json'), 'compile seed', 'x');
    assert.equal(await readStateText(join(dir, 'a.json'), 'compile seed'), 'x');
    const isIo = (what: string) => (e: unknown): boolean => e instanceof AgentError && e.code === 'io' && e.message.startsWith(`cannot ${what} compile seed ${dir}`);
    await assert.rejects(readStateText(dir, 'compile seed'), isIo('read'));
    writeFileSync(join(dir, 'file'), '');
    await assert.rejects(writeStateText(join(dir, 'file', 'x.json'), 'compile seed', 'x'), isIo('write'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
