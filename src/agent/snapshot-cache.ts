/**
 * What a snapshot keeps for the next one. Parse results per cached API
 * object, so that a sync after one watch event re-parses one object, not the
 * cluster, and hands the compiler the very same ClusterPod /
 * ClusterNamespace / Policy objects as last time for everything that did
 * not change; each store's sorted list, re-sorted only when it changed; and
 * whole derived parts (the pods, the cluster's pod indexes) while their inputs are the same objects. The compiler's incremental paths
 * (src/policy/compile.ts) recognise "unchanged" by identity: with fresh
 * objects each sync it recomputes every identity and every endpoint.
 *
 * Keyed weakly by the informer store's slim object: the store keeps an
 * object while its stored form is unchanged and replaces it when it changes
 * (k8s/store.ts), so an entry lives exactly as long as its object is current.
 */
import { parseIp } from '../policy/cidr.js';
import { parseNamespace, parsePod, type ClusterPod } from '../policy/objects.js';
import { validateNetworkPolicy } from '../policy/validate.js';
import { objectKey, type SlimEndpointSlice, type SlimNamespace, type SlimNetworkPolicy, type SlimObject, type SlimPod, type SlimService } from './k8s/resources.js';
import type { ReadonlyStore } from './k8s/store.js';
import { ValuePool } from './k8s/value-pool.js';
import { serviceOf, sliceOf } from './lb-input.js';

type Parsed<F extends (raw: never) => unknown> = ReturnType<F>;

/** A store's values in its own order, sorted by key, and each key's place in the sorted list. */
interface SortedList<T> {
  readonly input: readonly T[];
  readonly output: readonly T[];
  readonly indexOf: ReadonlyMap<string, number>;
}

function memo<K extends object, V>(map: WeakMap<K, V>, key: K, make: (k: K) => V): V {
  let v = map.get(key);
  if (v === undefined) map.set(key, (v = make(key)));
  return v;
}

/** sliceOf's result boxed (undefined, a slice the load balancer skips, is then a value the WeakMap keeps). */
const boxedSliceOf = (x: SlimEndpointSlice): { readonly r: Parsed<typeof sliceOf> } => ({ r: sliceOf(x) });

export class SnapshotCache {
  private readonly namespaces = new WeakMap<SlimNamespace, Parsed<typeof parseNamespace>>();
  private readonly pods = new WeakMap<SlimPod, Parsed<typeof parsePod>>();
  private readonly policies = new WeakMap<SlimNetworkPolicy, Parsed<typeof validateNetworkPolicy>>();
  /** A pod with the address its endpoint registered, by the pod it was made from. */
  private readonly withIps = new WeakMap<ClusterPod, { readonly ip: string; readonly pod: ClusterPod }>();

  namespace(raw: SlimNamespace): Parsed<typeof parseNamespace> {
    return memo(this.namespaces, raw, parseNamespace);
  }

  pod(raw: SlimPod): Parsed<typeof parsePod> {
    return memo(this.pods, raw, this.parsePodShared);
  }

  /** One function for every call (a closure made per call would be garbage 10,000 times a snapshot). */
  private readonly parsePodShared = (r: SlimPod): Parsed<typeof parsePod> => this.shareParts(parsePod(r));

  /** Parts that pods repeat (the labels and container ports of a ReplicaSet's pods): one instance each. */
  private readonly values = new ValuePool();

  private shareParts(r: Parsed<typeof parsePod>): Parsed<typeof parsePod> {
    if (!r.ok || r.value === null) return r;
    const pod = r.value;
    const labels = this.values.share(pod.labels);
    const ports = this.values.share(pod.ports);
    return labels === pod.labels && ports === pod.ports ? r : { ...r, value: { ...pod, labels, ports } };
  }

  policy(raw: SlimNetworkPolicy): Parsed<typeof validateNetworkPolicy> {
    return memo(this.policies, raw, validateNetworkPolicy);
  }

  private readonly lbServices = new WeakMap<SlimService, Parsed<typeof serviceOf>>();
  private readonly lbSlices = new WeakMap<SlimEndpointSlice, { readonly r: Parsed<typeof sliceOf> }>();

  /** A Service as the load balancer reads it: the same object while the Service is unchanged (its compile is then reused). */
  lbService(raw: SlimService): Parsed<typeof serviceOf> {
    return memo(this.lbServices, raw, serviceOf);
  }

  lbSlice(raw: SlimEndpointSlice): Parsed<typeof sliceOf> {
    return memo(this.lbSlices, raw, boxedSliceOf).r;
  }

  private readonly sortedLists = new WeakMap<object, SortedList<SlimObject>>();

  /**
   * The store's values sorted by objectKey; the same array while the store
   * holds the same objects. When objects were only replaced (an update keeps
   * its key, and its place in the store's order), the last array is copied
   * with those objects swapped in place instead of sorted again: one
   * EndpointSlice change among 10,000 costs a walk and a copy, not a sort.
   */
  sorted<T extends SlimObject>(store: ReadonlyStore<T>): readonly T[] {
    const last = this.sortedLists.get(store) as SortedList<T> | undefined;
    if (last !== undefined && last.input.length === store.size) {
      let output: T[] | undefined;
      let input: T[] | undefined;
      let i = 0;
      for (const v of store.values()) {
        const was = last.input[i];
        if (v !== was) {
          const key = objectKey(v);
          const at = last.indexOf.get(key);
          if (was === undefined || at === undefined || objectKey(was) !== key) {
            output = undefined;
            break;
          }
          output ??= [...last.output];
          input ??= [...last.input];
          output[at] = v;
          input[i] = v;
        }
        i++;
      }
      if (output === undefined && i === last.input.length) return last.output;
      if (output !== undefined && input !== undefined) {
        this.sortedLists.set(store, { input, output, indexOf: last.indexOf });
        return output;
      }
    }
    const input = [...store.values()];
    const keyed = input.map((v) => [objectKey(v), v] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const output = keyed.map(([, v]) => v);
    this.sortedLists.set(store, { input, output, indexOf: new Map(keyed.map(([k], at) => [k, at])) });
    return output;
  }

  private readonly derived = new Map<string, { readonly inputs: readonly unknown[]; readonly value: unknown }>();

  /** make()'s value, made again only when `inputs` differ (element by element, ===) from the last call's for `slot`. */
  derive<R>(slot: string, inputs: readonly unknown[], make: () => R): R {
    const last = this.derived.get(slot);
    if (last !== undefined && last.inputs.length === inputs.length && last.inputs.every((x, i) => x === inputs[i])) return last.value as R;
    const value = make();
    this.derived.set(slot, { inputs, value });
    return value;
  }

  private readonly kept = new Map<string, { readonly json: string; readonly value: unknown }>();

  /** `value`, or the value last kept in `slot` when that one has the same JSON (so that identity-compared consumers see no change). */
  keepEqual<R>(slot: string, value: R): R {
    const json = JSON.stringify(value);
    const last = this.kept.get(slot);
    if (last !== undefined && last.json === json) return last.value as R;
    this.kept.set(slot, { json, value });
    return value;
  }

  /** `pod` with address `ip` (canonical IPv4, validated by the registry); the same object while both stay the same. */
  podWithIp(pod: ClusterPod, ip: string): ClusterPod {
    const hit = this.withIps.get(pod);
    if (hit?.ip === ip) return hit.pod;
    const parsed = parseIp(ip);
    const made = typeof parsed === 'string' ? pod : { ...pod, ip: parsed };
    this.withIps.set(pod, { ip, pod: made });
    return made;
  }
}
