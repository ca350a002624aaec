/**
 * The flow ring: the last `capacity` flows (or lost-event notes) (Hubble's default 4,095), each
 * with a sequence number that only grows, so readers (the ring's tail for
 * GetFlows, followers catching up) name a position without holding the ring.
 * Writing never waits for a reader: a reader whose position was overwritten
 * learns how many flows it lost. Pure.
 */
export const DEFAULT_RING_CAPACITY = 4095;

export class FlowRing<T> {
  private readonly slots: (T | undefined)[];
  /** Sequence number of the next flow written; the first flow is 0. */
  private next = 0;

  constructor(readonly capacity: number = DEFAULT_RING_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ring capacity ${capacity}: want an integer ≥ 1`);
    this.slots = new Array<T | undefined>(capacity);
  }

  push(item: T): void {
    this.slots[this.next % this.capacity] = item;
    this.next++;
  }

  /** Flows written so far (seen_flows). */
  get written(): number {
    return this.next;
  }

  /** Flows held now (num_flows). */
  get size(): number {
    return Math.min(this.next, this.capacity);
  }

  /** Sequence number of the oldest flow held. */
  get oldest(): number {
    return this.next - this.size;
  }

  /** Sequence number the next flow will get. */
  get head(): number {
    return this.next;
  }

  /** The flow at sequence `seq`, or undefined when not written yet or overwritten. */
  at(seq: number): T | undefined {
    if (seq < this.oldest || seq >= this.next) return undefined;
    return this.slots[seq % this.capacity];
  }

  /** Flows from oldest to newest. */
  *all(): IterableIterator<T> {
    for (let s = this.oldest; s < this.next; s++) {
      const f = this.slots[s % this.capacity];
      if (f !== undefined) yield f;
    }
  }

  /** Flows from newest to oldest. */
  *reversed(): IterableIterator<T> {
    for (let s = this.next - 1; s >= this.oldest; s--) {
      const f = this.slots[s % this.capacity];
      if (f !== undefined) yield f;
    }
  }
}
