/**
 * The network config (src/cni/config.ts), field by field: defaults, what
 * each field accepts, and for what it refuses the CNI error code (6 decode,
 * 1 version, 2 unsupported, 7 invalid) and a message naming the field and
 * the rule it broke.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeConfig, DEFAULTS, parseConfig, parsePodCidrs } from '../../src/cni/config.js';
import { CniCode, CniError, type CniErrorCode } from '../../src/cni/errors.js';
import { formatCidr } from '../../src/policy/cidr.js';

const BASE = { cniVersion: '1.1.0', name: 'sluice', type: 'sluice-cni' };

function conf(extra: Record<string, unknown>): Record<string, unknown> {
  return { ...BASE, ...extra };
}

/** parseConfig(raw) throws a CniError with this code whose message matches every pattern. */
function refuses(raw: Record<string, unknown>, code: CniErrorCode, ...patterns: RegExp[]): void {
  assert.throws(() => parseConfig(raw), (e: unknown) => {
    assert.ok(e instanceof CniError, String(e));
    assert.equal(e.code, code, `${JSON.stringify(raw)}: ${e.message}`);
    for (const p of patterns) assert.match(e.message, p, JSON.stringify(raw));
    return true;
  });
}

test('decodeConfig: one JSON object, else 6 saying what stdin was', () => {
  assert.deepEqual(decodeConfig('{"a": 1}'), { a: 1 });
  const decode = (stdin: string, pattern: RegExp): void => {
    assert.throws(() => decodeConfig(stdin), (e: unknown) => e instanceof CniError && e.code === CniCode.DECODE && pattern.test(e.message), stdin);
  };
  decode('', /stdin is empty/);
  decode('  \n', /stdin is empty/);
  decode('{"cniVersion": ', /stdin is not JSON/);
  decode('[1]', /want a JSON object, got a list/);
  decode('null', /want a JSON object, got null/);
  decode('7', /want a JSON object, got 7/);
});

test('the smallest config gets every default', () => {
  const c = parseConfig({ ...BASE });
  assert.equal(c.cniVersion, '1.1.0');
  assert.equal(c.name, 'sluice');
  assert.equal(c.type, 'sluice-cni');
  assert.equal(c.agentSocket, DEFAULTS.agentSocket);
  assert.equal(c.mtu, DEFAULTS.mtu);
  assert.equal(c.datapath, 'bpf');
  assert.equal(c.pinRoot, DEFAULTS.pinRoot);
  assert.equal(c.bpfObject, undefined);
  assert.equal(c.timeoutMs, DEFAULTS.timeoutMs);
  assert.deepEqual(c.ipam, { podCIDRs: [], dataDir: DEFAULTS.ipamDataDir });
  assert.deepEqual(c.dns, {});
  assert.equal(c.mac, undefined);
  assert.equal(c.prevResult, undefined);
  assert.equal(c.validAttachments, undefined);
});

test('every field set to a valid value comes back as given', () => {
  const c = parseConfig(conf({
    cniVersions: ['1.0.0', '1.1.0'], args: {}, capabilities: { portMappings: true }, disableCheck: false, disableGC: true,
    agentSocket: '/run/a.sock', mtu: 9000, datapath: 'none', pinRoot: '/sys/fs/bpf/x', bpfObject: '/opt/lxc.o', timeoutMs: 100,
    ipam: { type: 'sluice', podCIDRs: ['10.1.2.0/24'], dataDir: '/var/lib/ipam' },
    dns: { nameservers: ['10.0.0.10'], domain: 'cluster.local', search: ['svc.cluster.local'], options: ['ndots:5'] },
    runtimeConfig: { mac: '02:42:AC:11:00:02' },
    prevResult: { interfaces: [{ name: 'eth0' }], ips: [{ address: '10.1.2.3/32', interface: 0 }] },
    'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'eth0' }],
  }));
  assert.equal(c.agentSocket, '/run/a.sock');
  assert.equal(c.mtu, 9000);
  assert.equal(c.datapath, 'none');
  assert.equal(c.pinRoot, '/sys/fs/bpf/x');
  assert.equal(c.bpfObject, '/opt/lxc.o');
  assert.equal(c.timeoutMs, 100);
  assert.deepEqual(c.ipam.podCIDRs.map(formatCidr), ['10.1.2.0/24']);
  assert.equal(c.ipam.dataDir, '/var/lib/ipam');
  assert.deepEqual(c.dns, { nameservers: ['10.0.0.10'], domain: 'cluster.local', search: ['svc.cluster.local'], options: ['ndots:5'] });
  assert.equal(c.mac, '02:42:ac:11:00:02', 'the MAC in lower case');
  assert.deepEqual(c.prevResult?.ips, [{ address: '10.1.2.3/32', interface: 0 }]);
  assert.deepEqual(c.validAttachments, [{ containerId: 'c1', ifname: 'eth0' }]);
});

test('cniVersion: missing, not a string or not supported is 1', () => {
  const { cniVersion: _v, ...noVersion } = BASE;
  refuses(noVersion, CniCode.INCOMPATIBLE_VERSION, /no cniVersion/);
  refuses(conf({ cniVersion: 1.1 }), CniCode.INCOMPATIBLE_VERSION, /must be a string/);
  refuses(conf({ cniVersion: '0.2.0' }), CniCode.INCOMPATIBLE_VERSION, /"0\.2\.0" is not supported/);
  refuses(conf({ cniVersion: 'latest' }), CniCode.INCOMPATIBLE_VERSION, /"latest" is not a version/);
  for (const v of ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) assert.equal(parseConfig(conf({ cniVersion: v })).cniVersion, v);
});

test('an unknown key is 2 naming key and value (a long value shortened), with the known keys', () => {
  refuses(conf({ mut: 1400 }), CniCode.UNSUPPORTED_FIELD, /unsupported field mut=1400/, /known: agentSocket, mtu,/);
  refuses(conf({ extra: 'x'.repeat(200) }), CniCode.UNSUPPORTED_FIELD, /extra="x{79}…/);
});

test('name and type: required non-empty strings; name alphanumeric plus _ . -', () => {
  const { name: _n, ...noName } = BASE;
  refuses(noName, CniCode.INVALID_CONFIG, /invalid network config: name: is required/);
  refuses(conf({ name: '' }), CniCode.INVALID_CONFIG, /name: must be a non-empty string, got ""/);
  refuses(conf({ name: 3 }), CniCode.INVALID_CONFIG, /name: must be a non-empty string, got 3/);
  refuses(conf({ name: 'my net' }), CniCode.INVALID_CONFIG, /name: "my net" must be alphanumeric/);
  refuses(conf({ name: '-net' }), CniCode.INVALID_CONFIG, /name: "-net" must be .*starting alphanumeric/);
  assert.equal(parseConfig(conf({ name: 'a_b.c-1' })).name, 'a_b.c-1');
  const { type: _t, ...noType } = BASE;
  refuses(noType, CniCode.INVALID_CONFIG, /type: is required/);
  refuses(conf({ type: null }), CniCode.INVALID_CONFIG, /type: must be a non-empty string, got null/);
});

test('the spec\'s optional keys: cniVersions a list of strings, args/capabilities/runtimeConfig objects, disableCheck/disableGC booleans', () => {
  refuses(conf({ cniVersions: '1.0.0' }), CniCode.INVALID_CONFIG, /cniVersions: must be a list of version strings/);
  refuses(conf({ cniVersions: [1] }), CniCode.INVALID_CONFIG, /cniVersions:/);
  for (const k of ['args', 'capabilities', 'runtimeConfig']) {
    refuses(conf({ [k]: [] }), CniCode.INVALID_CONFIG, new RegExp(`${k}: must be an object, got \\[\\]`));
    refuses(conf({ [k]: 'x' }), CniCode.INVALID_CONFIG, new RegExp(`${k}: must be an object`));
  }
  for (const k of ['disableCheck', 'disableGC']) {
    refuses(conf({ [k]: 'true' }), CniCode.INVALID_CONFIG, new RegExp(`${k}: must be true or false, got "true"`));
    assert.doesNotThrow(() => parseConfig(conf({ [k]: true })));
  }
});

test('agentSocket: an absolute path a unix socket can have', () => {
  refuses(conf({ agentSocket: 'agent.sock' }), CniCode.INVALID_CONFIG, /agentSocket: must be an absolute path, got "agent.sock"/);
  refuses(conf({ agentSocket: '' }), CniCode.INVALID_CONFIG, /agentSocket: must be a non-empty string/);
  refuses(conf({ agentSocket: `/${'a'.repeat(107)}` }), CniCode.INVALID_CONFIG, /agentSocket: is longer than a unix socket path may be \(107 bytes\)/);
  assert.equal(parseConfig(conf({ agentSocket: `/${'a'.repeat(106)}` })).agentSocket.length, 107, '107 bytes fit');
  refuses(conf({ agentSocket: `/${'é'.repeat(54)}` }), CniCode.INVALID_CONFIG, /longer than a unix socket path/); // 109 bytes, 55 characters
});

test('mtu 576..65535 and timeoutMs 100..600000: integers', () => {
  for (const [key, min, max] of [['mtu', 576, 65535], ['timeoutMs', 100, 600_000]] as const) {
    for (const ok of [min, max]) assert.equal(parseConfig(conf({ [key]: ok }))[key], ok);
    for (const bad of [min - 1, max + 1, min + 0.5, String(min), null]) {
      refuses(conf({ [key]: bad }), CniCode.INVALID_CONFIG, new RegExp(`${key}: must be an integer ${min}\\.\\.${max}, got ${JSON.stringify(bad).replace(/[.]/g, '\\.')}`));
    }
  }
});

test('datapath "bpf" or "none"; pinRoot and bpfObject absolute paths', () => {
  refuses(conf({ datapath: 'xdp' }), CniCode.INVALID_CONFIG, /datapath: must be "bpf" or "none", got "xdp"/);
  refuses(conf({ datapath: true }), CniCode.INVALID_CONFIG, /datapath: must be a non-empty string/);
  refuses(conf({ pinRoot: 'sys/fs/bpf' }), CniCode.INVALID_CONFIG, /pinRoot: must be an absolute path, got "sys\/fs\/bpf"/);
  refuses(conf({ bpfObject: 'lxc.o' }), CniCode.INVALID_CONFIG, /bpfObject: must be an absolute path, got "lxc.o"/);
  refuses(conf({ bpfObject: '' }), CniCode.INVALID_CONFIG, /bpfObject: must be a non-empty string/);
});

test('ipam: type "sluice" only, known keys, an absolute dataDir, a list of pod CIDRs', () => {
  refuses(conf({ ipam: 'sluice' }), CniCode.INVALID_CONFIG, /ipam: must be an object, got "sluice"/);
  refuses(conf({ ipam: { type: 'host-local' } }), CniCode.UNSUPPORTED_FIELD, /ipam\.type="host-local": sluice-cni allocates from the node's pod CIDR itself/);
  refuses(conf({ ipam: {} }), CniCode.UNSUPPORTED_FIELD, /ipam\.type=undefined/);
  refuses(conf({ ipam: { type: 'sluice', ranges: [] } }), CniCode.UNSUPPORTED_FIELD, /unsupported field ipam\.ranges=\[\] \(known: type, podCIDRs, dataDir\)/);
  refuses(conf({ ipam: { type: 'sluice', dataDir: 'ipam' } }), CniCode.INVALID_CONFIG, /ipam\.dataDir: must be an absolute path, got "ipam"/);
  refuses(conf({ ipam: { type: 'sluice', dataDir: 5 } }), CniCode.INVALID_CONFIG, /ipam\.dataDir: must be an absolute path, got 5/);
  refuses(conf({ ipam: { type: 'sluice', podCIDRs: '10.1.0.0/24' } }), CniCode.INVALID_CONFIG, /ipam\.podCIDRs: must be a list of CIDRs/);
  refuses(conf({ ipam: { type: 'sluice', podCIDRs: ['10.1.0.1/24'] } }), CniCode.INVALID_CONFIG, /ipam\.podCIDRs\[0\]: "10\.1\.0\.1\/24" has host bits set/);
  assert.deepEqual(parseConfig(conf({ ipam: { type: 'sluice' } })).ipam, { podCIDRs: [], dataDir: DEFAULTS.ipamDataDir });
});

test('parsePodCidrs: one per family, IPv4 up to /30; IPv6 is 2 until the datapath carries it', () => {
  assert.deepEqual(parsePodCidrs(['10.244.1.0/24'], 'f').map(formatCidr), ['10.244.1.0/24']);
  assert.deepEqual(parsePodCidrs(['10.244.1.0/30'], 'f').map(formatCidr), ['10.244.1.0/30']);
  assert.deepEqual(parsePodCidrs([], 'f'), []);
  const refused = (list: string[], code: CniErrorCode, pattern: RegExp): void => {
    assert.throws(() => parsePodCidrs(list, 'f'), (e: unknown) => e instanceof CniError && e.code === code && pattern.test(e.message), JSON.stringify(list));
  };
  refused(['10.244.1.0'], CniCode.INVALID_CONFIG, /f\[0\]: "10\.244\.1\.0" is not a CIDR/);
  refused(['10.244.1.0/24', '10.300.0.0/16'], CniCode.INVALID_CONFIG, /f\[1\]:/);
  refused(['10.244.1.0/31'], CniCode.INVALID_CONFIG, /f\[0\]: "10\.244\.1\.0\/31" is too small for pods \(want \/30 or wider\)/);
  refused(['10.244.1.0/24', '10.245.0.0/16'], CniCode.INVALID_CONFIG, /f: more than one IPv4 CIDR/);
  refused(['fd00::/64'], CniCode.UNSUPPORTED_FIELD, /f\[0\]="fd00::\/64": IPv6 pod CIDRs are not supported yet/);
});

test('dns: known keys only, nameservers are IP addresses', () => {
  refuses(conf({ dns: [] }), CniCode.INVALID_CONFIG, /dns: must be an object/);
  refuses(conf({ dns: { servers: ['1.1.1.1'] } }), CniCode.UNSUPPORTED_FIELD, /dns\.servers: unsupported field/);
  refuses(conf({ dns: { nameservers: ['dns.local'] } }), CniCode.INVALID_CONFIG, /dns\.nameservers: "dns\.local" is not an IP address/);
  refuses(conf({ dns: { search: 'cluster.local' } }), CniCode.INVALID_CONFIG, /dns\.search: must be a list of strings/);
  refuses(conf({ dns: { domain: 7 } }), CniCode.INVALID_CONFIG, /dns\.domain: must be a non-empty string/);
});

test('runtimeConfig.mac: a unicast MAC, lower-cased; other runtimeConfig keys pass', () => {
  assert.equal(parseConfig(conf({ runtimeConfig: { portMappings: [] } })).mac, undefined);
  refuses(conf({ runtimeConfig: { mac: '02:42:ac:11:00' } }), CniCode.INVALID_CONFIG, /runtimeConfig\.mac: must be a MAC address like/);
  refuses(conf({ runtimeConfig: { mac: 2 } }), CniCode.INVALID_CONFIG, /runtimeConfig\.mac: must be a MAC address/);
  refuses(conf({ runtimeConfig: { mac: '01:00:5e:00:00:01' } }), CniCode.INVALID_CONFIG, /runtimeConfig\.mac: 01:00:5e:00:00:01 is a multicast address/);
});

test('prevResult: absent or null is none, else a result in the config\'s version (7 naming the field)', () => {
  assert.equal(parseConfig(conf({ prevResult: null })).prevResult, undefined);
  refuses(conf({ prevResult: [] }), CniCode.INVALID_CONFIG, /prevResult: must be an object/);
  refuses(conf({ prevResult: { ips: [{ address: '10.0.0.1/32' }] }, cniVersion: '0.4.0' }), CniCode.INVALID_CONFIG, /prevResult\.ips\[0\]\.version/);
});

test('GC\'s attachment list: cni.dev/valid-attachments (or cni.dev/attachments), each {containerID, ifname}', () => {
  assert.deepEqual(parseConfig(conf({ 'cni.dev/attachments': [{ containerID: 'a', ifname: 'eth0' }] })).validAttachments, [{ containerId: 'a', ifname: 'eth0' }]);
  assert.deepEqual(parseConfig(conf({ 'cni.dev/valid-attachments': [] })).validAttachments, []);
  refuses(conf({ 'cni.dev/valid-attachments': {} }), CniCode.INVALID_CONFIG, /cni\.dev\/valid-attachments: must be a list of \{containerID, ifname\}/);
  refuses(conf({ 'cni.dev/valid-attachments': [{ containerId: 'a', ifname: 'eth0' }] }), CniCode.INVALID_CONFIG, /cni\.dev\/valid-attachments\[0\]: must be \{"containerID": string, "ifname": string\}/);
  refuses(conf({ 'cni.dev/attachments': [{ containerID: 'a' }] }), CniCode.INVALID_CONFIG, /cni\.dev\/attachments\[0\]:/);
});
