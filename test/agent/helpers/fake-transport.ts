/** A scripted KubeTransport: tests answer lists and drive watch streams by hand. */
import type {
  KubeTransport, ListPage, Query, WatchCallbacks, WatchEvent, WatchHandle,
} from '../../../src/agent/k8s/transport.js';

export class FakeWatch {
  stopped = false;
  closed = false;

  constructor(
    readonly path: string,
    readonly query: Query,
    private readonly callbacks: WatchCallbacks,
  ) {}

  send(event: WatchEvent): void {
    if (this.stopped || this.closed) throw new Error('event on a finished watch');
    this.callbacks.onEvent(event);
  }

  close(error: Error | null = null): void {
    if (this.stopped || this.closed) return;
    this.closed = true;
    this.callbacks.onClose(error);
  }

  get live(): boolean {
    return !this.stopped && !this.closed;
  }
}

export type ListAnswer = (path: string, query: Query) => Promise<ListPage>;

export class FakeTransport implements KubeTransport {
  readonly lists: { path: string; query: Query }[] = [];
  readonly watches: FakeWatch[] = [];
  answer: ListAnswer;

  constructor(answer?: ListAnswer) {
    this.answer = answer ?? (() => Promise.resolve({ items: [], resourceVersion: '1' }));
  }

  list(path: string, query: Query): Promise<ListPage> {
    this.lists.push({ path, query });
    return this.answer(path, query);
  }

  watch(path: string, query: Query, callbacks: WatchCallbacks): WatchHandle {
    const w = new FakeWatch(path, query, callbacks);
    this.watches.push(w);
    return {
      stop: () => {
        w.stopped = true;
      },
    };
  }

  /** The most recent watch on `path`. */
  lastWatch(path?: string): FakeWatch {
    const list = path === undefined ? this.watches : this.watches.filter((w) => w.path === path);
    const w = list[list.length - 1];
    if (w === undefined) throw new Error(`no watch${path === undefined ? '' : ` on ${path}`}`);
    return w;
  }

  listsOf(path: string): { path: string; query: Query }[] {
    return this.lists.filter((l) => l.path === path);
  }
}

/** Answers every list from a table of path → items (one page, the given resourceVersion). */
export function staticLists(table: Record<string, unknown[]>, resourceVersion = '10'): ListAnswer {
  return (path) => Promise.resolve({ items: table[path] ?? [], resourceVersion });
}
