/**
 * Ring-buffer consumption on the event loop: no thread, no polling timer.
 * libuv watches the ring's epoll fd; each wake-up drains what is there (up to
 * maxBatch records) into one onBatch call with copies of the records.
 */
import { constants } from 'node:os';

import { addon } from './addon.js';
import type { RawMap, RingBufferReader } from './api.js';
import { BpfMapType } from './bpf-map.js';
import { BpfError } from './errors.js';

export interface RingBufferOptions {
  /**
   * Whether an active reader keeps the process alive, like a listening
   * socket (default true). After stop() it never does.
   */
  readonly keepAlive?: boolean;
  /** Most records per onBatch call (default 4096); the rest come next turn. */
  readonly maxBatch?: number;
}

/**
 * Starts delivering the records of a BPF_MAP_TYPE_RINGBUF map. An exception
 * thrown by onBatch surfaces as an uncaught exception, as with any event
 * callback. stop() is idempotent; an environment that exits stops the reader.
 */
export function readRingBuffer(
  map: RawMap,
  onBatch: (records: Buffer[]) => void,
  opts: RingBufferOptions = {},
): RingBufferReader {
  if (map.info.type !== BpfMapType.RINGBUF) {
    throw new BpfError({
      errno: constants.errno.EINVAL,
      op: 'ringbuf_new',
      message: `map '${map.info.name}' (type ${map.info.type}) is not a ring buffer`,
    });
  }
  const native = addon();
  return new native.RingBufferReader(map.fd, onBatch, opts.keepAlive ?? true, opts.maxBatch ?? 4096);
}
