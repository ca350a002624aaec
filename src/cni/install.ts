/**
 * `sluice-cni install`: puts the plugin where a runtime finds it.
 *
 *   <bin-dir>/sluice-cni              the C front end (native/cni-shim, built by
 *                                     scripts/build-cni-shim): forwards the invocation to the
 *                                     agent, which runs the plugin in-process; falls back to ↓
 *   <bin-dir>/sluice-cni-node         a /bin/sh wrapper that execs node on this build's plugin:
 *                                     the single-file bundle (scripts/build-cni-bundle.mjs,
 *                                     ~25 ms less start-up) or the tsc output's main.js
 *                                     (--front node: installed as sluice-cni itself, no shim)
 *   <conf-dir>/<priority>-<name>.conflist   sluice-cni first, then the chained plugins
 *
 * The wrapper clears NODE_OPTIONS and NODE_EXTRA_CA_CERTS: the second alone
 * makes every node start-up parse a CA bundle (~40 ms measured here), and
 * neither may change how a plugin behaves. Files that are not ours are never
 * overwritten (--force to do it anyway); ours are replaced atomically
 * (temp + rename), so a runtime never reads half a file.
 *
 * The conflist's cniVersion is the highest version every plugin of the chain
 * supports, asked of each binary with VERSION: Debian's portmap/bandwidth
 * (1.1.1) stop at 1.0.0, and a 1.1.0 list would make them fail with code 1.
 * --cni-version caps it for the runtime: containerd 1.7's libcni (1.1) reads
 * results up to 1.0.0 and fails every ADD answered in 1.1.0 ("unsupported CNI
 * result version").
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareVersions, isSupported, SUPPORTED_VERSIONS, type CniVersion } from './version.js';

const WRAPPER_MARKER = '# sluice-cni wrapper: written by `sluice-cni install`';
const PLUGIN_TYPE = 'sluice-cni';
// This module runs from dist/src/cni/install.js or from the bundle dist/bundle/cni/sluice-cni.cjs:
// both three directories below the repository root.
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const ESM_MAIN = join(ROOT, 'dist/src/cni/main.js');
const BUNDLE = join(ROOT, 'dist/bundle/cni/sluice-cni.cjs');
const BUNDLE_INPUTS = join(ROOT, 'dist/bundle/cni/sluice-cni.inputs.json');
const SHIM = join(ROOT, 'build/cni-shim/sluice-cni');
/** The shim's fallback, beside it (native/cni-shim/sluice-cni.c: FALLBACK_NAME). */
const NODE_PLUGIN = 'sluice-cni-node';
const ENTRIES = ['auto', 'bundle', 'esm'] as const;
type Entry = (typeof ENTRIES)[number];
const FRONTS = ['auto', 'shim', 'node'] as const;
type Front = (typeof FRONTS)[number];

const USAGE = `usage:
  sluice-cni install --bin-dir DIR --conf-dir DIR [options]
  sluice-cni uninstall --bin-dir DIR --conf-dir DIR [--name NAME] [--priority NN]

As a CNI plugin it is run by the container runtime with CNI_COMMAND set.

install options:
  --name NAME            network name (default sluice)
  --priority NN          conflist file prefix; runtimes take the first file (default 05)
  --chain a,b            plugins chained after sluice-cni, e.g. portmap,bandwidth (must be in --bin-dir)
  --cni-version V        the highest cniVersion the conflist may have: what the runtime's libcni reads
                         (containerd 1.7: 1.0.0); default: the highest sluice-cni and the chain support
  --agent-socket PATH    the agent's endpoint socket (default /var/run/sluice/agent.sock)
  --pod-cidr CIDR        ipam.podCIDRs (default: the Node's spec.podCIDRs, from the agent)
  --ipam-dir DIR         ipam.dataDir (default /var/run/sluice/ipam)
  --mtu N                default 1500
  --datapath bpf|none    default bpf
  --pin-root DIR         default /sys/fs/bpf/sluice
  --node PATH            node binary for the wrapper (default: this one)
  --entry auto|bundle|esm  what the wrapper runs: the single-file bundle (dist/bundle/cni/sluice-cni.cjs,
                         node scripts/build-cni-bundle.mjs) or dist/src/cni/main.js; auto (default): the
                         bundle when it was built from the current sources (a stale bundle is never used)
  --front auto|shim|node   sluice-cni itself: the C front end (build/cni-shim/sluice-cni, scripts/build-cni-shim)
                         with the node wrapper beside it as sluice-cni-node, or the node wrapper alone;
                         auto (default): the shim when it is built
  --force                overwrite files that are not ours
`;

interface InstallOptions {
  binDir: string;
  confDir: string;
  name: string;
  priority: string;
  chain: string[];
  maxVersion: CniVersion | undefined;
  force: boolean;
  node: string;
  entry: Entry;
  front: Front;
  plugin: Record<string, unknown>;
}

export function runInstaller(argv: readonly string[]): number {
  const [verb, ...rest] = argv;
  try {
    if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') {
      process.stdout.write(USAGE);
      return verb === undefined ? 2 : 0;
    }
    const opts = parseOptions(rest);
    if (verb === 'install') install(opts);
    else if (verb === 'uninstall') uninstall(opts);
    else throw new Error(`unknown command "${verb}"`);
    return 0;
  } catch (e) {
    process.stderr.write(`sluice-cni ${verb ?? ''}: ${(e as Error).message}\n`);
    return 2;
  }
}

function parseOptions(args: readonly string[]): InstallOptions {
  const o: InstallOptions = { binDir: '', confDir: '', name: 'sluice', priority: '05', chain: [], maxVersion: undefined, force: false, node: process.execPath, entry: 'auto', front: 'auto', plugin: {} };
  const ipam: Record<string, unknown> = { type: 'sluice' };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i] ?? '';
    if (flag === '--force') {
      o.force = true;
      continue;
    }
    const value = args[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    switch (flag) {
      case '--bin-dir': o.binDir = resolve(value); break;
      case '--conf-dir': o.confDir = resolve(value); break;
      case '--name':
        if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(value)) throw new Error(`--name "${value}": alphanumeric plus '_', '.', '-'`);
        o.name = value;
        break;
      case '--priority':
        if (!/^\d{2}$/.test(value)) throw new Error(`--priority "${value}": two digits, e.g. 05`);
        o.priority = value;
        break;
      case '--chain': o.chain = value.split(',').filter((s) => s !== ''); break;
      case '--cni-version':
        if (!isSupported(value)) throw new Error(`--cni-version "${value}": one of ${SUPPORTED_VERSIONS.join(', ')}`);
        o.maxVersion = value;
        break;
      case '--agent-socket': o.plugin['agentSocket'] = value; break;
      case '--pod-cidr': ipam['podCIDRs'] = value.split(','); break;
      case '--ipam-dir': ipam['dataDir'] = value; break;
      case '--mtu': o.plugin['mtu'] = Number(value); break;
      case '--datapath': o.plugin['datapath'] = value; break;
      case '--pin-root': o.plugin['pinRoot'] = value; break;
      case '--node': o.node = resolve(value); break;
      case '--entry':
        if (!(ENTRIES as readonly string[]).includes(value)) throw new Error(`--entry "${value}": one of ${ENTRIES.join(', ')}`);
        o.entry = value as Entry;
        break;
      case '--front':
        if (!(FRONTS as readonly string[]).includes(value)) throw new Error(`--front "${value}": one of ${FRONTS.join(', ')}`);
        o.front = value as Front;
        break;
      default: throw new Error(`unknown option ${flag}\n${USAGE}`);
    }
  }
  if (o.binDir === '' || o.confDir === '') throw new Error('--bin-dir and --conf-dir are required');
  if (Object.keys(ipam).length > 1) o.plugin['ipam'] = ipam;
  return o;
}

function install(o: InstallOptions): void {
  const pluginPath = join(o.binDir, PLUGIN_TYPE);
  const confPath = join(o.confDir, `${o.priority}-${o.name}.conflist`);
  const shim = o.front === 'node' ? false : existsSync(SHIM);
  if (o.front === 'shim' && !shim) throw new Error(`--front shim: ${SHIM} does not exist (bash scripts/build-cni-shim)`);
  const wrapperPath = shim ? join(o.binDir, NODE_PLUGIN) : pluginPath;
  if (!o.force) {
    refuseForeign(pluginPath, isOurWrapper, 'it is not a sluice-cni wrapper');
    refuseForeign(wrapperPath, isOurWrapper, 'it is not a sluice-cni wrapper');
    refuseForeign(confPath, isOurConflist, `its first plugin is not ${PLUGIN_TYPE}`);
  }
  mkdirSync(o.binDir, { recursive: true });
  mkdirSync(o.confDir, { recursive: true });
  const entry = pluginEntry(o.entry);
  writeAtomic(wrapperPath, wrapper(o.node, entry), 0o755);
  if (shim) {
    writeAtomic(pluginPath, readFileSync(SHIM), 0o755);
    process.stdout.write(`installed ${pluginPath} (front end; falls back to ${NODE_PLUGIN})\n`);
  } else if (existsSync(join(o.binDir, NODE_PLUGIN)) && isOurWrapper(join(o.binDir, NODE_PLUGIN))) {
    rmSync(join(o.binDir, NODE_PLUGIN)); // left by a shim install: without the shim nothing execs it
  }
  const version = chainVersion(o.binDir, o.chain, o.maxVersion);
  const conflist = {
    cniVersion: version,
    name: o.name,
    plugins: [
      { type: PLUGIN_TYPE, ...o.plugin },
      ...o.chain.map((type) => ({ type, ...CHAINED_CAPABILITIES[type] })),
    ],
  };
  writeAtomic(confPath, `${JSON.stringify(conflist, null, 2)}\n`, 0o644);
  process.stdout.write(`installed ${wrapperPath} (runs ${entry})\ninstalled ${confPath} (cniVersion ${version})\n`);
  const earlier = readdirSync(o.confDir).filter((f) => /\.(conflist|conf|json)$/.test(f) && f < `${o.priority}-${o.name}.conflist`);
  if (earlier.length > 0) process.stdout.write(`note: runtimes use the first config in ${o.confDir}; these sort before ours: ${earlier.join(', ')}\n`);
}

function uninstall(o: InstallOptions): void {
  const confPath = join(o.confDir, `${o.priority}-${o.name}.conflist`);
  const files = [[confPath, isOurConflist], [join(o.binDir, PLUGIN_TYPE), isOurWrapper], [join(o.binDir, NODE_PLUGIN), isOurWrapper]] as const;
  for (const [path, ours] of files) {
    if (!existsSync(path)) continue;
    if (!ours(path) && !o.force) throw new Error(`${path} is not ours; left in place (--force removes it)`);
    rmSync(path);
    process.stdout.write(`removed ${path}\n`);
  }
}

/** Runtime capabilities each known chained plugin needs declared. */
const CHAINED_CAPABILITIES: Record<string, Record<string, unknown>> = {
  portmap: { capabilities: { portMappings: true } },
  bandwidth: { capabilities: { bandwidth: true } },
};

/** The highest version sluice-cni and every chained plugin support, at most `max`. */
function chainVersion(binDir: string, chain: readonly string[], max: CniVersion | undefined): CniVersion {
  let common: CniVersion[] = SUPPORTED_VERSIONS.filter((v) => max === undefined || compareVersions(v, max) <= 0);
  for (const type of chain) {
    const bin = join(binDir, type);
    if (!existsSync(bin)) throw new Error(`chained plugin ${type} is not in ${binDir} (install it there, e.g. from containernetworking-plugins)`);
    const r = spawnSync(bin, [], { input: '{"cniVersion":"1.0.0"}', encoding: 'utf8', env: { CNI_COMMAND: 'VERSION', PATH: process.env['PATH'] ?? '' } });
    let versions: unknown;
    try {
      versions = (JSON.parse(r.stdout) as { supportedVersions?: unknown }).supportedVersions;
    } catch {
      throw new Error(`${bin} VERSION did not answer with JSON: ${r.stdout.trim() || r.stderr.trim()}`);
    }
    if (!Array.isArray(versions)) throw new Error(`${bin} VERSION has no supportedVersions`);
    common = common.filter((v) => (versions as unknown[]).includes(v));
  }
  const best = common.filter(isSupported).sort(compareVersions).pop();
  if (best === undefined) throw new Error(`no CNI version is supported by sluice-cni and all of ${chain.join(', ')}`);
  return best;
}

/**
 * The file the wrapper runs. auto takes the bundle only when it was built
 * from the sources as they are now (the build records each input's sha256
 * beside it; a source tree that is not there is taken as unchanged): a
 * bundle left from before an edit would make every later test or runtime run
 * old code while tsc's output is current.
 */
function pluginEntry(mode: Entry): string {
  if (mode === 'esm') return ESM_MAIN;
  if (mode === 'bundle') {
    if (!existsSync(BUNDLE)) throw new Error(`--entry bundle: ${BUNDLE} does not exist (node scripts/build-cni-bundle.mjs)`);
    return BUNDLE;
  }
  return existsSync(BUNDLE) && bundleIsCurrent() ? BUNDLE : ESM_MAIN;
}

function bundleIsCurrent(): boolean {
  let inputs: Record<string, string>;
  try {
    inputs = (JSON.parse(readFileSync(BUNDLE_INPUTS, 'utf8')) as { inputs: Record<string, string> }).inputs;
  } catch {
    return false;
  }
  return Object.entries(inputs).every(([rel, sha]) => {
    const path = join(ROOT, rel);
    return !existsSync(path) || createHash('sha256').update(readFileSync(path)).digest('hex') === sha;
  });
}

function wrapper(node: string, entry: string): string {
  return [
    '#!/bin/sh',
    WRAPPER_MARKER,
    '# A CA bundle in NODE_EXTRA_CA_CERTS costs every start ~40 ms; NODE_OPTIONS must not change a plugin.',
    'unset NODE_OPTIONS NODE_EXTRA_CA_CERTS',
    `exec ${shellQuote(node)} ${shellQuote(entry)} "$@"`,
    '',
  ].join('\n');
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Our wrapper script, or our shim binary (its marker string contains the wrapper's). */
function isOurWrapper(path: string): boolean {
  try {
    return readFileSync(path).includes(WRAPPER_MARKER);
  } catch {
    return false;
  }
}

function isOurConflist(path: string): boolean {
  try {
    const c = JSON.parse(readFileSync(path, 'utf8')) as { plugins?: { type?: unknown }[] };
    return c.plugins?.[0]?.type === PLUGIN_TYPE;
  } catch {
    return false;
  }
}

function refuseForeign(path: string, ours: (p: string) => boolean, why: string): void {
  if (existsSync(path) && !ours(path)) throw new Error(`${path} exists and ${why}; not overwriting it (use --force to replace it)`);
}

function writeAtomic(path: string, content: string | Buffer, mode: number): void {
  const tmp = join(dirname(path), `.${process.pid}.sluice-cni.tmp`);
  writeFileSync(tmp, content, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}
