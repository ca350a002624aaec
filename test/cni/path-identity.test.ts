/**
 * path-identity.ts: a path's identity ("dev:ino", or the nearest existing
 * ancestor's and the rest) and the comparison the agent makes with the
 * front end's identity of the same path, on real files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isPlainPath, pathDiffers, pathIdentity, type StatIdentity } from '../../src/cni/path-identity.js';

function id(path: string): string {
  const st = statSync(path, { bigint: true });
  return `${st.dev}:${st.ino}`;
}

test('pathIdentity: an existing path is its file (symlinks followed); a missing one its nearest ancestor and the rest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pathid-'));
  try {
    writeFileSync(join(dir, 'f'), '');
    symlinkSync(join(dir, 'f'), join(dir, 'link'));
    assert.equal(pathIdentity(join(dir, 'f')), id(join(dir, 'f')));
    assert.equal(pathIdentity(join(dir, 'link')), id(join(dir, 'f')));
    assert.equal(pathIdentity(join(dir, 'a', 'b')), `${id(dir)}/a/b`);
    assert.equal(pathIdentity(join(dir, 'f', 'under-a-file')), `${id(join(dir, 'f'))}/under-a-file`, 'ENOTDIR counts as missing');
    assert.equal(pathIdentity('/'), id('/'));
    assert.equal(pathIdentity('/sluice-pathid-nowhere'), `${id('/')}/sluice-pathid-nowhere`);
    for (const p of ['relative', `${dir}/`, `${dir}/./f`, `${dir}/../x`, `${dir}//f`]) assert.equal(pathIdentity(p), undefined, p);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pathDiffers: same file → undefined; another file, no identity, a foreign suffix or an unreadable one → why', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pathid-'));
  try {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    mkdirSync(a);
    mkdirSync(b);
    assert.equal(pathDiffers(a, pathIdentity(a)), undefined);
    assert.match(pathDiffers(a, pathIdentity(b)) ?? '', new RegExp(`^${a}: \\d+:\\d+ for the front end, \\d+:\\d+ here$`));
    assert.match(pathDiffers(a, undefined) ?? '', /sent no identity/);
    assert.match(pathDiffers(a, 'garbage') ?? '', /unreadable identity/);
    assert.match(pathDiffers(join(a, 'x'), `${id(dir)}/y`) ?? '', /is of another path/);
    assert.match(pathDiffers(`${a}/`, pathIdentity(a)) ?? '', /not a plain absolute path/);
    // The front end saw a/new missing; created since, its parent is what both compare.
    const seen = pathIdentity(join(a, 'new'));
    mkdirSync(join(a, 'new'));
    assert.equal(pathDiffers(join(a, 'new'), seen), undefined);
    // Removed since the front end saw it: differs.
    const gone = pathIdentity(b);
    rmSync(b, { recursive: true });
    assert.match(pathDiffers(b, gone) ?? '', /absent here$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unreadable path (EACCES and the like) has no identity and never compares equal', () => {
  const stat: StatIdentity = (p) => (p === '/x' ? undefined : p === '/x/y' ? 'absent' : '1:1');
  assert.equal(pathIdentity('/x/y', stat), undefined);
  assert.equal(pathIdentity('/x', stat), undefined);
  assert.match(pathDiffers('/x', '1:1', stat) ?? '', /unreadable here/);
  assert.equal(isPlainPath('/'), true);
});
