/**
 * An endpoint: one pod interface on this node, as the CNI plugin registers
 * it before the interface comes up. Identified by (containerId, ifname), as
 * the CNI spec identifies an attachment; the agent assigns the endpoint id
 * that the datapath keys policy by.
 *
 * Requests are validated field by field; each problem names its field, so
 * the CNI can turn it into a precise error for the runtime.
 */
import { formatIp, parseIp } from '../../policy/cidr.js';
import { checkDnsLabel, checkDnsSubdomain } from '../../policy/names.js';

export interface EndpointSpec {
  /** CNI_CONTAINERID. */
  readonly containerId: string;
  /** CNI_IFNAME: the interface inside the pod. */
  readonly ifname: string;
  /** CNI_NETNS: path of the pod's network namespace. */
  readonly netns: string;
  readonly podNamespace: string;
  readonly podName: string;
  /** The pod's IPv4 address on this interface. */
  readonly ip: string;
  /** Host side of the veth pair. */
  readonly hostIfname: string;
  readonly hostIfindex: number;
}

export interface EndpointRecord extends EndpointSpec {
  /** Assigned by the agent; the datapath's endpoint key. */
  readonly endpointId: number;
  /** ISO time of the first registration. */
  readonly createdAt: string;
}

export interface FieldProblem {
  readonly field: string;
  readonly message: string;
}

export type Validated<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problems: readonly FieldProblem[] };

const SPEC_FIELDS = ['containerId', 'ifname', 'netns', 'podNamespace', 'podName', 'ip', 'hostIfname', 'hostIfindex'] as const;
const RECORD_FIELDS = [...SPEC_FIELDS, 'endpointId', 'createdAt'] as const;

/** CNI spec: "alphanumeric, plus underscore, period and hyphen", non-empty. */
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const MAX_CONTAINER_ID = 256;

/** A Linux interface name: 1..15 bytes, no '/', ':' or whitespace, not "." or "..". */
export function checkIfname(s: string): string | undefined {
  if (s === '') return 'must not be empty';
  if (Buffer.byteLength(s) > 15) return `must be at most 15 bytes (IFNAMSIZ-1), got ${Buffer.byteLength(s)}`;
  if (s === '.' || s === '..') return `"${s}" is not a valid interface name`;
  if (/[\s/:]/.test(s)) return `"${s}" contains '/', ':' or whitespace`;
  return undefined;
}

export function checkContainerId(s: string): string | undefined {
  if (s === '') return 'must not be empty';
  if (s.length > MAX_CONTAINER_ID) return `must be at most ${MAX_CONTAINER_ID} characters, got ${s.length}`;
  if (!CONTAINER_ID.test(s)) return `"${s}" must be alphanumeric plus '_', '.' and '-', starting alphanumeric`;
  return undefined;
}

/** The attachment key: "containerId/ifname" ('/' can appear in neither). */
export function attachmentKey(a: { readonly containerId: string; readonly ifname: string }): string {
  return `${a.containerId}/${a.ifname}`;
}

class Problems {
  readonly list: FieldProblem[] = [];
  add(field: string, message: string | undefined): void {
    if (message !== undefined) this.list.push({ field, message });
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `"${v.length > 40 ? `${v.slice(0, 40)}…` : v}"`;
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v) ?? String(typeof v)}`;
}

function requireString(obj: Record<string, unknown>, field: string, p: Problems): string | undefined {
  const v = obj[field];
  if (v === undefined || v === null) {
    p.add(field, 'is required');
    return undefined;
  }
  if (typeof v !== 'string') {
    p.add(field, `must be a string, got ${describe(v)}`);
    return undefined;
  }
  return v;
}

function checkFields(obj: Record<string, unknown>, known: readonly string[], p: Problems): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) p.add(key, `unknown field (known: ${known.join(', ')})`);
  }
}

/** Checks a registration request; the IP comes back normalised ("010.1.0.1" is rejected, not guessed). */
export function validateEndpointSpec(body: unknown): Validated<EndpointSpec> {
  return validateObject(body, SPEC_FIELDS, (obj, p) => readSpec(obj, p));
}

/** Checks a persisted record (the state file is ours, but a bad one must be named, not half-loaded). */
export function validateEndpointRecord(body: unknown): Validated<EndpointRecord> {
  return validateObject(body, RECORD_FIELDS, (obj, p) => {
    const spec = readSpec(obj, p);
    const id = obj['endpointId'];
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > 0xffffffff) {
      p.add('endpointId', `must be an integer 1..4294967295, got ${describe(id)}`);
    }
    const createdAt = requireString(obj, 'createdAt', p);
    if (createdAt !== undefined && Number.isNaN(Date.parse(createdAt))) p.add('createdAt', `not an ISO time: ${describe(createdAt)}`);
    if (spec === undefined || p.list.length > 0) return undefined;
    return { ...spec, endpointId: id as number, createdAt: createdAt as string };
  });
}

function validateObject<T>(
  body: unknown,
  known: readonly string[],
  read: (obj: Record<string, unknown>, p: Problems) => T | undefined,
): Validated<T> {
  const p = new Problems();
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, problems: [{ field: '', message: `the body must be a JSON object, got ${describe(body)}` }] };
  }
  const obj = body as Record<string, unknown>;
  checkFields(obj, known, p);
  const value = read(obj, p);
  return p.list.length > 0 || value === undefined ? { ok: false, problems: p.list } : { ok: true, value };
}

function readSpec(obj: Record<string, unknown>, p: Problems): EndpointSpec | undefined {
  const containerId = requireString(obj, 'containerId', p);
  if (containerId !== undefined) p.add('containerId', checkContainerId(containerId));
  const ifname = requireString(obj, 'ifname', p);
  if (ifname !== undefined) p.add('ifname', checkIfname(ifname));
  const netns = requireString(obj, 'netns', p);
  if (netns !== undefined && !netns.startsWith('/')) p.add('netns', `must be an absolute path, got ${describe(netns)}`);
  const podNamespace = requireString(obj, 'podNamespace', p);
  if (podNamespace !== undefined) p.add('podNamespace', checkDnsLabel(podNamespace));
  const podName = requireString(obj, 'podName', p);
  if (podName !== undefined) p.add('podName', checkDnsSubdomain(podName));
  const ipText = requireString(obj, 'ip', p);
  let ip: string | undefined;
  if (ipText !== undefined) {
    const parsed = parseIp(ipText);
    if (typeof parsed === 'string') p.add('ip', parsed);
    else if (parsed.family !== 4) p.add('ip', `${ipText} is IPv6; the datapath carries IPv4 only for now`);
    else if (formatIp(parsed) !== ipText) p.add('ip', `write the address in canonical form "${formatIp(parsed)}", got "${ipText}"`);
    else ip = ipText;
  }
  const hostIfname = requireString(obj, 'hostIfname', p);
  if (hostIfname !== undefined) p.add('hostIfname', checkIfname(hostIfname));
  const idx = obj['hostIfindex'];
  if (idx === undefined || idx === null) p.add('hostIfindex', 'is required');
  else if (typeof idx !== 'number' || !Number.isInteger(idx) || idx < 1 || idx > 0x7fffffff) {
    p.add('hostIfindex', `must be an interface index 1..2147483647, got ${describe(idx)}`);
  }
  if (
    containerId === undefined || ifname === undefined || netns === undefined || podNamespace === undefined ||
    podName === undefined || ip === undefined || hostIfname === undefined || typeof idx !== 'number'
  ) {
    return undefined;
  }
  return { containerId, ifname, netns, podNamespace, podName, ip, hostIfname, hostIfindex: idx };
}

/** Same attachment, same facts: a repeated ADD that changes nothing. */
export function sameSpec(a: EndpointSpec, b: EndpointSpec): boolean {
  return SPEC_FIELDS.every((f) => a[f] === b[f]);
}
