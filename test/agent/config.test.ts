/** Configuration: defaults, file, environment and flags; every error names its key. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONFIG, loadConfig, type ConfigOverrides } from '../../src/agent/config.js';
import { AgentError } from '../../src/agent/errors.js';
import { parseCommandLine } from '../../src/agent/flags.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-agent-cfg-'));
const kubeconfig = join(dir, 'kubeconfig');
writeFileSync(kubeconfig, '{}');
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const base: ConfigOverrides = { nodeName: 'node-a', kubeconfig };

function fails(overrides: ConfigOverrides, field: string, message: RegExp, env: NodeJS.ProcessEnv = {}): void {
  assert.throws(() => loadConfig(overrides, env), (e: unknown) => {
    assert.ok(e instanceof AgentError, String(e));
    assert.equal(e.code, 'invalid-config');
    assert.equal(e.field, field, e.message);
    assert.match(e.message, message);
    return true;
  });
}

test('defaults with only a node name and a kubeconfig', () => {
  const c = loadConfig(base, {});
  assert.equal(c.nodeName, 'node-a');
  assert.equal(c.kubeconfig, kubeconfig);
  assert.equal(c.inCluster, false);
  assert.equal(c.pinDir, DEFAULT_CONFIG.pinDir);
  assert.equal(c.endpointSocket, '/var/run/sluice/agent.sock');
  assert.deepEqual(c.mapSizes, DEFAULT_CONFIG.mapSizes);
  assert.deepEqual(c.watch, DEFAULT_CONFIG.watch);
  assert.deepEqual(c.sweep, { intervalMs: 30_000, graceMs: 60_000, ipamDataDir: '/var/run/sluice/ipam' }, 'the CNI\'s default IPAM dir; veths in our own netns');
});

test('a YAML file, then flags over it', () => {
  const cfg = file('agent.yaml', `
nodeName: from-file
logLevel: debug
mapSizes: {policy: 1000, fragments: 2048}
sync: {debounceMs: 5, retry: {initialMs: 100, maxMs: 200}}
watch: {pageSize: 50, backoff: {jitter: 1}}
`);
  const c = loadConfig({ configFile: cfg, kubeconfig, logLevel: 'warn', mapSizes: ['ipcache=77', 'interfaces=300'] }, {});
  assert.equal(c.nodeName, 'from-file');
  assert.equal(c.logLevel, 'warn', 'the flag wins');
  assert.equal(c.mapSizes.policy, 1000);
  assert.equal(c.mapSizes.ipcache, 77);
  assert.equal(c.mapSizes.fragments, 2048);
  assert.equal(c.mapSizes.interfaces, 300);
  assert.equal(c.mapSizes.conntrack, DEFAULT_CONFIG.mapSizes.conntrack);
  assert.equal(c.sync.debounceMs, 5);
  assert.deepEqual(c.sync.retry, { ...DEFAULT_CONFIG.sync.retry, initialMs: 100, maxMs: 200 });
  assert.equal(c.watch.pageSize, 50);
  assert.equal(c.watch.backoff.jitter, 1);
  const sweep = file('sweep.yaml', 'sweep: {intervalMs: 0, graceMs: 5, hostNetns: /var/run/netns/node, ipamDataDir: /tmp/ipam}');
  assert.deepEqual(loadConfig({ configFile: sweep, nodeName: 'n', kubeconfig }, {}).sweep, { intervalMs: 0, graceMs: 5, hostNetns: '/var/run/netns/node', ipamDataDir: '/tmp/ipam' });
  const ct = file('ct.yaml', 'conntrack: {udpMs: 5000, tcpEstablishedMs: 3600000}');
  assert.deepEqual(loadConfig({ configFile: ct, nodeName: 'n', kubeconfig }, {}).conntrack, { ...DEFAULT_CONFIG.conntrack, udpMs: 5000, tcpEstablishedMs: 3_600_000 });
  assert.deepEqual(c.conntrack, DEFAULT_CONFIG.conntrack, '0 everywhere: the datapath\'s defaults');
  assert.deepEqual(c.lb, { enabled: true, algorithm: 'random', maglevTableSize: 16381, hostSockets: 'auto', healthzListen: '', healthzTimeoutMs: 60_000, statusListen: '' },
    'Services: on, random unless configured; Maglev tables of 16381 slots; the node\'s sockets load-balanced where a cgroup v2 tree is found; kube-proxy\'s ports not served');
  const lb = file('lb.yaml', 'lb: {algorithm: maglev, maglevTableSize: 65521, hostSockets: /host/sys/fs/cgroup, healthzListen: "0.0.0.0:10256", healthzTimeoutMs: 5000, statusListen: "127.0.0.1:10249"}');
  assert.deepEqual(loadConfig({ configFile: lb, nodeName: 'n', kubeconfig }, {}).lb, {
    enabled: true, algorithm: 'maglev', maglevTableSize: 65521, hostSockets: '/host/sys/fs/cgroup', healthzListen: '0.0.0.0:10256', healthzTimeoutMs: 5000, statusListen: '127.0.0.1:10249',
  });
  const badListen = file('lb-listen.yaml', 'lb: {healthzListen: "10256"}');
  assert.throws(() => loadConfig({ configFile: badListen, nodeName: 'n', kubeconfig }, {}), /lb\.healthzListen: "10256" is not host:port or unix:\/path/);
  const badPort = file('lb-status.yaml', 'lb: {statusListen: "127.0.0.1:70000"}');
  assert.throws(() => loadConfig({ configFile: badPort, nodeName: 'n', kubeconfig }, {}), /lb\.statusListen: port 70000 is out of range/);
  const relative = file('lb-rel.yaml', 'lb: {hostSockets: sys/fs/cgroup}');
  assert.throws(() => loadConfig({ configFile: relative, nodeName: 'n', kubeconfig }, {}), /lb\.hostSockets: want auto, off or an absolute path, got "sys\/fs\/cgroup"/);
  const off = file('lb-off.yaml', 'lb: {enabled: false}');
  assert.equal(loadConfig({ configFile: off, nodeName: 'n', kubeconfig }, {}).lb.enabled, false, 'Services off: another proxy implements them');
  const json = file('agent.json', JSON.stringify({ nodeName: 'json-node', httpListen: '127.0.0.1:0' }));
  assert.equal(loadConfig({ configFile: json, kubeconfig }, {}).httpListen, '127.0.0.1:0');
  assert.equal(loadConfig({ nodeName: 'n', kubeconfig, httpListen: 'unix:/run/sluice/agent-http.sock' }, {}).httpListen, 'unix:/run/sluice/agent-http.sock');
});

test('the node name and kubeconfig from the environment; in-cluster detection', () => {
  const c = loadConfig({}, { NODE_NAME: 'env-node', KUBECONFIG: kubeconfig });
  assert.equal(c.nodeName, 'env-node');
  assert.equal(c.kubeconfig, kubeconfig);
  const pod = loadConfig({}, { NODE_NAME: 'n', KUBERNETES_SERVICE_HOST: '10.96.0.1' });
  assert.equal(pod.inCluster, true);
  assert.equal(pod.kubeconfig, undefined);
  assert.equal(loadConfig({ nodeName: 'n', inCluster: true }, { KUBECONFIG: kubeconfig }).inCluster, true, 'an explicit --in-cluster wins');
});

test('errors name the key', () => {
  fails({ kubeconfig }, 'nodeName', /required: pass --node-name/);
  fails({ ...base, nodeName: 'Not_A_Node' }, 'nodeName', /nodeName:/);
  fails({ nodeName: 'n' }, 'kubeconfig', /pass --kubeconfig/);
  fails({ nodeName: 'n', kubeconfig: '/no/such/file' }, 'kubeconfig', /cannot read \/no\/such\/file/);
  fails({ ...base, inCluster: true }, 'kubeconfig', /not both/);
  fails({ ...base, pinDir: 'relative' }, 'pinDir', /absolute path/);
  fails({ ...base, endpointSocket: `/${'s'.repeat(120)}` }, 'endpointSocket', /at most 107 bytes/);
  fails({ ...base, httpListen: 'nowhere' }, 'httpListen', /not host:port or unix:\/path/);
  fails({ ...base, httpListen: 'unix:run/agent-http.sock' }, 'httpListen', /must be absolute/);
  fails({ ...base, httpListen: `unix:/${'s'.repeat(120)}` }, 'httpListen', /at most 107 bytes/);
  fails({ ...base, logLevel: 'loud' }, 'logLevel', /"loud" is not one of/);
  fails({ ...base, mapSizes: ['policy'] }, 'mapSizes', /not name=entries/);
  fails({ ...base, mapSizes: ['polcy=5'] }, 'mapSizes.polcy', /unknown map/);
  fails({ ...base, mapSizes: ['policy=0'] }, 'mapSizes.policy', /integer 1\.\./);
  fails({ ...base, nodeName: '' }, 'node-name', /must not be empty/);
});

test('file errors name the dotted key and the file', () => {
  const cases: [string, string, RegExp][] = [
    ['nodeNmae: x', 'nodeNmae', /unknown setting/],
    ['mapSizes: {polcy: 5}', 'mapSizes.polcy', /unknown setting/],
    ['mapSizes: {policy: 2.5}', 'mapSizes.policy', /integer/],
    ['mapSizes: 7', 'mapSizes', /must be a mapping/],
    ['sync: {debounceMs: -1}', 'sync.debounceMs', /integer 0\.\./],
    ['sync: {retry: {jitter: 2}}', 'sync.retry.jitter', /within 0\.\.1/],
    ['watch: {backoff: {maxMs: 1}}', 'watch.backoff.maxMs', /≥ initialMs/],
    ['watch: {timeoutSeconds: "soon"}', 'watch.timeoutSeconds', /must be a number/],
    ['inCluster: "yes"', 'inCluster', /true or false/],
    ['pinDir: 5', 'pinDir', /non-empty string/],
    ['sweep: {intervalMs: -1}', 'sweep.intervalMs', /integer 0\.\./],
    ['sweep: {graceMs: soon}', 'sweep.graceMs', /must be a number/],
    ['sweep: {hostNetns: netns/node}', 'sweep.hostNetns', /absolute path/],
    ['sweep: {ipamDataDir: ""}', 'sweep.ipamDataDir', /non-empty string/],
    ['sweep: {intervalMS: 5}', 'sweep.intervalMS', /unknown setting/],
    ['conntrack: {udpMs: -5}', 'conntrack.udpMs', /integer 0\.\./],
    ['conntrack: {udp: 5}', 'conntrack.udp', /unknown setting/],
    ['lb: {algorithm: roundrobin}', 'lb.algorithm', /want one of maglev, random, got "roundrobin"/],
    ['lb: {maglevTableSize: 1000}', 'lb.maglevTableSize', /want one of the primes 251, .*16381.*, got 1000/],
    ['lb: {tableSize: 251}', 'lb.tableSize', /unknown setting/],
  ];
  for (const [text, field, message] of cases) {
    const p = file('bad.yaml', text);
    fails({ ...base, configFile: p }, field, message);
    assert.throws(() => loadConfig({ ...base, configFile: p }, {}), (e: unknown) => e instanceof Error && e.message.startsWith(p));
  }
  fails({ ...base, configFile: file('list.yaml', '- a') }, 'config', /must be a mapping/);
  fails({ ...base, configFile: file('broken.yaml', 'a: [') }, 'config', /not valid YAML/);
  fails({ ...base, configFile: join(dir, 'missing.yaml') }, 'config', /cannot read/);
});

test('command-line flags', () => {
  const c = parseCommandLine(['--node-name', 'n1', '--kubeconfig=/k', '--map-size', 'policy=5', '--map-size', 'ipcache=6', '--datapath', 'none', '--in-cluster']);
  assert.deepEqual(c.overrides, { nodeName: 'n1', kubeconfig: '/k', mapSizes: ['policy=5', 'ipcache=6'], inCluster: true });
  assert.equal(c.datapath, 'none');
  assert.equal(c.help, false);
  assert.equal(parseCommandLine([]).datapath, 'bpf');
  assert.equal(parseCommandLine(['-h']).help, true);
  assert.throws(() => parseCommandLine(['--nod-name', 'x']), (e: unknown) => e instanceof AgentError && /--nod-name/.test(e.message));
  assert.throws(() => parseCommandLine(['--node-name']), (e: unknown) => e instanceof AgentError && /--node-name/.test(e.message));
  assert.throws(() => parseCommandLine(['--datapath', 'ebpf']), (e: unknown) => e instanceof AgentError && e.field === 'datapath');
  assert.throws(() => parseCommandLine(['stray']), (e: unknown) => e instanceof AgentError && /stray/.test(e.message));
});

test('flows: defaults, the socket flag, TCP with TLS only, the exporter; errors name the key', () => {
  const d = loadConfig(base, {});
  assert.deepEqual(d.flows, { socket: '/var/run/sluice/hubble.sock', capacity: 4095, trace: 'policy' });
  assert.equal(loadConfig({ ...base, flowsSocket: '/run/x/hubble.sock' }, {}).flows.socket, '/run/x/hubble.sock');
  assert.equal(parseCommandLine(['--flows-socket', '/s']).overrides.flowsSocket, '/s');
  const c = loadConfig({ ...base, configFile: file('flows.yaml', `
flows:
  socket: ""
  capacity: 100
  trace: all
  tcp: {listen: "0.0.0.0:4244", certFile: /c.pem, keyFile: /k.pem}
  exporter: {file: /var/log/flows.log, maxSizeMb: 1, maxBackups: 2, allow: [{verdict: [DROPPED]}]}
`) }, {});
  assert.deepEqual(c.flows, {
    socket: '', capacity: 100, trace: 'all',
    tcp: { listen: '0.0.0.0:4244', certFile: '/c.pem', keyFile: '/k.pem' },
    exporter: { file: '/var/log/flows.log', maxSizeBytes: 1048576, maxBackups: 2, allow: [{ verdict: ['DROPPED'] }], deny: [] },
  });
  const cases: [string, string, RegExp][] = [
    ['flows: {socket: relative.sock}', 'flows.socket', /absolute path/],
    ['flows: {capacity: 0}', 'flows.capacity', /integer 1\.\./],
    ['flows: {trace: some}', 'flows.trace', /off, policy, tcp-flags or all/],
    ['flows: {tcp: {listen: ":4244"}}', 'flows.tcp', /TLS only/],
    ['flows: {tcp: {listen: "nowhere"}}', 'flows.tcp.listen', /host:port/],
    ['flows: {exporter: {file: out.log}}', 'flows.exporter.file', /absolute path/],
    ['flows: {exporter: {file: /o.log, allow: {}}}', 'flows.exporter.allow', /must be a list/],
    ['flows: {sockett: /x}', 'flows.sockett', /unknown setting/],
  ];
  for (const [text, field, message] of cases) fails({ ...base, configFile: file('bad-flows.yaml', text) }, field, message);
});

test('hostRouting: bpf by default, kernel when asked; anything else names the key', () => {
  assert.equal(loadConfig(base, {}).hostRouting, 'bpf');
  assert.equal(loadConfig({ ...base, configFile: file('hr.yaml', 'hostRouting: kernel') }, {}).hostRouting, 'kernel');
  fails({ ...base, configFile: file('bad-hr.yaml', 'hostRouting: ebpf') }, 'hostRouting', /want one of bpf, kernel, got "ebpf"/);
});
