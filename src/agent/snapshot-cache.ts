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
import type { SlimEndpointSlice, SlimNamespace, SlimNetworkPolicy, SlimObject, SlimPod, SlimService } from './k8s/resources.js';
import type { ReadonlyStore } from './k8s/store.js';
import { ValuePool } from './k8s/value-pool.js';
import { serviceOf, sliceOf } from './lb-input.js';

type Parsed<F extends (raw: never) => unknown> = ReturnType<F>;

function memo<K extends object, V>(map: WeakMap<K, V>, key: K, make: (k: K) => V): V {
  let v = map.get(key);
  if (v === undefined) map.set(key, (v = make(key)));
  return v;
}

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
    return memo(this.pods, raw, (r) => this.shareParts(parsePod(r)));
  }

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
    return memo(this.lbSlices, raw, (x) => ({ r: sliceOf(x) })).r;
  }

  private readonly sortedLists = new WeakMap<object, { readonly input: readonly unknown[]; readonly output: readonly unknown[] }>();

  /** The store's values sorted by `sort`; the same array while the store holds the same objects in the same order. */
  sorted<T extends SlimObject>(store: ReadonlyStore<T>, sort: (values: T[]) => T[]): readonly T[] {
    const last = this.sortedLists.get(store) as { readonly input: readonly T[]; readonly output: readonly T[] } | undefined;
    if (last !== undefined && last.input.length === store.size) {
      let i = 0;
      let same = true;
      for (const v of store.values()) {
        if (v !== last.input[i++]) {
          same = false;
          break;
        }
      }
      if (same) return last.output;
    }
    const input = [...store.values()];
    const output = sort([...input]);
    this.sortedLists.set(store, { input, output });
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
