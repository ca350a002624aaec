/**
 * Every malformed environment and config through the real binary: the
 * spec's error object on stdout ({cniVersion, code, msg}), exit 1, and a
 * message that names what to fix. None of these reach the agent or touch
 * the network, so they run without a node namespace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CNI_MAIN, runProcess } from './helpers/harness.js';

const GOOD_ENV = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/var/run/netns/sluice-cni-nonexistent', CNI_IFNAME: 'eth0',
  CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=web', CNI_PATH: '/opt/cni/bin' };
const GOOD_CONF = { cniVersion: '1.1.0', name: 'sluice', type: 'sluice-cni', agentSocket: '/tmp/sluice-cni-no-agent.sock',
  ipam: { type: 'sluice', podCIDRs: ['10.244.0.0/24'], dataDir: '/tmp/sluice-cni-bad-input-ipam' } };

interface Case {
  readonly name: string;
  readonly env?: Record<string, string | undefined>;
  readonly conf?: unknown;
  readonly code: number;
  readonly msg: RegExp;
}

const CASES: Case[] = [
  // environment (4), CNI_ARGS keys (2)
  { name: 'no CNI_COMMAND', env: { CNI_COMMAND: undefined }, code: 4, msg: /CNI_COMMAND is not set/ },
  { name: 'unknown CNI_COMMAND', env: { CNI_COMMAND: 'ATTACH' }, code: 4, msg: /CNI_COMMAND="ATTACH" is not a CNI command/ },
  { name: 'ADD without CNI_CONTAINERID', env: { CNI_CONTAINERID: undefined }, code: 4, msg: /not set: CNI_CONTAINERID/ },
  { name: 'ADD without CNI_NETNS', env: { CNI_NETNS: undefined }, code: 4, msg: /not set: CNI_NETNS/ },
  { name: 'ADD without CNI_IFNAME', env: { CNI_IFNAME: undefined }, code: 4, msg: /not set: CNI_IFNAME/ },
  { name: 'CHECK without CNI_NETNS', env: { CNI_COMMAND: 'CHECK', CNI_NETNS: undefined }, code: 4, msg: /not set: CNI_NETNS/ },
  { name: 'DEL without CNI_CONTAINERID', env: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: '' }, code: 4, msg: /not set: CNI_CONTAINERID/ },
  { name: 'GC without CNI_PATH', env: { CNI_COMMAND: 'GC', CNI_PATH: undefined }, code: 4, msg: /not set: CNI_PATH/ },
  { name: 'container id with a slash', env: { CNI_CONTAINERID: 'a/b' }, code: 4, msg: /CNI_CONTAINERID: "a\/b" must be alphanumeric/ },
  { name: 'container id starting with a dash', env: { CNI_CONTAINERID: '-abc' }, code: 4, msg: /CNI_CONTAINERID/ },
  { name: 'interface name too long', env: { CNI_IFNAME: 'a-very-long-ifname0' }, code: 4, msg: /CNI_IFNAME: must be at most 15 bytes/ },
  { name: 'interface name ".."', env: { CNI_IFNAME: '..' }, code: 4, msg: /CNI_IFNAME: ".." is not a valid interface name/ },
  { name: 'interface name with a colon', env: { CNI_IFNAME: 'eth0:1' }, code: 4, msg: /CNI_IFNAME: "eth0:1" contains/ },
  { name: 'relative CNI_NETNS', env: { CNI_NETNS: 'netns/x' }, code: 4, msg: /CNI_NETNS="netns\/x" must be an absolute path/ },
  { name: 'CNI_NETNS that does not exist', code: 4, msg: /CNI_NETNS=\/var\/run\/netns\/sluice-cni-nonexistent: ENOENT/ },
  { name: 'malformed CNI_ARGS pair', env: { CNI_ARGS: 'K8S_POD_NAME' }, code: 4, msg: /CNI_ARGS: "K8S_POD_NAME" is not KEY=VALUE/ },
  { name: 'unknown CNI_ARGS key without IgnoreUnknown', env: { CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;FOO=bar' }, code: 2, msg: /unsupported key FOO=bar .*IgnoreUnknown/ },
  { name: 'ADD without pod args', env: { CNI_ARGS: undefined }, code: 4, msg: /CNI_ARGS must carry K8S_POD_NAMESPACE and K8S_POD_NAME/ },
  { name: 'pod name without namespace', env: { CNI_ARGS: 'K8S_POD_NAME=web' }, code: 4, msg: /K8S_POD_NAME but not K8S_POD_NAMESPACE/ },
  { name: 'invalid pod namespace', env: { CNI_ARGS: 'K8S_POD_NAMESPACE=Bad_NS;K8S_POD_NAME=web' }, code: 4, msg: /K8S_POD_NAMESPACE="Bad_NS"/ },
  // decoding (6)
  { name: 'empty stdin', conf: '', code: 6, msg: /stdin is empty/ },
  { name: 'stdin not JSON', conf: '{"cniVersion": ', code: 6, msg: /stdin is not JSON/ },
  { name: 'stdin a list', conf: '[]', code: 6, msg: /want a JSON object, got a list/ },
  // versions (1)
  { name: 'no cniVersion', conf: { ...GOOD_CONF, cniVersion: undefined }, code: 1, msg: /no cniVersion .*0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0/ },
  { name: 'cniVersion 0.2.0', conf: { ...GOOD_CONF, cniVersion: '0.2.0' }, code: 1, msg: /"0\.2\.0" is not supported/ },
  { name: 'cniVersion 2.0.0', conf: { ...GOOD_CONF, cniVersion: '2.0.0' }, code: 1, msg: /"2\.0\.0" is not supported/ },
  { name: 'cniVersion garbage', conf: { ...GOOD_CONF, cniVersion: 'latest' }, code: 1, msg: /"latest" is not a version/ },
  { name: 'CHECK at 0.3.1', env: { CNI_COMMAND: 'CHECK' }, conf: { ...GOOD_CONF, cniVersion: '0.3.1' }, code: 1, msg: /0\.3\.1 does not allow CHECK/ },
  { name: 'STATUS at 1.0.0', env: { CNI_COMMAND: 'STATUS' }, conf: { ...GOOD_CONF, cniVersion: '1.0.0' }, code: 1, msg: /1\.0\.0 does not allow STATUS/ },
  { name: 'GC at 1.0.0', env: { CNI_COMMAND: 'GC' }, conf: { ...GOOD_CONF, cniVersion: '1.0.0' }, code: 1, msg: /1\.0\.0 does not allow GC/ },
  // unsupported fields (2)
  { name: 'unknown top-level field', conf: { ...GOOD_CONF, mut: 1400 }, code: 2, msg: /unsupported field mut=1400/ },
  { name: 'foreign IPAM type', conf: { ...GOOD_CONF, ipam: { type: 'host-local' } }, code: 2, msg: /ipam\.type="host-local"/ },
  { name: 'unknown IPAM field', conf: { ...GOOD_CONF, ipam: { type: 'sluice', subnet: '10.0.0.0/8' } }, code: 2, msg: /unsupported field ipam\.subnet="10\.0\.0\.0\/8"/ },
  { name: 'IPv6 pod CIDR', conf: { ...GOOD_CONF, ipam: { type: 'sluice', podCIDRs: ['fd00::/64'] } }, code: 2, msg: /IPv6 pod CIDRs are not supported yet/ },
  { name: 'unknown dns field', conf: { ...GOOD_CONF, dns: { servers: ['1.1.1.1'] } }, code: 2, msg: /dns\.servers: unsupported field/ },
  // invalid config (7)
  { name: 'no name', conf: { ...GOOD_CONF, name: undefined }, code: 7, msg: /name: is required/ },
  { name: 'bad network name', conf: { ...GOOD_CONF, name: 'my net' }, code: 7, msg: /name: "my net" must be alphanumeric/ },
  { name: 'no type', conf: { ...GOOD_CONF, type: undefined }, code: 7, msg: /type: is required/ },
  { name: 'MTU out of range', conf: { ...GOOD_CONF, mtu: 70000 }, code: 7, msg: /mtu: must be an integer 576\.\.65535, got 70000/ },
  { name: 'MTU as a string', conf: { ...GOOD_CONF, mtu: '1500' }, code: 7, msg: /mtu: must be an integer/ },
  { name: 'relative agent socket', conf: { ...GOOD_CONF, agentSocket: 'agent.sock' }, code: 7, msg: /agentSocket: must be an absolute path/ },
  { name: 'unknown datapath', conf: { ...GOOD_CONF, datapath: 'xdp' }, code: 7, msg: /datapath: must be "bpf" or "none"/ },
  { name: 'pod CIDR with host bits', conf: { ...GOOD_CONF, ipam: { type: 'sluice', podCIDRs: ['10.244.0.1/24'] } }, code: 7, msg: /has host bits set/ },
  { name: 'pod CIDR not a CIDR', conf: { ...GOOD_CONF, ipam: { type: 'sluice', podCIDRs: ['10.244.0.0'] } }, code: 7, msg: /ipam\.podCIDRs\[0\]: "10\.244\.0\.0" is not a CIDR/ },
  { name: 'pod CIDR too small', conf: { ...GOOD_CONF, ipam: { type: 'sluice', podCIDRs: ['10.244.0.0/31'] } }, code: 7, msg: /too small/ },
  { name: 'dns nameserver not an IP', conf: { ...GOOD_CONF, dns: { nameservers: ['dns.example'] } }, code: 7, msg: /dns\.nameservers: "dns\.example" is not an IP address/ },
  { name: 'runtimeConfig.mac invalid', conf: { ...GOOD_CONF, runtimeConfig: { mac: 'zz:00:00:00:00:01' } }, code: 7, msg: /runtimeConfig\.mac: must be a MAC address/ },
  { name: 'runtimeConfig.mac multicast', conf: { ...GOOD_CONF, runtimeConfig: { mac: '01:00:5e:00:00:01' } }, code: 7, msg: /multicast/ },
  { name: 'prevResult not an object', conf: { ...GOOD_CONF, prevResult: 'yes' }, code: 7, msg: /prevResult: must be an object/ },
  { name: 'prevResult ip not a CIDR', conf: { ...GOOD_CONF, prevResult: { ips: [{ address: '10.0.0.1' }] } }, code: 7, msg: /prevResult\.ips\[0\]\.address: "10\.0\.0\.1" is not a CIDR/ },
  { name: 'prevResult 0.4.0 ip without version', conf: { ...GOOD_CONF, cniVersion: '0.4.0', prevResult: { ips: [{ address: '10.0.0.1/32' }] } }, code: 7, msg: /prevResult\.ips\[0\]\.version: must be "4" or "6"/ },
  { name: 'prevResult interface index out of range', conf: { ...GOOD_CONF, prevResult: { interfaces: [], ips: [{ address: '10.0.0.1/32', interface: 2 }] } }, code: 7, msg: /interface: index 2 is not one of the 0 interfaces/ },
  { name: 'CHECK without prevResult', env: { CNI_COMMAND: 'CHECK' }, code: 7, msg: /CHECK needs prevResult/ },
  { name: 'valid-attachments not a list', env: { CNI_COMMAND: 'GC' }, conf: { ...GOOD_CONF, 'cni.dev/valid-attachments': {} }, code: 7, msg: /cni\.dev\/valid-attachments: must be a list/ },
  // the agent not running: STATUS here; ADD's and DEL's 11 are in plugin.test.ts (they need a node namespace)
  { name: 'STATUS with no agent running', env: { CNI_COMMAND: 'STATUS' }, code: 50, msg: /not reachable/ },
];

for (const c of CASES) {
  test(`bad input: ${c.name} → ${c.code}`, async () => {
    const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
    for (const [k, v] of Object.entries({ ...GOOD_ENV, ...c.env })) if (v !== undefined) env[k] = v;
    const conf = c.conf === undefined ? GOOD_CONF : c.conf;
    const r = await runProcess(process.execPath, [CNI_MAIN], env, typeof conf === 'string' ? conf : JSON.stringify(conf));
    assert.equal(r.exitCode, 1, r.stdout + r.stderr);
    const err = r.json ?? {};
    assert.equal(err['code'], c.code, String(err['msg']));
    assert.match(String(err['msg']), c.msg);
    assert.equal(typeof err['cniVersion'], 'string');
    assert.match(r.stderr, new RegExp(`error ${c.code}: `));
  });
}

test('VERSION answers without a config and lists 0.3.0 … 1.1.0', async () => {
  const r = await runProcess(process.execPath, [CNI_MAIN], { PATH: process.env['PATH'] ?? '', CNI_COMMAND: 'VERSION' }, '');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.deepEqual(r.json, { cniVersion: '1.1.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
});
