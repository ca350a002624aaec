/**
 * The ring-buffer reader and BPF_PROG_TEST_RUN together: records that the
 * fixture program writes while it runs under test-run reach JS in batches.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import type { LoadedObject, RingBufferReader } from '../../src/datapath/api.js';
import { openObject } from '../../src/datapath/bpf-object.js';
import { BpfError } from '../../src/datapath/errors.js';
import { readRingBuffer } from '../../src/datapath/ringbuf.js';
import { testRun } from '../../src/datapath/test-run.js';
import { buildFixtures, FIXTURE, packet, runNode, u32, u64 } from './addon-support.js';

/** struct na_record {__u32 len, tag, mark, seq;} */
interface NaRecord {
  len: number;
  tag: number;
  mark: number;
  seq: number;
}
function decodeRecord(b: Buffer): NaRecord {
  assert.equal(b.length, 16);
  return { len: b.readUInt32LE(0), tag: b.readUInt32LE(4), mark: b.readUInt32LE(8), seq: b.readUInt32LE(12) };
}

/** struct __sk_buff up to and including `mark` (len and pkt_type must be 0). */
function skbCtx(mark: number): Buffer {
  const ctx = Buffer.alloc(12);
  ctx.writeUInt32LE(mark, 8);
  return ctx;
}

/** Consumes whatever earlier tests left in the ring. */
async function drain(obj: LoadedObject): Promise<void> {
  const reader = readRingBuffer(obj.map('na_events'), () => {});
  await new Promise((r) => setTimeout(r, 20));
  reader.stop();
}

/** Collects batches until `want` records arrived (or fails after 2 s). */
function collect(obj: LoadedObject, want: number, maxBatch?: number): { done: Promise<Buffer[][]>; reader: RingBufferReader } {
  const batches: Buffer[][] = [];
  let resolve!: (b: Buffer[][]) => void;
  let reject!: (e: Error) => void;
  const done = new Promise<Buffer[][]>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const timer = setTimeout(() => reject(new Error(`timed out with ${batches.flat().length}/${want} records`)), 2000);
  const reader = readRingBuffer(
    obj.map('na_events'),
    (records) => {
      batches.push(records);
      if (batches.flat().length >= want) {
        clearTimeout(timer);
        resolve(batches);
      }
    },
    maxBatch === undefined ? {} : { maxBatch },
  );
  return { done, reader };
}

describe('ring buffer + test-run', () => {
  let obj: LoadedObject;
  before(() => {
    buildFixtures();
    obj = openObject(FIXTURE, { globals: { tag: u32(0x5eed) } });
  });
  after(() => obj.close());

  test('test-run returns retval, the packet and an average duration', () => {
    const data = packet(80, 0x42);
    const r = testRun(obj.program('na_tc'), { data, repeat: 100 });
    assert.equal(r.retval, 0);
    assert.deepEqual(r.data, data);
    // Average of 100 runs; the bound only catches a unit mix-up, not a slow machine.
    assert.ok(r.durationNs > 0 && r.durationNs < 50_000_000, `duration ${r.durationNs} ns`);
    const drop = testRun(obj.program('na_tc_drop'), { data });
    assert.equal(drop.retval, 2);
  });

  test('test-run output trimmed to what the kernel wrote; too small a buffer is ENOSPC', () => {
    const data = packet(64);
    assert.equal(testRun(obj.program('na_tc'), { data, dataOutSize: 4096 }).data.length, 64);
    assert.throws(() => testRun(obj.program('na_tc'), { data, dataOutSize: 10 }), (e: BpfError) => e.code === 'ENOSPC' && e.op === 'test_run');
    const shortIpv4 = packet(33); // ethertype IPv4, 19 bytes of IP header
    assert.throws(() => testRun(obj.program('na_tc'), { data: shortIpv4 }), (e: BpfError) => e.code === 'EINVAL' && /IPv4 ethertype frame shorter than 34 bytes, got 33/.test(e.message));
  });

  test('records written during test-run arrive with their contents', async () => {
    await drain(obj);
    obj.map('na_hash').update(u32(0), u64(77n));
    const { done, reader } = collect(obj, 3);
    try {
      testRun(obj.program('na_tc'), { data: packet(60), ctx: skbCtx(0x1234) });
      testRun(obj.program('na_tc'), { data: packet(61) });
      testRun(obj.program('na_tc'), { data: packet(62) });
      const records = (await done).flat().map(decodeRecord);
      assert.deepEqual(records, [
        { len: 60, tag: 0x5eed, mark: 0x1234, seq: 77 },
        { len: 61, tag: 0x5eed, mark: 0, seq: 77 },
        { len: 62, tag: 0x5eed, mark: 0, seq: 77 },
      ]);
    } finally {
      reader.stop();
      obj.map('na_hash').delete(u32(0));
    }
  });

  test('a burst is delivered in batches of at most maxBatch, one call per batch', async () => {
    await drain(obj);
    const { done, reader } = collect(obj, 7, 3);
    try {
      // Written before the loop turns, so the reader sees all 7 at once.
      for (let i = 0; i < 7; i++) testRun(obj.program('na_tc'), { data: packet(70 + i) });
      const batches = await done;
      assert.deepEqual(batches.map((b) => b.length), [3, 3, 1]);
      assert.deepEqual(batches.flat().map((b) => decodeRecord(b).len), [70, 71, 72, 73, 74, 75, 76]);
    } finally {
      reader.stop();
    }
  });

  test('stop() from inside the callback ends delivery; stop() twice is fine', async () => {
    await drain(obj);
    let calls = 0;
    const reader = readRingBuffer(obj.map('na_events'), () => {
      calls++;
      reader.stop();
    });
    testRun(obj.program('na_tc'), { data: packet(64) });
    await new Promise((r) => setTimeout(r, 50));
    testRun(obj.program('na_tc'), { data: packet(64) });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(calls, 1);
    reader.stop();
    // The record left behind is there for the next reader.
    const { done, reader: next } = collect(obj, 1);
    try {
      assert.equal(decodeRecord((await done).flat()[0]!).len, 64);
    } finally {
      next.stop();
    }
  });

  test('a reader only keeps the process alive while active and keepAlive is on', () => {
    const common = `
      import { openObject } from 'DP/bpf-object.js';
      import { readRingBuffer } from 'DP/ringbuf.js';
      const obj = openObject(${JSON.stringify(FIXTURE)});
    `;
    // Never stopped, unref'd: the child must still exit on its own.
    const t0 = Date.now();
    assert.equal(runNode(`${common} readRingBuffer(obj.map('na_events'), () => {}, { keepAlive: false }); console.log('ok');`).trim(), 'ok');
    // Stopped: the handle is closed and the loop drains.
    assert.equal(runNode(`${common} const r = readRingBuffer(obj.map('na_events'), () => {}); setTimeout(() => { r.stop(); console.log('ok'); }, 20);`).trim(), 'ok');
    assert.ok(Date.now() - t0 < 20_000);
  });

  test('a worker that exits with an active reader tears it down cleanly', () => {
    const out = runNode(`
      import { Worker } from 'node:worker_threads';
      const body = \`
        const { openObject } = await import('DP/bpf-object.js');
        const { readRingBuffer } = await import('DP/ringbuf.js');
        const { testRun } = await import('DP/test-run.js');
        const { parentPort } = await import('node:worker_threads');
        const obj = openObject(${JSON.stringify(FIXTURE)});
        readRingBuffer(obj.map('na_events'), (records) => {
          parentPort.postMessage(records.length);
          process.exit(0); // environment teardown with the reader still active
        });
        const data = Buffer.alloc(64); data.writeUInt16BE(0x0800, 12); data[14] = 0x45;
        testRun(obj.program('na_tc'), { data });
      \`;
      const w = new Worker(body, { eval: true });
      w.on('message', (n) => console.log('records', n));
      w.on('exit', (code) => console.log('exit', code));
    `);
    assert.deepEqual(out.trim().split('\n'), ['records 1', 'exit 0']);
  });

  test('a map that is not a ring buffer is refused', () => {
    assert.throws(() => readRingBuffer(obj.map('na_hash'), () => {}), (e: BpfError) => e.code === 'EINVAL' && /not a ring buffer/.test(e.message));
  });
});
