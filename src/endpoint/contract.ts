/**
 * The endpoint contract between the agent and its CNI plugin: what the
 * plugin asks of the agent (the EndpointPort), the values that cross
 * (EndpointSpec, EndpointRecord, NodeInfo, the readiness report, the
 * forwarded CNI invocation and its answer) and how a request fails
 * (EndpointError and its codes). Both sides import this module; it imports
 * neither side, so the agent and the CNI never import each other for it.
 *
 * Two transports implement the port: the agent's endpoint service called
 * directly (src/agent/endpoints/service.ts: the plugin the agent runs
 * in-process for the C shim) and the HTTP client on the agent's unix socket
 * (client.ts: the Node plugin, sluice-cni-node, and tools).
 *
 * An endpoint is one pod interface on this node, as the CNI plugin
 * registers it before the interface comes up. Identified by (containerId,
 * ifname), as the CNI spec identifies an attachment; the agent assigns the
 * endpoint id that the datapath keys policy by. Requests are validated
 * field by field; each problem names its field, so the CNI can turn it into
 * a precise error for the runtime.
 */
import { formatIp, parseIp } from '../policy/cidr.js';
import { checkDnsLabel, checkDnsSubdomain } from '../policy/names.js';

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

/** A registration's answer: created is false for a repeat (unchanged or updated). */
export interface RegisterResult {
  readonly endpoint: EndpointRecord;
  readonly created: boolean;
}

export interface NodeInfo {
  readonly name: string;
  /** The Node object is in the agent's informer cache (false: not listed yet, or no such node). */
  readonly known: boolean;
  /** spec.podCIDRs (or [spec.podCIDR]); empty when the node has none (yet). */
  readonly podCIDRs: readonly string[];
}

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** The agent's readiness: ready once it can take an ADD (informers listed, first sync in the maps, maps accepting). */
export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: readonly Check[];
}

/**
 * Why an endpoint request failed. From the agent:
 *   invalid-argument  a field is wrong (field, problems name it)
 *   not-found         no such endpoint, path, or an agent that does not serve the request
 *   conflict          e.g. the IP is registered to another endpoint
 *   exhausted         no endpoint id left
 *   unavailable       the endpoint's policy did not reach the maps in time (retry)
 *   state-corrupt, io, internal   the agent failed
 * From the HTTP transport itself:
 *   unreachable       no agent answered (notSent: the connection failed, so the agent cannot have acted)
 *   protocol          an answer that is not the API's
 */
export const ENDPOINT_ERROR_CODES = [
  'invalid-argument', 'not-found', 'conflict', 'exhausted', 'unavailable', 'state-corrupt', 'io', 'internal', 'unreachable', 'protocol',
] as const;
export type EndpointErrorCode = (typeof ENDPOINT_ERROR_CODES)[number];

export function isEndpointErrorCode(s: unknown): s is EndpointErrorCode {
  return (ENDPOINT_ERROR_CODES as readonly unknown[]).includes(s);
}

export interface EndpointErrorDetails {
  /** The request field at fault ("ip"). */
  readonly field?: string;
  /** Every field problem of an invalid request. */
  readonly problems?: readonly FieldProblem[];
  /** HTTP status, when the error came over HTTP (0: no answer). */
  readonly status?: number;
  /** unreachable only: the request never left this process (connect failed). */
  readonly notSent?: boolean;
  readonly cause?: unknown;
}

export class EndpointError extends Error {
  override readonly name = 'EndpointError';
  readonly field: string | undefined;
  readonly problems: readonly FieldProblem[] | undefined;
  readonly status: number | undefined;
  readonly notSent: boolean;

  constructor(
    readonly code: EndpointErrorCode,
    message: string,
    details: EndpointErrorDetails = {},
  ) {
    super(message, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.field = details.field;
    this.problems = details.problems;
    this.status = details.status;
    this.notSent = details.notSent ?? false;
  }

  /** The wire form of an agent's error: {code, message, field?, problems?}. */
  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      ...(this.field !== undefined ? { field: this.field } : {}),
      ...(this.problems !== undefined ? { problems: this.problems } : {}),
    };
  }
}

/** An invalid request, named by its first problem; every problem is listed. */
export function invalidRequest(problems: readonly FieldProblem[]): EndpointError {
  const first = problems[0];
  const message = first === undefined ? 'invalid request' : `${first.field === '' ? '' : `${first.field}: `}${first.message}`;
  return new EndpointError('invalid-argument', message, { ...(first !== undefined && first.field !== '' ? { field: first.field } : {}), problems });
}

/**
 * What the CNI plugin asks of the agent. Every method rejects with an
 * EndpointError only.
 */
export interface EndpointPort {
  /** Registers (or re-registers) the attachment; resolves once its policy is in the maps (else rejects: unavailable). */
  register(spec: EndpointSpec): Promise<RegisterResult>;
  /** undefined when the attachment is not registered. */
  get(containerId: string, ifname: string): Promise<EndpointRecord | undefined>;
  /** The removed record; undefined when there was none (success either way). */
  unregister(containerId: string, ifname: string): Promise<EndpointRecord | undefined>;
  list(): Promise<EndpointRecord[]>;
  /** Readiness as the agent sees it; a not-ready agent still answers. */
  status(): Promise<ReadinessReport>;
  /** This node's name and pod CIDRs, as the agent's informer has them (the CNI's IPAM range). */
  node(): Promise<NodeInfo>;
}

/*
 * POST /v1/cni/exec: a CNI invocation that the sluice-cni front end
 * (native/cni-shim) forwards to the agent, {env, stdin, namespaces: {net,
 * mnt}, paths: {path: identity}} (its CNI_* environment, stdin, the
 * "st_dev:st_ino" of its namespaces, and of the paths the plugin may open as
 * the shim sees them: src/cni/path-identity.ts), and the answer.
 */

/** One plugin run: stdout (the result or the spec's error object), stderr, exit code. */
export interface CniOutcome {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/**
 * Why the agent did not run a forwarded invocation (the shim then runs the Node plugin):
 *   not-here        the shim runs in another network or mount namespace
 *   not-mine        the config names another agent socket, or cannot be read
 *   not-in-process  VERSION, or a request without a CNI command
 */
export type CniFallbackReason = 'not-here' | 'not-mine' | 'not-in-process';

export type CniExecAnswer =
  | { readonly kind: 'done'; readonly outcome: CniOutcome }
  | { readonly kind: 'fallback'; readonly reason: CniFallbackReason; readonly detail: string };

/** GET /v1/cni/exec: invocations the agent ran, fallbacks by reason. */
export interface CniExecStats {
  readonly done: number;
  readonly fallback: Readonly<Record<CniFallbackReason, number>>;
}
