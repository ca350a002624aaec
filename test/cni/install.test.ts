/**
 * `sluice-cni install|uninstall`: the wrapper runs the plugin with a clean
 * environment, the conflist negotiates its version with the chained
 * plugins, and files that are not ours are never overwritten or removed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CNI_MAIN, DEBIAN_CNI } from './helpers/harness.js';

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CNI_MAIN, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('install writes an executable wrapper and a conflist; chains negotiate the version; foreign files are kept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cni-install-'));
  try {
    const bin = join(dir, 'bin');
    const conf = join(dir, 'net.d');
    mkdirSync(bin);
    symlinkSync(join(DEBIAN_CNI, 'portmap'), join(bin, 'portmap'));
    const r = cli(['install', '--bin-dir', bin, '--conf-dir', conf, '--chain', 'portmap', '--pod-cidr', '10.244.0.0/24', '--mtu', '1450']);
    assert.equal(r.status, 0, r.stderr);
    const wrapper = join(bin, 'sluice-cni');
    assert.equal(statSync(wrapper).mode & 0o777, 0o755);
    // sluice-cni is the C front end (an ELF binary); the node wrapper it falls back to lies beside it.
    assert.equal(readFileSync(wrapper).subarray(0, 4).toString('latin1'), '\x7fELF');
    assert.match(readFileSync(join(bin, 'sluice-cni-node'), 'utf8'), /^#!\/bin\/sh\n# sluice-cni wrapper/);
    assert.equal(statSync(join(bin, 'sluice-cni-node')).mode & 0o777, 0o755);
    // The wrapper drops NODE_EXTRA_CA_CERTS/NODE_OPTIONS and answers VERSION like the plugin.
    const v = spawnSync(wrapper, [], { input: '', encoding: 'utf8', env: { CNI_COMMAND: 'VERSION', NODE_OPTIONS: '--no-such-flag' } });
    assert.equal(v.status, 0, v.stderr);
    assert.equal((JSON.parse(v.stdout) as { cniVersion: string }).cniVersion, '1.1.0');
    const list = JSON.parse(readFileSync(join(conf, '05-sluice.conflist'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(list, {
      cniVersion: '1.0.0',
      name: 'sluice',
      plugins: [
        { type: 'sluice-cni', mtu: 1450, ipam: { type: 'sluice', podCIDRs: ['10.244.0.0/24'] } },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    });

    // Reinstalling over our own files is fine; a foreign conflist of the same name is not touched.
    assert.equal(cli(['install', '--bin-dir', bin, '--conf-dir', conf]).status, 0);
    writeFileSync(join(conf, '05-other.conflist'), '{"name":"other","plugins":[{"type":"bridge"}]}');
    const refused = cli(['install', '--bin-dir', bin, '--conf-dir', conf, '--name', 'other']);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /05-other\.conflist exists and its first plugin is not sluice-cni; not overwriting/);
    assert.equal(readFileSync(join(conf, '05-other.conflist'), 'utf8'), '{"name":"other","plugins":[{"type":"bridge"}]}');
    const missing = cli(['install', '--bin-dir', bin, '--conf-dir', conf, '--chain', 'nosuchplugin']);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /chained plugin nosuchplugin is not in/);

    const un = cli(['uninstall', '--bin-dir', bin, '--conf-dir', conf]);
    assert.equal(un.status, 0, un.stderr);
    assert.equal(existsSync(wrapper), false);
    assert.equal(existsSync(join(bin, 'sluice-cni-node')), false);
    assert.equal(existsSync(join(conf, '05-sluice.conflist')), false);

    // --front node: the wrapper alone, as sluice-cni.
    assert.equal(cli(['install', '--bin-dir', bin, '--conf-dir', conf, '--front', 'node']).status, 0);
    assert.match(readFileSync(wrapper, 'utf8'), /^#!\/bin\/sh\n# sluice-cni wrapper/);
    assert.equal(existsSync(join(bin, 'sluice-cni-node')), false);
    assert.equal(cli(['uninstall', '--bin-dir', bin, '--conf-dir', conf]).status, 0);
    assert.equal(existsSync(join(conf, '05-other.conflist')), true);
    assert.equal(existsSync(join(bin, 'portmap')), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--cni-version caps the conflist\'s version for the runtime\'s libcni; an unknown version is refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cni-install-'));
  try {
    const bin = join(dir, 'bin');
    const conf = join(dir, 'net.d');
    const version = (): unknown => (JSON.parse(readFileSync(join(conf, '05-sluice.conflist'), 'utf8')) as { cniVersion: unknown }).cniVersion;
    assert.equal(cli(['install', '--bin-dir', bin, '--conf-dir', conf]).status, 0);
    assert.equal(version(), '1.1.0');
    const r = cli(['install', '--bin-dir', bin, '--conf-dir', conf, '--cni-version', '1.0.0']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /cniVersion 1\.0\.0/);
    assert.equal(version(), '1.0.0');
    const bad = cli(['install', '--bin-dir', bin, '--conf-dir', conf, '--cni-version', '1.2.0']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--cni-version "1\.2\.0": one of 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0/);
    assert.equal(version(), '1.0.0');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('unknown installer flags exit 2 with usage', () => {
  const r = cli(['install', '--bogus', 'x']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown option --bogus/);
});

test('--entry: the wrapper runs the single-file bundle or main.js; auto never takes a bundle older than main.js', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cni-install-'));
  const bundle = join(dirname(CNI_MAIN), '..', '..', 'bundle', 'cni', 'sluice-cni.cjs');
  assert.ok(existsSync(bundle), `${bundle} missing: node scripts/build-cni-bundle.mjs (scripts/setup runs it)`);
  try {
    const bin = join(dir, 'bin');
    const conf = join(dir, 'net.d');
    const runs = (entry: string): string => {
      const r = cli(['install', '--bin-dir', bin, '--conf-dir', conf, '--entry', entry]);
      assert.equal(r.status, 0, r.stderr);
      const line = readFileSync(join(bin, 'sluice-cni-node'), 'utf8').split('\n').find((l) => l.startsWith('exec ')) ?? '';
      // The plugin answers VERSION through whichever file the wrapper execs (the shim, sluice-cni, answers it itself).
      const v = spawnSync(join(bin, 'sluice-cni-node'), [], { input: '', encoding: 'utf8', env: { CNI_COMMAND: 'VERSION' } });
      assert.equal(v.status, 0, v.stderr);
      assert.deepEqual((JSON.parse(v.stdout) as { supportedVersions: string[] }).supportedVersions, ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
      return line;
    };
    assert.ok(runs('bundle').endsWith(`'${bundle}' "$@"`));
    assert.ok(runs('esm').endsWith(`'${CNI_MAIN}' "$@"`));
    // auto, in a copy of the layout (no shim built there: the wrapper is sluice-cni itself): the bundle while its recorded inputs match the sources, main.js once one differs.
    const root = join(dir, 'repo');
    const copy = join(root, 'dist', 'bundle', 'cni', 'sluice-cni.cjs');
    mkdirSync(dirname(copy), { recursive: true });
    mkdirSync(join(root, 'src', 'cni'), { recursive: true });
    copyFileSync(bundle, copy);
    writeFileSync(join(root, 'src', 'cni', 'x.ts'), 'export const x = 1;\n');
    const sha = createHash('sha256').update('export const x = 1;\n').digest('hex');
    writeFileSync(copy.replace(/\.cjs$/, '.inputs.json'), JSON.stringify({ bundle: 'sluice-cni.cjs', inputs: { 'src/cni/x.ts': sha } }));
    const auto = (): string => {
      const r = spawnSync(process.execPath, [copy, 'install', '--bin-dir', bin, '--conf-dir', conf], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return readFileSync(join(bin, 'sluice-cni'), 'utf8').split('\n').find((l) => l.startsWith('exec ')) ?? '';
    };
    assert.ok(auto().endsWith(`'${copy}' "$@"`), 'a current bundle was not taken');
    writeFileSync(join(root, 'src', 'cni', 'x.ts'), 'export const x = 2;\n');
    assert.ok(auto().endsWith(`'${join(root, 'dist', 'src', 'cni', 'main.js')}' "$@"`), 'a stale bundle was taken');
    const bad = cli(['install', '--bin-dir', bin, '--conf-dir', conf, '--entry', 'snapshot']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--entry "snapshot": one of auto, bundle, esm/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
