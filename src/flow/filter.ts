/**
 * Hubble's FlowFilter semantics: the values of one field OR, the fields of
 * one filter AND, the filters of a list OR; a flow is shown when it matches
 * one filter of the allow list (or the list is empty) and none of the deny
 * list. Filters are compiled once per request into predicates; a value that
 * cannot mean anything (a bad port, CIDR, label selector, an unknown
 * protocol, a field Sluice does not evaluate) is a FilterError naming the
 * field, which the gRPC server answers with INVALID_ARGUMENT. Pure.
 */
import { parseCidr, parseIp, cidrContainsIp, type Cidr } from '../policy/cidr.js';
import type { EventTypeFilter, Flow, FlowEndpoint, FlowFilter, TcpFlags, WorkloadFilter } from './model.js';

export class FilterError extends Error {
  readonly code = 'invalid-filter';
  /** "whitelist[0].source_port". */
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'FilterError';
    this.field = field;
  }
}

export type FlowPredicate = (flow: Flow) => boolean;

/** The fields this module evaluates; any other non-empty field is refused. */
const SUPPORTED = new Set([
  'uuid', 'source_ip', 'source_pod', 'source_label', 'source_identity', 'source_workload',
  'destination_ip', 'destination_pod', 'destination_label', 'destination_identity', 'destination_workload',
  'traffic_direction', 'verdict', 'drop_reason_desc', 'event_type', 'protocol', 'source_port',
  'destination_port', 'reply', 'tcp_flags', 'node_name', 'ip_version',
]);

/** Compiles allow and deny lists into one predicate; throws FilterError. */
export function compileFilters(whitelist: readonly FlowFilter[], blacklist: readonly FlowFilter[]): FlowPredicate {
  const allow = whitelist.map((f, i) => compileFilter(f, `whitelist[${i}]`));
  const deny = blacklist.map((f, i) => compileFilter(f, `blacklist[${i}]`));
  return (flow) => (allow.length === 0 || allow.some((p) => p(flow))) && !deny.some((p) => p(flow));
}

/** One filter: every non-empty field must match (a filter with no field matches everything). */
export function compileFilter(filter: FlowFilter, at: string): FlowPredicate {
  const preds: FlowPredicate[] = [];
  for (const [field, values] of Object.entries(filter)) {
    if (values === undefined || values.length === 0) continue;
    const where = `${at}.${field}`;
    if (!SUPPORTED.has(field)) throw new FilterError(where, 'this filter field is not supported by Sluice');
    preds.push(compileField(field, values, where));
  }
  return (flow) => preds.every((p) => p(flow));
}

function compileField(field: string, values: readonly unknown[], where: string): FlowPredicate {
  const side = field.startsWith('source_') ? 'source' : 'destination';
  switch (field) {
    case 'uuid': return anyOf(strings(values, where), (v) => (f) => f.uuid === v);
    case 'source_ip':
    case 'destination_ip': {
      const cidrs = strings(values, where).map((v) => ipOrCidr(v, where));
      return (f) => {
        const ip = parseIp(side === 'source' ? f.IP.source : f.IP.destination);
        return typeof ip !== 'string' && cidrs.some((c) => cidrContainsIp(c, ip));
      };
    }
    case 'source_pod':
    case 'destination_pod':
      return anyOf(strings(values, where), (v) => podMatcher(v, side));
    case 'source_label':
    case 'destination_label':
      return anyOf(strings(values, where), (v) => {
        const sel = parseSelector(v, where);
        return (f) => sel(labelMap(f[side]));
      });
    case 'source_identity':
    case 'destination_identity': {
      const ids = new Set(numbers(values, where));
      return (f) => ids.has(f[side].identity ?? 0);
    }
    case 'source_workload':
    case 'destination_workload':
      return anyOf(values as readonly WorkloadFilter[], (w) => (f) =>
        (f[side].workloads ?? []).some((x) => (!w.name || x.name === w.name) && (!w.kind || x.kind === w.kind)));
    case 'traffic_direction': return numberIn(values, where, (f) => f.traffic_direction);
    case 'verdict': return numberIn(values, where, (f) => f.verdict);
    case 'drop_reason_desc': return numberIn(values, where, (f) => f.drop_reason_desc ?? 0);
    case 'ip_version': return numberIn(values, where, (f) => f.IP.ipVersion);
    case 'event_type':
      return anyOf(values as readonly EventTypeFilter[], (e) => (f) =>
        f.event_type.type === (e.type ?? 0) && (!e.match_sub_type || (f.event_type.sub_type ?? 0) === (e.sub_type ?? 0)));
    case 'protocol': {
      const protos = strings(values, where).map((v) => protocolKey(v, where));
      return (f) => protos.some((p) => f.l4?.[p] !== undefined);
    }
    case 'source_port':
    case 'destination_port': {
      const ports = new Set(strings(values, where).map((v) => port(v, where)));
      return (f) => {
        const p = portsOf(f);
        return p !== undefined && ports.has(side === 'source' ? p.source_port : p.destination_port);
      };
    }
    case 'reply': {
      const want = values.map((v) => v === true);
      return (f) => f.is_reply !== undefined && want.includes(f.is_reply.value);
    }
    case 'tcp_flags':
      return anyOf(values as readonly TcpFlags[], (want) => {
        const names = (Object.keys(want) as (keyof TcpFlags)[]).filter((k) => want[k] === true);
        return (f) => f.l4?.TCP?.flags !== undefined && names.every((k) => f.l4?.TCP?.flags?.[k] === true);
      });
    case 'node_name':
      return anyOf(strings(values, where), (v) => {
        const re = globRegExp(v);
        return (f) => re.test(f.node_name);
      });
    default:
      throw new FilterError(where, 'this filter field is not supported by Sluice');
  }
}

function anyOf<T>(values: readonly T[], make: (v: T) => FlowPredicate): FlowPredicate {
  const preds = values.map(make);
  return (f) => preds.some((p) => p(f));
}

function strings(values: readonly unknown[], where: string): string[] {
  return values.map((v) => {
    if (typeof v !== 'string') throw new FilterError(where, `expected strings, got ${typeof v}`);
    return v;
  });
}

function numbers(values: readonly unknown[], where: string): number[] {
  return values.map((v) => {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new FilterError(where, `expected integers, got ${String(v)}`);
    return v;
  });
}

function numberIn(values: readonly unknown[], where: string, get: (f: Flow) => number): FlowPredicate {
  const set = new Set(numbers(values, where));
  return (f) => set.has(get(f));
}

function ipOrCidr(v: string, where: string): Cidr {
  const ip = parseIp(v.includes('/') ? v.slice(0, v.indexOf('/')) : v);
  const c = parseCidr(v.includes('/') ? v : `${v}/${typeof ip !== 'string' && ip.family === 6 ? 128 : 32}`);
  if (typeof c === 'string') throw new FilterError(where, `"${v}" is not an IP address or CIDR: ${c}`);
  return c.cidr;
}

/** "ns/prefix": that namespace, pod names starting with prefix; "ns/": the whole namespace; "prefix": any namespace. */
function podMatcher(v: string, side: 'source' | 'destination'): FlowPredicate {
  const slash = v.indexOf('/');
  const ns = slash >= 0 ? v.slice(0, slash) : undefined;
  const prefix = slash >= 0 ? v.slice(slash + 1) : v;
  return (f) => {
    const ep = f[side];
    if (ep.pod_name === undefined || ep.pod_name === '') return false;
    return (ns === undefined || ep.namespace === ns) && ep.pod_name.startsWith(prefix);
  };
}

/** "k8s:app=web" → app: web (the source prefix is dropped; a selector without one matches any source). */
function labelMap(ep: FlowEndpoint): ReadonlyMap<string, string> {
  const m = new Map<string, string>();
  for (const l of ep.labels ?? []) {
    const eq = l.indexOf('=');
    const key = eq >= 0 ? l.slice(0, eq) : l;
    const value = eq >= 0 ? l.slice(eq + 1) : '';
    m.set(key, value);
    const colon = key.indexOf(':');
    if (colon >= 0) m.set(key.slice(colon + 1), value);
  }
  return m;
}

const LABEL_KEY = /^(?:[a-z0-9]+:)?[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?)?$/;

/** A label selector: comma-separated "k=v", "k==v", "k!=v", "k", "!k", "k in (a,b)", "k notin (a,b)". */
export function parseSelector(text: string, where: string): (labels: ReadonlyMap<string, string>) => boolean {
  const terms: ((l: ReadonlyMap<string, string>) => boolean)[] = [];
  for (const raw of splitTerms(text)) {
    const t = raw.trim();
    let m: RegExpExecArray | null;
    const key = (k: string): string => {
      if (!LABEL_KEY.test(k)) throw new FilterError(where, `"${text}": invalid label key "${k}"`);
      return k;
    };
    const value = (v: string): string => {
      if (!LABEL_VALUE.test(v)) throw new FilterError(where, `"${text}": invalid label value "${v}"`);
      return v;
    };
    if ((m = /^(\S+?)\s*(!=|==|=)\s*(\S*)$/.exec(t)) !== null) {
      const k = key(m[1] ?? ''); const v = value(m[3] ?? ''); const neg = m[2] === '!=';
      terms.push((l) => (l.get(k) === v) !== neg);
    } else if ((m = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(t)) !== null) {
      const k = key(m[1] ?? ''); const vs = new Set((m[3] ?? '').split(',').map((s) => value(s.trim())));
      const neg = m[2] === 'notin';
      terms.push((l) => { const v = l.get(k); return neg ? v === undefined || !vs.has(v) : v !== undefined && vs.has(v); });
    } else if ((m = /^!(\S+)$/.exec(t)) !== null) {
      const k = key(m[1] ?? '');
      terms.push((l) => !l.has(k));
    } else if (t !== '' && LABEL_KEY.test(t)) {
      terms.push((l) => l.has(t));
    } else {
      throw new FilterError(where, `"${text}" is not a label selector`);
    }
  }
  if (terms.length === 0) throw new FilterError(where, 'empty label selector');
  return (l) => terms.every((t) => t(l));
}

/** Splits on commas outside parentheses. */
function splitTerms(s: string): string[] {
  const out: string[] = [];
  let depth = 0; let cur = '';
  for (const c of s) {
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) { out.push(cur); cur = ''; } else cur += c;
  }
  out.push(cur);
  return out;
}

type L4Key = 'TCP' | 'UDP' | 'SCTP' | 'ICMPv4';

function protocolKey(v: string, where: string): L4Key {
  switch (v.toLowerCase()) {
    case 'tcp': return 'TCP';
    case 'udp': return 'UDP';
    case 'sctp': return 'SCTP';
    case 'icmp': case 'icmpv4': return 'ICMPv4';
    default: throw new FilterError(where, `unknown protocol "${v}" (tcp, udp, sctp, icmp)`);
  }
}

function port(v: string, where: string): number {
  const n = /^\d{1,5}$/.test(v) ? Number(v) : NaN;
  if (!(n >= 0 && n <= 65535)) throw new FilterError(where, `"${v}" is not a port (0-65535)`);
  return n;
}

function portsOf(f: Flow): { source_port: number; destination_port: number } | undefined {
  return f.l4?.TCP ?? f.l4?.UDP ?? f.l4?.SCTP;
}

function globRegExp(glob: string): RegExp {
  const body = glob.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${body}$`);
}
