/**
 * bpf/empty.c, the benchmarks' floor: loads, and passes every packet.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { openObject } from '../../src/datapath/bpf-object.js';
import { testRun } from '../../src/datapath/test-run.js';
import { arpFrame, ETH_P_IPV6, ethernet } from '../helpers/packet.js';
import { withTestPinRoot } from '../helpers/pins.js';

const EMPTY_OBJECT = fileURLToPath(new URL('../../../build/bpf/empty.o', import.meta.url));

test('empty.o returns TC_ACT_OK for anything and has no maps', () => {
  withTestPinRoot((pinRoot) => {
    const obj = openObject(EMPTY_OBJECT, { pinRoot });
    try {
      assert.deepEqual(obj.programs().map((p) => p.name), ['empty']);
      assert.deepEqual(obj.maps(), []);
      for (const data of [arpFrame({ senderIp: '10.0.0.1', targetIp: '10.0.0.2' }), ethernet(ETH_P_IPV6, Buffer.alloc(40))]) {
        assert.equal(testRun(obj.program('empty'), { data }).retval, 0);
      }
    } finally {
      obj.close();
    }
  });
});
