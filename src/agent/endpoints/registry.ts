/**
 * The endpoints of this node, as registered by the CNI: kept in memory,
 * persisted before every acknowledgement, so an agent restart finds them
 * all. Mutations are serialised (50 concurrent ADDs must not lose writes or
 * hand out one id twice). Endpoint ids come from a cursor that moves
 * forward and wraps, so a freed id is not reused while anything may still
 * refer to it.
 */
import { AgentError } from '../errors.js';
import type { EndpointState, EndpointStateStore } from './state-file.js';
import { attachmentKey, sameSpec, type EndpointRecord, type EndpointSpec } from '../../endpoint/contract.js';

export interface RegistryOptions {
  readonly store: EndpointStateStore;
  /** Highest endpoint id handed out. Default 65535. */
  readonly maxEndpointId?: number;
  readonly now?: () => Date;
}

export interface AddResult {
  readonly endpoint: EndpointRecord;
  /** A new attachment (false: it was registered already). */
  readonly created: boolean;
  /** Anything the datapath needs to learn (false for a repeated identical ADD). */
  readonly changed: boolean;
}

export class EndpointRegistry {
  private byKey = new Map<string, EndpointRecord>();
  private nextId = 1;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly maxId: number;
  private readonly now: () => Date;

  private constructor(private readonly options: RegistryOptions) {
    this.maxId = options.maxEndpointId ?? 0xffff;
    this.now = options.now ?? (() => new Date());
  }

  /** Loads the persisted endpoints. */
  static async open(options: RegistryOptions): Promise<EndpointRegistry> {
    const r = new EndpointRegistry(options);
    const state = await options.store.load();
    r.restore(state);
    return r;
  }

  get size(): number {
    return this.byKey.size;
  }

  get(containerId: string, ifname: string): EndpointRecord | undefined {
    return this.byKey.get(attachmentKey({ containerId, ifname }));
  }

  /** Sorted by endpoint id. */
  list(): EndpointRecord[] {
    return [...this.byKey.values()].sort((a, b) => a.endpointId - b.endpointId);
  }

  /** Registers or updates an attachment; persisted before it resolves. */
  add(spec: EndpointSpec): Promise<AddResult> {
    return this.serial(async () => {
      const key = attachmentKey(spec);
      const existing = this.byKey.get(key);
      if (existing !== undefined && sameSpec(existing, spec)) return { endpoint: existing, created: false, changed: false };
      this.checkConflicts(key, spec);
      const endpointId = existing?.endpointId ?? this.allocateId();
      const endpoint: EndpointRecord = { ...spec, endpointId, createdAt: existing?.createdAt ?? this.now().toISOString() };
      const next = new Map(this.byKey).set(key, endpoint);
      const nextId = existing === undefined ? this.advance(endpointId) : this.nextId;
      await this.persist(next, nextId);
      return { endpoint, created: existing === undefined, changed: true };
    });
  }

  /** Unregisters an attachment; resolves with what was removed (undefined: it was not there). */
  delete(containerId: string, ifname: string): Promise<EndpointRecord | undefined> {
    return this.serial(async () => {
      const key = attachmentKey({ containerId, ifname });
      const existing = this.byKey.get(key);
      if (existing === undefined) return undefined;
      const next = new Map(this.byKey);
      next.delete(key);
      await this.persist(next, this.nextId);
      return existing;
    });
  }

  private restore(state: EndpointState): void {
    const map = new Map<string, EndpointRecord>();
    const ids = new Set<number>();
    for (const e of state.endpoints) {
      const key = attachmentKey(e);
      if (map.has(key)) throw new AgentError('state-corrupt', `endpoint state: ${key} is registered twice`, 'endpoints');
      if (ids.has(e.endpointId)) throw new AgentError('state-corrupt', `endpoint state: endpoint id ${e.endpointId} is used twice`, 'endpoints');
      map.set(key, e);
      ids.add(e.endpointId);
    }
    this.byKey = map;
    this.nextId = state.nextId > this.maxId ? 1 : state.nextId;
  }

  private checkConflicts(key: string, spec: EndpointSpec): void {
    for (const [otherKey, other] of this.byKey) {
      if (otherKey === key) continue;
      if (other.ip === spec.ip) {
        throw new AgentError('conflict', `ip ${spec.ip} is already registered to endpoint ${other.endpointId} (${otherKey}, pod ${other.podNamespace}/${other.podName}); delete that endpoint first if it is stale`, 'ip');
      }
      if (other.hostIfindex === spec.hostIfindex) {
        throw new AgentError('conflict', `host ifindex ${spec.hostIfindex} is already registered to endpoint ${other.endpointId} (${otherKey}, ${other.hostIfname}); delete that endpoint first if it is stale`, 'hostIfindex');
      }
    }
  }

  private allocateId(): number {
    const used = new Set([...this.byKey.values()].map((e) => e.endpointId));
    let id = this.nextId;
    for (let tried = 0; tried < this.maxId; tried++) {
      if (!used.has(id)) return id;
      id = id >= this.maxId ? 1 : id + 1;
    }
    throw new AgentError('exhausted', `all ${this.maxId} endpoint ids are in use`);
  }

  private advance(id: number): number {
    return id >= this.maxId ? 1 : id + 1;
  }

  private async persist(next: Map<string, EndpointRecord>, nextId: number): Promise<void> {
    const endpoints = [...next.values()].sort((a, b) => a.endpointId - b.endpointId);
    await this.options.store.save({ nextId, endpoints });
    // Only a persisted state becomes the live one.
    this.byKey = next;
    this.nextId = nextId;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
