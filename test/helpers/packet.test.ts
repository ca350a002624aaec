/**
 * The packet builder against published vectors and its own invariants: a
 * test that passes because its packets are wrong proves nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  arpFrame, crc32c, ETH_HLEN, ETH_P_ARP, internetChecksum, IPPROTO, ipv4Fragments, ipv4Frame,
  ipv4Packet, l4Segment,
} from './packet.js';

test('IPv4 header checksum matches the RFC 1071 worked example', () => {
  // The classic header 4500 0073 0000 4000 4011 xxxx c0a8 0001 c0a8 00c7 has checksum b861.
  const h = ipv4Packet({ src: '192.168.0.1', dst: '192.168.0.199', id: 0, dontFragment: true, totalLength: 0x73 },
    IPPROTO.UDP, Buffer.alloc(0));
  assert.equal(h.toString('hex'), '450000730000400040' + '11b861c0a80001c0a800c7');
});

test('CRC32c matches the standard check values', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa); // RFC 3720 B.4
});

test('TCP, UDP and ICMP checksums verify (sum over pseudo header + segment is 0)', () => {
  const src = '10.0.0.1';
  const dst = '10.0.0.2';
  for (const [proto, seg] of [
    [IPPROTO.TCP, l4Segment({ proto: 'tcp', sport: 1234, dport: 80, payload: Buffer.from('odd') }, src, dst)],
    [IPPROTO.UDP, l4Segment({ proto: 'udp', sport: 53, dport: 5353, payload: Buffer.from('hello') }, src, dst)],
  ] as const) {
    const pseudo = Buffer.alloc(12);
    pseudo.writeUInt32BE(0x0a000001, 0);
    pseudo.writeUInt32BE(0x0a000002, 4);
    pseudo[9] = proto;
    pseudo.writeUInt16BE(seg.length, 10);
    assert.equal(internetChecksum(pseudo, seg), 0, `protocol ${proto}`);
  }
  const icmp = l4Segment({ proto: 'icmp', type: 8, code: 0, id: 7, seq: 1 }, src, dst);
  assert.equal(internetChecksum(icmp), 0);
});

test('IPv4 options lengthen the header and stay under the checksum', () => {
  const options = Buffer.from([0x01, 0x01, 0x01, 0x00]); // NOP NOP NOP EOL
  const frame = ipv4Frame({ src: '10.0.0.1', dst: '10.0.0.2', options }, { proto: 'udp', sport: 1, dport: 2 });
  const ip = frame.subarray(ETH_HLEN);
  assert.equal(ip[0], 0x46); // version 4, ihl 6
  assert.equal(ip.readUInt16BE(2), 24 + 8);
  assert.equal(internetChecksum(ip.subarray(0, 24)), 0);
  assert.equal(ip.readUInt16BE(24), 1); // UDP source port right after the options
});

test('fragments carry offsets, MF on all but the last, and the L4 header only in the first', () => {
  const frames = ipv4Fragments({ src: '10.0.0.1', dst: '10.0.0.2', id: 99 },
    { proto: 'udp', sport: 4000, dport: 5000, payload: Buffer.alloc(40, 0xab) }, 24);
  assert.equal(frames.length, 2); // 48 bytes of UDP in chunks of 24
  const [first, last] = frames.map((f) => f.subarray(ETH_HLEN));
  assert.ok(first && last);
  assert.equal(first.readUInt16BE(6), 0x2000); // MF, offset 0
  assert.equal(last.readUInt16BE(6), 24 / 8); // no MF, offset 3 (24 bytes)
  assert.equal(first.readUInt16BE(20), 4000);
  assert.equal(last.readUInt16BE(4), 99);
  assert.equal(last.subarray(20).every((b) => b === 0xab), true);
});

test('ARP frames are broadcast requests by default', () => {
  const f = arpFrame({ senderIp: '10.0.0.1', targetIp: '10.0.0.2' });
  assert.equal(f.length, ETH_HLEN + 28);
  assert.equal(f.readUInt16BE(12), ETH_P_ARP);
  assert.equal(f.subarray(0, 6).toString('hex'), 'ffffffffffff');
  assert.equal(f.readUInt16BE(ETH_HLEN + 6), 1);
});

test('malformed input to the builder fails with specifics', () => {
  assert.throws(() => ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', options: Buffer.alloc(3) }, 6, Buffer.alloc(0)),
    /multiple of 4/);
  assert.throws(() => ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', fragmentOffset: 5 }, 6, Buffer.alloc(0)),
    /multiple of 8/);
  assert.throws(() => ipv4Frame({ src: '10.0.0.256', dst: '10.0.0.2' }, { proto: 'udp', sport: 1, dport: 2 }),
    /not an IPv4 address/);
});
