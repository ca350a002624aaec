// kind/runtime-wrapper, the OCI runtime kind/up registers with dockerd where
// the capability bounding set lacks a capability. Runs the built wrapper in
// front of a stand-in runc (a script that records its arguments), under
// capsh with two more capabilities dropped from the bounding set, so that
// what it removes is known from outside: the dropped two plus whatever this
// machine's bounding set already lacks (decoded by capsh, not by the wrapper).
//
// Proves: create/run edit the bundle's config.json and exec edits the
// --process file, every capability list losing exactly the unavailable
// names; other fields (a number above 2^53 included) are kept exactly; the
// runtime gets the arguments unchanged; a request within the bounding set
// leaves the file byte-identical.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DROPPED = ['CAP_SYS_TIME', 'CAP_NET_RAW'];

/** Capability names of a mask, as capsh decodes them ("CAP_CHOWN", …). */
async function decode(mask: bigint): Promise<string[]> {
  if (mask === 0n) return [];
  const { stdout } = await run('capsh', [`--decode=0x${mask.toString(16)}`]);
  const list = stdout.trim().split('=')[1] ?? '';
  return list.split(',').filter((n) => n !== '').map((n) => n.toUpperCase());
}

async function boundingMask(): Promise<bigint> {
  const status = await readFile('/proc/self/status', 'utf8');
  const hex = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  assert.ok(hex, 'CapBnd in /proc/self/status');
  return BigInt(`0x${hex}`);
}

describe('runtime wrapper', () => {
  let dir = '';
  let wrapper = '';
  let all: string[] = [];
  let unavailable = new Set<string>();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-rtw-'));
    wrapper = (await run('bash', [join(ROOT, 'scripts', 'build-runtime-wrapper')])).stdout.trim();
    const last = Number((await readFile('/proc/sys/kernel/cap_last_cap', 'utf8')).trim());
    const known = (1n << BigInt(last + 1)) - 1n;
    all = await decode(known);
    const missingHere = await decode(known & ~(await boundingMask()));
    unavailable = new Set([...missingHere, ...DROPPED]);
    await writeFile(join(dir, 'runc'), `#!/bin/sh\nprintf '%s\\n' "$@" > "${dir}/argv"\n`);
    await chmod(join(dir, 'runc'), 0o755);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs the wrapper with DROPPED also removed from the bounding set; returns the argv the runtime got. */
  async function wrap(args: string[]): Promise<string[]> {
    await run('capsh', [`--drop=${DROPPED.join(',').toLowerCase()}`, '--', '-c', 'exec "$@"', 'sh', wrapper, ...args], {
      env: { ...process.env, SLUICE_RUNC: join(dir, 'runc') },
    });
    return (await readFile(join(dir, 'argv'), 'utf8')).trimEnd().split('\n');
  }

  const capsOf = (names: string[]) => ({
    bounding: names, effective: names, inheritable: names, permitted: names, ambient: names,
  });
  // A number JSON.parse cannot hold exactly: the wrapper must write it back as read.
  const BIG = '9007199254740993';

  test('create: the bundle config loses exactly the unavailable capabilities', async () => {
    const bundle = join(dir, 'bundle');
    await run('mkdir', ['-p', bundle]);
    const config = `{"ociVersion":"1.0.2","process":{"args":["/sbin/init"],"capabilities":${JSON.stringify(capsOf(all))}},` +
      `"linux":{"resources":{"memory":{"limit":${BIG}}}},"annotations":{"a":"b"}}`;
    await writeFile(join(bundle, 'config.json'), config);
    const args = ['--root', '/run/x', '--log', '/tmp/x.log', '--log-format', 'json', 'create', '--bundle', bundle, '--pid-file', '/tmp/p', 'c1'];
    assert.deepEqual(await wrap(args), args);
    const text = await readFile(join(bundle, 'config.json'), 'utf8');
    assert.match(text, new RegExp(`"limit":${BIG}`));
    const doc = JSON.parse(text) as { process: { args: string[]; capabilities: Record<string, string[]> }; annotations: unknown };
    const expected = all.filter((c) => !unavailable.has(c));
    assert.ok(expected.length < all.length && expected.length > 0);
    for (const set of ['bounding', 'effective', 'inheritable', 'permitted', 'ambient']) {
      assert.deepEqual(doc.process.capabilities[set], expected, set);
    }
    assert.deepEqual(doc.process.args, ['/sbin/init']);
    assert.deepEqual(doc.annotations, { a: 'b' });
  });

  test('run with -b= form and exec with --process are edited too', async () => {
    const bundle = join(dir, 'bundle2');
    await run('mkdir', ['-p', bundle]);
    await writeFile(join(bundle, 'config.json'), JSON.stringify({ process: { capabilities: capsOf(all) } }));
    await wrap(['run', `--bundle=${bundle}`, 'c2']);
    const runDoc = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: { capabilities: { permitted: string[] } } };
    assert.deepEqual(runDoc.process.capabilities.permitted, all.filter((c) => !unavailable.has(c)));

    const processFile = join(dir, 'process.json');
    await writeFile(processFile, JSON.stringify({ args: ['sh'], capabilities: capsOf(all) }));
    const args = ['--root', '/run/x', 'exec', '--process', processFile, '--detach', 'c2'];
    assert.deepEqual(await wrap(args), args);
    const proc = JSON.parse(await readFile(processFile, 'utf8')) as { capabilities: { effective: string[] } };
    assert.deepEqual(proc.capabilities.effective, all.filter((c) => !unavailable.has(c)));
  });

  test('a request within the bounding set is left byte-identical', async () => {
    const bundle = join(dir, 'bundle3');
    await run('mkdir', ['-p', bundle]);
    const available = all.filter((c) => !unavailable.has(c));
    const config = `{ "process": { "capabilities": ${JSON.stringify(capsOf(available.slice(0, 3)))} } }`;
    await writeFile(join(bundle, 'config.json'), config);
    await wrap(['create', '-b', bundle, 'c3']);
    assert.equal(await readFile(join(bundle, 'config.json'), 'utf8'), config);
  });
});
