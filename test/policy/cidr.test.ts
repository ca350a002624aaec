/** Addresses and CIDRs of both families. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cidrContainsCidr, cidrContainsIp, formatCidr, formatIp, ipv4ToNumber, parseCidr, parseIp, type Cidr, type IpAddress } from '../../src/policy/cidr.js';

function ip(s: string): IpAddress {
  const r = parseIp(s);
  assert.ok(typeof r !== 'string', `${s}: ${typeof r === 'string' ? r : ''}`);
  return r;
}
function cidr(s: string): Cidr {
  const r = parseCidr(s);
  assert.ok(typeof r !== 'string', `${s}: ${typeof r === 'string' ? r : ''}`);
  return r.cidr;
}

test('IPv4 addresses parse strictly', () => {
  assert.equal(ipv4ToNumber(ip('10.9.0.1')), 0x0a090001);
  assert.equal(ipv4ToNumber(ip('255.255.255.255')), 0xffffffff);
  assert.equal(formatIp(ip('0.0.0.0')), '0.0.0.0');
  for (const bad of ['10.9.0', '10.9.0.256', '010.9.0.1', '1.2.3.4.5', 'a.b.c.d', '1.2.3.-4', '']) {
    assert.equal(typeof parseIp(bad), 'string', bad);
  }
});

test('IPv6 addresses parse and format canonically', () => {
  assert.equal(formatIp(ip('::')), '::');
  assert.equal(formatIp(ip('2001:DB8:0:0:0:0:0:1')), '2001:db8::1');
  assert.equal(formatIp(ip('fe80::1:0:0:2')), 'fe80::1:0:0:2');
  assert.equal(formatIp(ip('::ffff:10.9.0.1')), '::ffff:a09:1');
  assert.equal(formatIp(ip('1:2:3:4:5:6:7:8')), '1:2:3:4:5:6:7:8');
  for (const bad of ['1::2::3', ':1', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', 'fe80::1%eth0', '12345::', '1.2.3.4::', 'g::']) {
    assert.equal(typeof parseIp(bad), 'string', bad);
  }
  assert.throws(() => ipv4ToNumber(ip('::1')), RangeError);
});

test('CIDRs: prefix range, host bits masked and reported', () => {
  const r = parseCidr('10.9.0.1/24');
  assert.ok(typeof r !== 'string');
  assert.equal(r.hostBitsSet, true);
  assert.equal(formatCidr(r.cidr), '10.9.0.0/24');
  const exact = parseCidr('10.9.0.0/24');
  assert.ok(typeof exact !== 'string' && !exact.hostBitsSet);
  assert.equal(formatCidr(cidr('0.0.0.0/0')), '0.0.0.0/0');
  assert.equal(formatCidr(cidr('2001:db8::/32')), '2001:db8::/32');
  for (const bad of ['10.9.0.0', '10.9.0.0/33', '10.9.0.0/', '10.9.0.0/024', '10.9.0.0/-1', '::/129', 'x/8']) {
    assert.equal(typeof parseCidr(bad), 'string', bad);
  }
});

test('containment of addresses and CIDRs', () => {
  assert.equal(cidrContainsIp(cidr('10.9.0.0/16'), ip('10.9.2.3')), true);
  assert.equal(cidrContainsIp(cidr('10.9.0.0/16'), ip('10.10.0.1')), false);
  assert.equal(cidrContainsIp(cidr('0.0.0.0/0'), ip('1.2.3.4')), true);
  assert.equal(cidrContainsIp(cidr('::/0'), ip('1.2.3.4')), false, 'families never mix');
  assert.equal(cidrContainsIp(cidr('10.9.0.2/32'), ip('10.9.0.2')), true);
  assert.equal(cidrContainsCidr(cidr('10.0.0.0/8'), cidr('10.9.0.0/16')), true);
  assert.equal(cidrContainsCidr(cidr('10.0.0.0/8'), cidr('10.0.0.0/8')), true);
  assert.equal(cidrContainsCidr(cidr('10.9.0.0/16'), cidr('10.0.0.0/8')), false);
  assert.equal(cidrContainsCidr(cidr('10.0.0.0/8'), cidr('11.0.0.0/16')), false);
  assert.equal(cidrContainsCidr(cidr('2001:db8::/32'), cidr('2001:db8:1::/48')), true);
});
