/**
 * An owner's view of its map between rounds: what the map holds — read back
 * when the owner does not know (at start, and after a round that did not
 * complete) — and what the round in flight asks for, which becomes the view
 * when the round completes. Every owner keeps one; none trusts a write it
 * has not seen succeed.
 */
export class MapView<T> {
  private held: T | undefined;
  private asked: T | undefined;

  /** read: the map's contents in the owner's form. */
  constructor(private readonly read: () => T) {}

  /** What the map holds. */
  current(): T {
    this.held ??= this.read();
    return this.held;
  }

  /** This round asks for `to`. */
  ask(to: T): void {
    this.asked = to;
  }

  /** The round is over: complete, what it asked for is the map's; otherwise read it back next time. */
  settle(complete: boolean): void {
    this.held = complete ? this.asked : undefined;
    this.asked = undefined;
  }

  invalidate(): void {
    this.held = undefined;
  }

  /** The view when known (for counts), without reading the map. */
  known(): T | undefined {
    return this.held;
  }
}
