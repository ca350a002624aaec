/**
 * The CNI result (src/cni/result.ts): one model printed in each spec
 * version's shape, and prevResult read strictly in the config's version
 * (7 naming the field) while keeping every field a version defines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CniCode, CniError } from '../../src/cni/errors.js';
import { EMPTY_RESULT, encodeResult, parseDns, parseResult, type CniResult } from '../../src/cni/result.js';
import { SUPPORTED_VERSIONS, type CniVersion } from '../../src/cni/version.js';

/** Every field the 1.1.0 shape has. */
const FULL: CniResult = {
  interfaces: [
    { name: 'lxc1', mac: '06:00:00:00:00:01', mtu: 1500 },
    { name: 'eth0', mac: '02:00:00:00:00:01', mtu: 1500, sandbox: '/var/run/netns/p', socketPath: '/run/vhost.sock', pciID: '0000:00:1f.0' },
  ],
  ips: [
    { address: '10.1.0.7/32', gateway: '169.254.1.1', interface: 1 },
    { address: 'fd00::7/128', interface: 1 },
  ],
  routes: [
    { dst: '0.0.0.0/0', gw: '169.254.1.1', mtu: 1400, advmss: 1360, priority: 10, table: 100, scope: 0 },
    { dst: '10.2.0.0/16' },
  ],
  dns: { nameservers: ['10.0.0.10'], domain: 'cluster.local', search: ['svc.cluster.local'], options: ['ndots:5'] },
};

function refuses(raw: unknown, version: CniVersion, field: RegExp): void {
  assert.throws(() => parseResult(raw, version), (e: unknown) => {
    assert.ok(e instanceof CniError, String(e));
    assert.equal(e.code, CniCode.INVALID_CONFIG, e.message);
    assert.match(e.message, field, JSON.stringify(raw));
    return true;
  });
}

test('1.1.0 prints every field; cniVersion is the one asked for', () => {
  const out = encodeResult(FULL, '1.1.0');
  assert.equal(out['cniVersion'], '1.1.0');
  assert.deepEqual(out['interfaces'], FULL.interfaces);
  assert.deepEqual(out['ips'], FULL.ips);
  assert.deepEqual(out['routes'], FULL.routes);
  assert.deepEqual(out['dns'], FULL.dns);
});

test('1.0.0 drops what 1.1.0 added: interface mtu, socketPath, pciID; route mtu, advmss, priority, table, scope', () => {
  const out = encodeResult(FULL, '1.0.0');
  assert.deepEqual(out['interfaces'], FULL.interfaces.map(({ name, mac, sandbox }) => ({ name, mac, ...(sandbox !== undefined ? { sandbox } : {}) })));
  assert.deepEqual(out['ips'], FULL.ips, 'no "version" per ip since 1.0.0');
  assert.deepEqual(out['routes'], FULL.routes.map(({ dst, gw }) => ({ dst, ...(gw !== undefined ? { gw } : {}) })));
});

test('0.3.0, 0.3.1 and 0.4.0: as 1.0.0, and every ip carries its family as "version"', () => {
  const v10 = encodeResult(FULL, '1.0.0');
  for (const v of ['0.3.0', '0.3.1', '0.4.0'] as const) {
    const out = encodeResult(FULL, v);
    assert.equal(out['cniVersion'], v);
    assert.deepEqual(out['interfaces'], v10['interfaces']);
    assert.deepEqual(out['routes'], v10['routes']);
    assert.deepEqual(out['ips'], [{ version: '4', ...FULL.ips[0] }, { version: '6', ...FULL.ips[1] }]);
  }
});

test('absent fields are left out, not printed as null; an empty result is four empty parts', () => {
  const out = encodeResult({ interfaces: [{ name: 'eth0' }], ips: [{ address: '10.1.0.7/32' }], routes: [{ dst: '0.0.0.0/0' }], dns: {} }, '1.1.0');
  assert.equal(JSON.stringify(out), '{"cniVersion":"1.1.0","interfaces":[{"name":"eth0"}],"ips":[{"address":"10.1.0.7/32"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{}}');
  assert.deepEqual(encodeResult(EMPTY_RESULT, '1.0.0'), { cniVersion: '1.0.0', interfaces: [], ips: [], routes: [], dns: {} });
});

test('a result printed in any version reads back as what that version carries', () => {
  for (const v of SUPPORTED_VERSIONS) {
    const printed = encodeResult(FULL, v);
    const back = parseResult(JSON.parse(JSON.stringify(printed)), v);
    assert.deepEqual(encodeResult(back, v), printed, v);
  }
  assert.deepEqual(parseResult(encodeResult(FULL, '1.1.0'), '1.1.0'), FULL, '1.1.0 keeps everything');
});

test('missing or null parts are empty; empty optional strings are absent', () => {
  assert.deepEqual(parseResult({}, '1.1.0'), EMPTY_RESULT);
  assert.deepEqual(parseResult({ interfaces: null, ips: null, routes: null, dns: null }, '1.1.0'), EMPTY_RESULT);
  assert.deepEqual(parseResult({ interfaces: [{ name: 'eth0', mac: '', sandbox: null }] }, '1.1.0').interfaces, [{ name: 'eth0' }]);
});

test('what it reads must be right, each error naming the field', () => {
  refuses([], '1.1.0', /^prevResult: must be an object/);
  refuses({ interfaces: {} }, '1.1.0', /^prevResult\.interfaces: must be a list/);
  refuses({ interfaces: [{}] }, '1.1.0', /^prevResult\.interfaces\[0\]\.name: must be a non-empty string/);
  refuses({ interfaces: [{ name: 'eth0', mac: 5 }] }, '1.1.0', /^prevResult\.interfaces\[0\]\.mac: must be a string/);
  refuses({ interfaces: [{ name: 'eth0', mtu: '1500' }] }, '1.1.0', /^prevResult\.interfaces\[0\]\.mtu: must be an integer/);
  refuses({ ips: [{ address: '10.1.0.7' }] }, '1.1.0', /^prevResult\.ips\[0\]\.address: "10\.1\.0\.7" is not a CIDR/);
  refuses({ ips: [{ address: '10.1.0.7/32', gateway: 'gw' }] }, '1.1.0', /^prevResult\.ips\[0\]\.gateway: "gw" is not an IP address/);
  refuses({ ips: [{ address: '10.1.0.7/32', interface: 0 }] }, '1.1.0', /^prevResult\.ips\[0\]\.interface: index 0 is not one of the 0 interfaces/);
  refuses({ interfaces: [{ name: 'eth0' }], ips: [{ address: '10.1.0.7/32', interface: -1 }] }, '1.1.0', /ips\[0\]\.interface: index -1/);
  refuses({ routes: [{ gw: '10.0.0.1' }] }, '1.1.0', /^prevResult\.routes\[0\]\.dst: must be a non-empty string/);
  refuses({ routes: [{ dst: 'default' }] }, '1.1.0', /^prevResult\.routes\[0\]\.dst: "default" is not a CIDR/);
  refuses({ routes: [{ dst: '0.0.0.0/0', gw: '10.0.0' }] }, '1.1.0', /^prevResult\.routes\[0\]\.gw: "10\.0\.0" is not an IP address/);
  refuses({ routes: [{ dst: '0.0.0.0/0', table: 1.5 }] }, '1.1.0', /^prevResult\.routes\[0\]\.table: must be an integer/);
  refuses({ dns: { nameservers: 'x' } }, '1.1.0', /^prevResult\.dns\.nameservers: must be a list of strings/);
});

test('before 1.0.0 every ip needs a "version" that matches its address', () => {
  assert.deepEqual(parseResult({ ips: [{ version: '4', address: '10.1.0.7/32' }] }, '0.4.0').ips, [{ address: '10.1.0.7/32' }]);
  refuses({ ips: [{ address: '10.1.0.7/32' }] }, '0.4.0', /ips\[0\]\.version: must be "4" or "6" in a 0\.4\.0 result, got undefined/);
  refuses({ ips: [{ version: 4, address: '10.1.0.7/32' }] }, '0.3.1', /ips\[0\]\.version: must be "4" or "6"/);
  refuses({ ips: [{ version: '6', address: '10.1.0.7/32' }] }, '0.3.0', /ips\[0\]\.version: "6" does not match the address 10\.1\.0\.7\/32/);
  assert.doesNotThrow(() => parseResult({ ips: [{ address: '10.1.0.7/32' }] }, '1.0.0'), 'not needed from 1.0.0 on');
});

test('parseDns: the four spec keys; an unknown key is 2; nameservers are IPs', () => {
  assert.deepEqual(parseDns({ nameservers: ['10.0.0.10', 'fd00::a'] }, 'dns'), { nameservers: ['10.0.0.10', 'fd00::a'] });
  assert.throws(() => parseDns({ nameserver: ['10.0.0.10'] }, 'dns'),
    (e: unknown) => e instanceof CniError && e.code === CniCode.UNSUPPORTED_FIELD && /^dns\.nameserver: unsupported field/.test(e.message));
  assert.throws(() => parseDns({ nameservers: ['x'] }, 'where'), (e: unknown) => e instanceof CniError && e.code === CniCode.INVALID_CONFIG && /^where\.nameservers: "x"/.test(e.message));
  assert.throws(() => parseDns({ options: [1] }, 'dns'), (e: unknown) => e instanceof CniError && /^dns\.options: must be a list of strings/.test(e.message));
});
