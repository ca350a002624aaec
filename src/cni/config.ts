/**
 * The network configuration on stdin: decoded (code 6), its version checked
 * (code 1), every field validated (code 7 naming the field) and unknown
 * fields refused (code 2 naming key and value: a typo like "mut" must not
 * silently give a pod the default MTU).
 *
 *   {
 *     "cniVersion": "1.1.0", "name": "sluice", "type": "sluice-cni",
 *     "agentSocket": "/var/run/sluice/agent.sock",   agent endpoint API
 *     "mtu": 1500,                                    both veth ends
 *     "datapath": "bpf",                              "none": no tc programs (dry-run agents only)
 *     "pinRoot": "/sys/fs/bpf/sluice",                the shared pinned maps
 *     "bpfObject": "…/build/bpf/lxc.o",               default: this build's
 *     "timeoutMs": 30000,                             per agent request (an ADD waits for policy)
 *     "ipam": {"type": "sluice", "podCIDRs": ["10.1.0.0/24"], "dataDir": "/var/run/sluice/ipam"},
 *     "dns": {"nameservers": […], "search": […]}      copied into the result
 *   }
 *
 * Without ipam.podCIDRs the pod CIDR comes from the agent (the Node's
 * spec.podCIDRs). Runtime-inserted fields: runtimeConfig (mac), prevResult,
 * cni.dev/valid-attachments (GC).
 */
import { parseCidr, type Cidr } from '../policy/cidr.js';
import { CniCode, CniError } from './errors.js';
import { parseDns, parseResult, type CniDns, type CniResult } from './result.js';
import { checkVersion, type CniVersion } from './version.js';

export interface IpamConfig {
  /** Empty: ask the agent. */
  readonly podCIDRs: readonly Cidr[];
  readonly dataDir: string;
}

export interface Attachment {
  readonly containerId: string;
  readonly ifname: string;
}

export interface NetConf {
  readonly cniVersion: CniVersion;
  readonly name: string;
  readonly type: string;
  readonly agentSocket: string;
  readonly mtu: number;
  readonly datapath: 'bpf' | 'none';
  readonly pinRoot: string;
  readonly bpfObject: string | undefined;
  readonly timeoutMs: number;
  readonly ipam: IpamConfig;
  readonly dns: CniDns;
  /** runtimeConfig.mac (capability "mac"): the container interface's MAC. */
  readonly mac: string | undefined;
  readonly prevResult: CniResult | undefined;
  /** GC: cni.dev/valid-attachments. */
  readonly validAttachments: readonly Attachment[] | undefined;
}

/** Where the agent serves its endpoint API unless the config says otherwise (the C shim gets it from here: scripts/gen-cni-shim-header.mjs). */
export const DEFAULT_AGENT_SOCKET = '/var/run/sluice/agent.sock';

/** agentSocket and timeoutMs are also the C shim's defaults (scripts/gen-cni-shim-header.mjs). */
export const DEFAULTS = {
  agentSocket: DEFAULT_AGENT_SOCKET,
  mtu: 1500,
  pinRoot: '/sys/fs/bpf/sluice',
  timeoutMs: 30_000,
  ipamDataDir: '/var/run/sluice/ipam',
} as const;

const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Keys the runtime or the spec may put in any plugin's config; accepted, maybe unused. */
const SPEC_KEYS = ['cniVersion', 'cniVersions', 'name', 'type', 'args', 'capabilities', 'runtimeConfig', 'prevResult', 'ipam', 'dns',
  'cni.dev/valid-attachments', 'cni.dev/attachments', 'disableCheck', 'disableGC'];
const SLUICE_KEYS = ['agentSocket', 'mtu', 'datapath', 'pinRoot', 'bpfObject', 'timeoutMs'];
const IPAM_KEYS = ['type', 'podCIDRs', 'dataDir'];

/** The raw object: code 6 unless stdin is one JSON object. */
export function decodeConfig(stdin: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdin);
  } catch (e) {
    const what = stdin.trim() === '' ? 'stdin is empty' : `stdin is not JSON: ${(e as Error).message}`;
    throw new CniError(CniCode.DECODE, `cannot decode the network config: ${what}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new CniError(CniCode.DECODE, `cannot decode the network config: want a JSON object, got ${Array.isArray(parsed) ? 'a list' : JSON.stringify(parsed)}`);
  }
  return parsed as Record<string, unknown>;
}

export function parseConfig(raw: Record<string, unknown>): NetConf {
  const cniVersion = checkVersion(raw['cniVersion']);
  for (const [k, v] of Object.entries(raw)) {
    if (!SPEC_KEYS.includes(k) && !SLUICE_KEYS.includes(k)) unsupported(k, v, [...SLUICE_KEYS, ...SPEC_KEYS]);
  }
  const name = requireString(raw, 'name');
  if (!NETWORK_NAME.test(name)) invalid('name', `"${name}" must be alphanumeric plus '_', '.' and '-', starting alphanumeric`);
  const type = requireString(raw, 'type');
  if (raw['cniVersions'] !== undefined && !isStringList(raw['cniVersions'])) invalid('cniVersions', 'must be a list of version strings');
  for (const k of ['args', 'capabilities', 'runtimeConfig'] as const) {
    if (raw[k] !== undefined && !isObject(raw[k])) invalid(k, `must be an object, got ${JSON.stringify(raw[k])}`);
  }
  for (const k of ['disableCheck', 'disableGC'] as const) {
    if (raw[k] !== undefined && typeof raw[k] !== 'boolean') invalid(k, `must be true or false, got ${JSON.stringify(raw[k])}`);
  }

  const agentSocket = optionalString(raw, 'agentSocket') ?? DEFAULTS.agentSocket;
  if (!agentSocket.startsWith('/')) invalid('agentSocket', `must be an absolute path, got "${agentSocket}"`);
  if (Buffer.byteLength(agentSocket) > 107) invalid('agentSocket', 'is longer than a unix socket path may be (107 bytes)');
  const mtu = optionalInt(raw, 'mtu', 576, 65535) ?? DEFAULTS.mtu;
  const datapath = optionalString(raw, 'datapath') ?? 'bpf';
  if (datapath !== 'bpf' && datapath !== 'none') invalid('datapath', `must be "bpf" or "none", got "${datapath}"`);
  const pinRoot = optionalString(raw, 'pinRoot') ?? DEFAULTS.pinRoot;
  if (!pinRoot.startsWith('/')) invalid('pinRoot', `must be an absolute path, got "${pinRoot}"`);
  const bpfObject = optionalString(raw, 'bpfObject');
  if (bpfObject !== undefined && !bpfObject.startsWith('/')) invalid('bpfObject', `must be an absolute path, got "${bpfObject}"`);
  const timeoutMs = optionalInt(raw, 'timeoutMs', 100, 600_000) ?? DEFAULTS.timeoutMs;

  const dns = raw['dns'] === undefined ? {} : parseDns(raw['dns'], 'dns');
  const mac = runtimeMac(raw['runtimeConfig']);
  const prevResult = raw['prevResult'] === undefined || raw['prevResult'] === null ? undefined : parseResult(raw['prevResult'], cniVersion);
  const validAttachments = parseAttachments(raw);

  return {
    cniVersion, name, type, agentSocket, mtu, datapath, pinRoot, bpfObject, timeoutMs,
    ipam: parseIpam(raw['ipam']), dns, mac, prevResult, validAttachments,
  };
}

function parseIpam(raw: unknown): IpamConfig {
  if (raw === undefined) return { podCIDRs: [], dataDir: DEFAULTS.ipamDataDir };
  if (!isObject(raw)) invalid('ipam', `must be an object, got ${JSON.stringify(raw)}`);
  for (const [k, v] of Object.entries(raw)) if (!IPAM_KEYS.includes(k)) unsupported(`ipam.${k}`, v, IPAM_KEYS);
  const type = raw['type'];
  if (type !== 'sluice') {
    throw new CniError(CniCode.UNSUPPORTED_FIELD,
      `ipam.type=${JSON.stringify(type)}: sluice-cni allocates from the node's pod CIDR itself; set ipam.type to "sluice" (or leave ipam out)`);
  }
  const dataDir = raw['dataDir'] ?? DEFAULTS.ipamDataDir;
  if (typeof dataDir !== 'string' || !dataDir.startsWith('/')) invalid('ipam.dataDir', `must be an absolute path, got ${JSON.stringify(dataDir)}`);
  const list = raw['podCIDRs'] ?? [];
  if (!isStringList(list)) invalid('ipam.podCIDRs', `must be a list of CIDRs, got ${JSON.stringify(list)}`);
  return { podCIDRs: parsePodCidrs(list, 'ipam.podCIDRs'), dataDir };
}

/**
 * Pod CIDRs as the Node's spec.podCIDRs has them: at most one per family.
 * IPv6 parses (dual-stack is designed in: one allocation per family) but is
 * refused until the datapath carries it.
 */
export function parsePodCidrs(list: readonly string[], field: string): Cidr[] {
  const out: Cidr[] = [];
  list.forEach((text, i) => {
    const p = parseCidr(text);
    if (typeof p === 'string') invalid(`${field}[${i}]`, p);
    if (p.hostBitsSet) invalid(`${field}[${i}]`, `"${text}" has host bits set`);
    if (p.cidr.family === 6) {
      throw new CniError(CniCode.UNSUPPORTED_FIELD, `${field}[${i}]="${text}": IPv6 pod CIDRs are not supported yet (the datapath is IPv4-only)`);
    }
    if (p.cidr.prefixlen > 30) invalid(`${field}[${i}]`, `"${text}" is too small for pods (want /30 or wider)`);
    if (out.some((c) => c.family === p.cidr.family)) invalid(field, `more than one IPv${p.cidr.family} CIDR`);
    out.push(p.cidr);
  });
  return out;
}

function parseAttachments(raw: Record<string, unknown>): Attachment[] | undefined {
  const key = raw['cni.dev/valid-attachments'] !== undefined ? 'cni.dev/valid-attachments' : 'cni.dev/attachments';
  const list = raw[key];
  if (list === undefined) return undefined;
  if (!Array.isArray(list)) invalid(key, `must be a list of {containerID, ifname}, got ${JSON.stringify(list)}`);
  return list.map((a, i) => {
    if (!isObject(a) || typeof a['containerID'] !== 'string' || typeof a['ifname'] !== 'string') {
      invalid(`${key}[${i}]`, `must be {"containerID": string, "ifname": string}, got ${JSON.stringify(a)}`);
    }
    return { containerId: a['containerID'], ifname: a['ifname'] };
  });
}

function runtimeMac(rc: unknown): string | undefined {
  if (!isObject(rc) || rc['mac'] === undefined) return undefined;
  const mac = rc['mac'];
  if (typeof mac !== 'string' || !MAC.test(mac.toLowerCase())) invalid('runtimeConfig.mac', `must be a MAC address like 02:42:ac:11:00:02, got ${JSON.stringify(mac)}`);
  const m = mac.toLowerCase();
  if ((parseInt(m.slice(0, 2), 16) & 1) === 1) invalid('runtimeConfig.mac', `${mac} is a multicast address`);
  return m;
}

function unsupported(key: string, value: unknown, known: readonly string[]): never {
  const shown = JSON.stringify(value);
  throw new CniError(CniCode.UNSUPPORTED_FIELD,
    `unsupported field ${key}=${shown.length > 80 ? `${shown.slice(0, 80)}…` : shown} (known: ${known.join(', ')})`);
}

function invalid(field: string, message: string): never {
  throw new CniError(CniCode.INVALID_CONFIG, `invalid network config: ${field}: ${message}`);
}

function requireString(raw: Record<string, unknown>, key: string): string {
  const v = raw[key];
  if (v === undefined) invalid(key, 'is required');
  if (typeof v !== 'string' || v === '') invalid(key, `must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function optionalString(raw: Record<string, unknown>, key: string): string | undefined {
  const v = raw[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') invalid(key, `must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function optionalInt(raw: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = raw[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) invalid(key, `must be an integer ${min}..${max}, got ${JSON.stringify(v)}`);
  return v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}
