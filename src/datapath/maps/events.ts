/**
 * sl_events_v1: ring buffer of struct sluice_event (bpf/lib/events.h): every
 * drop, and allowed packets while tracing is on. A ring buffer has no entries
 * to dump; it is read as a stream.
 */
import type { RawMap, RingBufferReader } from '../api.js';
import { BpfMapType } from '../bpf-map.js';
import { readRingBuffer } from '../ringbuf.js';
import { SluiceMapCapacity, sluiceEventCodec, type SluiceEvent } from '../generated/abi.js';
import { checkLayout, type MapLayout } from './layout.js';

export const EVENTS_LAYOUT: MapLayout = {
  name: 'sl_events_v1',
  type: BpfMapType.RINGBUF,
  keySize: 0,
  valueSize: 0,
  maxEntries: SluiceMapCapacity.EVENTS_RING_BYTES,
};

/** Checks raw is the events ring of this layout. */
export function openEvents(raw: RawMap): RawMap {
  checkLayout(raw.info, EVENTS_LAYOUT);
  return raw;
}

/**
 * Streams decoded events until stop(). A record of the wrong size means the
 * producer was built from another ABI: it throws rather than misreading.
 */
export function readEvents(raw: RawMap, onEvents: (events: SluiceEvent[]) => void): RingBufferReader {
  return readRingBuffer(openEvents(raw), (records: Buffer[]) => {
    onEvents(records.map((r) => {
      if (r.length !== sluiceEventCodec.size) {
        throw new RangeError(`${EVENTS_LAYOUT.name}: record of ${r.length} bytes, expected ${sluiceEventCodec.size}`);
      }
      return sluiceEventCodec.decode(r);
    }));
  });
}
