/**
 * IpamStore on a real directory: reuse per attachment, forward-moving
 * allocation, exhaustion (101), release, and many processes allocating at
 * once without a lock (symlink's EEXIST is the only arbiter).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCidr, type Cidr } from '../../src/policy/cidr.js';
import { CniError } from '../../src/cni/errors.js';
import { IpamStore } from '../../src/cni/ipam.js';

function cidr(s: string): Cidr {
  const p = parseCidr(s);
  if (typeof p === 'string') throw new Error(p);
  return p.cidr;
}

function withDir(fn: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cni-ipam-'));
  return Promise.resolve(fn(dir)).finally(() => rmSync(dir, { recursive: true, force: true }));
}

test('allocates forward, reuses per attachment, releases, never hands out network or broadcast', () => withDir((dir) => {
  const store = new IpamStore(dir);
  const net = [cidr('10.1.0.0/29')]; // 6 usable: .1 … .6
  const a = store.allocate({ containerId: 'a', ifname: 'eth0' }, net);
  assert.deepEqual(a.map((x) => x.ip), ['10.1.0.1']);
  assert.deepEqual(store.allocate({ containerId: 'a', ifname: 'eth0' }, net).map((x) => x.ip), ['10.1.0.1'], 'a rerun keeps the address');
  assert.deepEqual(store.allocate({ containerId: 'a', ifname: 'net1' }, net).map((x) => x.ip), ['10.1.0.2'], 'another interface is another attachment');
  assert.deepEqual(store.release({ containerId: 'a', ifname: 'eth0' }), ['10.1.0.1']);
  assert.deepEqual(store.release({ containerId: 'a', ifname: 'eth0' }), [], 'release is idempotent');
  // Forward from the last one: the freed .1 is not reused at once.
  assert.deepEqual(store.allocate({ containerId: 'b', ifname: 'eth0' }, net).map((x) => x.ip), ['10.1.0.3']);
  for (const id of ['c', 'd', 'e']) store.allocate({ containerId: id, ifname: 'eth0' }, net);
  assert.deepEqual(store.allocate({ containerId: 'f', ifname: 'eth0' }, net).map((x) => x.ip), ['10.1.0.1'], 'wraps around to the freed address');
  assert.throws(() => store.allocate({ containerId: 'g', ifname: 'eth0' }, net), (e: unknown) =>
    e instanceof CniError && e.code === 101 && /no free address in pod CIDR 10\.1\.0\.0\/29/.test(e.message));
  assert.ok(!store.list().some((x) => x.ip === '10.1.0.0' || x.ip === '10.1.0.7'));
  assert.equal(store.list().length, 6);
}));

test('releaseAddress frees one address only while its link names the attachment', () => withDir((dir) => {
  const store = new IpamStore(dir);
  const net = [cidr('10.1.0.0/29')];
  const a = { containerId: 'a', ifname: 'eth0' };
  store.allocate(a, net);
  store.allocate({ containerId: 'b', ifname: 'eth0' }, net);
  assert.equal(store.releaseAddress('10.1.0.2', a), false, "b's address is not a's");
  assert.equal(store.releaseAddress('10.1.0.3', a), false, 'not allocated');
  assert.equal(store.releaseAddress('10.1.0.1', a), true);
  assert.equal(store.releaseAddress('10.1.0.1', a), false, 'idempotent');
  assert.deepEqual(store.list().map((x) => `${x.ip} ${x.owner}`), ['10.1.0.2 b/eth0']);
  assert.equal(new IpamStore(join(dir, 'missing')).releaseAddress('10.1.0.1', a), false, 'no directory: nothing to free');
}));

test('skips addresses taken behind its back (another process) and ignores foreign files', () => withDir((dir) => {
  const store = new IpamStore(dir);
  symlinkSync('other/eth0', join(dir, '10.2.0.1'));
  symlinkSync('junk', join(dir, 'not-an-ip'));
  assert.deepEqual(store.allocate({ containerId: 'x', ifname: 'eth0' }, [cidr('10.2.0.0/24')]).map((x) => x.ip), ['10.2.0.2']);
  assert.deepEqual(store.list().map((x) => [x.ip, x.owner]).sort(), [['10.2.0.1', 'other/eth0'], ['10.2.0.2', 'x/eth0']]);
}));

test('40 processes allocating at once from a /26 get 40 distinct addresses', () => withDir(async (dir) => {
  const module = fileURLToPath(new URL('../../src/cni/ipam.js', import.meta.url));
  const cidrModule = fileURLToPath(new URL('../../src/policy/cidr.js', import.meta.url));
  const script = `
    const { IpamStore } = await import(${JSON.stringify(module)});
    const { parseCidr } = await import(${JSON.stringify(cidrModule)});
    const got = new IpamStore(${JSON.stringify(dir)}).allocate({ containerId: process.argv[1], ifname: 'eth0' }, [parseCidr('10.3.0.0/26').cidr]);
    process.stdout.write(got[0].ip);`;
  const runs = Array.from({ length: 40 }, (_, i) => new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, `p${i}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(err))));
  }));
  const ips = await Promise.all(runs);
  assert.equal(new Set(ips).size, 40, ips.join(' '));
  assert.equal(readdirSync(dir).filter((n) => n.startsWith('10.3.0.')).length, 40);
}));
