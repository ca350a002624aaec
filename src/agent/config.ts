/**
 * The agent's configuration: defaults ← config file (YAML or JSON, --config)
 * ← environment (NODE_NAME) ← flags. Every value is checked and a problem
 * names its key as written in the file ("mapSizes.policy", "watch.backoff.jitter")
 * and, for flags, the flag. Unknown keys are errors: a typo must not be
 * silently ignored.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DEFAULTS as CNI_DEFAULTS } from '../cni/config.js';
import { SluiceMapCapacity } from '../datapath/generated/abi.js';
import { DEFAULT_MAGLEV_TABLE_SIZE, MAGLEV_TABLE_SIZES } from '../lb/maglev.js';
import { checkDnsSubdomain } from '../policy/names.js';
import { checkBackoffPolicy, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
import { AgentError, asError } from './errors.js';
import { MAX_UNIX_PATH, parseListenAddress } from './http-server.js';
import { LOG_LEVELS, type LogLevel } from './logger.js';

export const MAP_NAMES = ['ipcache', 'iphost', 'policy', 'endpoints', 'conntrack', 'fragments', 'interfaces'] as const;
export type MapName = (typeof MAP_NAMES)[number];
export const MAX_MAP_SIZE = 1 << 24;

export interface SyncConfig {
  readonly debounceMs: number;
  readonly maxDelayMs: number;
  /** How long an endpoint ADD waits for its policy to reach the maps. */
  readonly endpointTimeoutMs: number;
  readonly retry: BackoffPolicy;
}

export interface WatchConfig {
  readonly timeoutSeconds: number;
  readonly pageSize: number;
  readonly backoff: BackoffPolicy;
}

/** The endpoint sweep (endpoints/sweep.ts): frees attachments whose veth and netns vanished without a CNI DEL. */
export interface SweepConfig {
  /** Between sweeps; 0 turns the sweep off. */
  readonly intervalMs: number;
  /** How long veth and netns must stay gone before an endpoint is swept. */
  readonly graceMs: number;
  /** Path of the namespace holding the host veths; absent: the agent's own (a node's host netns). */
  readonly hostNetns?: string;
  /** The CNI's ipam.dataDir (default the CNI's default): where the sweep releases addresses. */
  readonly ipamDataDir: string;
}

/** Conntrack lifetimes per state, in ms (sl_ct_cfg_v1, the conntrack-config owner); 0 = the datapath's default. */
export interface ConntrackConfig {
  readonly tcpSynMs: number;
  readonly tcpEstablishedMs: number;
  readonly tcpFinMs: number;
  readonly tcpClosedMs: number;
  readonly udpMs: number;
  readonly icmpMs: number;
}

export const CONNTRACK_KEYS = ['tcpSynMs', 'tcpEstablishedMs', 'tcpFinMs', 'tcpClosedMs', 'udpMs', 'icmpMs'] as const;
/** Where and how the agent serves flows (src/flow, docs/flows.md). */
export interface FlowsConfig {
  /** Unix socket of the Observer API ("" turns the flow API off). */
  readonly socket: string;
  /** Flows kept in the ring (Hubble's default 4,095). */
  readonly capacity: number;
  /**
   * Which allowed packets become flows (drops always do): 'off'; 'policy', one per
   * connection policy decided (its opening packet, with the allowing rule); 'tcp-flags', those
   * and each TCP packet showing a flag its connection had not shown; 'all', every packet.
   */
  readonly trace: 'off' | 'policy' | 'tcp-flags' | 'all';
  /** Also serve on TCP with TLS. */
  readonly tcp?: { readonly listen: string; readonly certFile: string; readonly keyFile: string; readonly clientCaFile?: string };
  /** Write flows as Hubble exporter JSON lines to a file. */
  readonly exporter?: ExporterConfig;
}

export interface ExporterConfig {
  readonly file: string;
  /** Rotate when the file would pass this size. */
  readonly maxSizeBytes: number;
  /** Rotated files kept (file.1 … file.N). */
  readonly maxBackups: number;
  /** FlowFilter lists as protojson objects (proto field names, enums by name). */
  readonly allow: readonly unknown[];
  readonly deny: readonly unknown[];
}

/**
 * How this node reaches the other nodes' pods (agent/routing): native
 * (routes to each podCIDR via the node's InternalIP) or vxlan (an overlay
 * device). Absent: the agent installs no routes (a one-node setup, or a
 * host whose routes someone else manages).
 */
export type RoutingMode = 'native' | 'vxlan';
export const ROUTING_MODES: readonly RoutingMode[] = ['native', 'vxlan'];

export interface RoutingConfig {
  readonly mode: RoutingMode;
  /** The node's fabric-facing device (its InternalIP is on it): where vxlan sends from. */
  readonly device: string;
  /** The VXLAN network id and UDP port (vxlan mode). */
  readonly vni: number;
  readonly port: number;
}

/**
 * Who forwards pod traffic on the node (bpf/lib/host-routing.h): 'bpf',
 * the programs hand a packet for a local pod straight to its veth, past the
 * node's IP stack and netfilter; 'kernel', the node's stack forwards every
 * packet (needed when something in netfilter must see pod traffic, such as
 * kube-proxy's NAT rules).
 */
export type HostRouting = 'bpf' | 'kernel';
export const HOST_ROUTINGS: readonly HostRouting[] = ['bpf', 'kernel'];
/** How Services pick a backend for a new connection (the load-balancer owner), unless a Service's annotation says otherwise. */
export interface LbConfig {
  /**
   * Whether the agent implements Services (default true). false: the
   * load-balancer owner desires nothing, so the maps hold no frontend and
   * every packet reaches the node as the pod sent it (another Service proxy,
   * such as kube-proxy, then does the work).
   */
  readonly enabled: boolean;
  readonly algorithm: 'maglev' | 'random';
  /** Slots of a Maglev table: a prime of src/lb/maglev.ts. */
  readonly maglevTableSize: number;
  /**
   * The node's own sockets (host-network pods, the kubelet) reaching
   * Services (src/agent/datapath/host-sockets.ts): "auto" (default) attaches
   * the socket load balancer to the cgroup v2 tree under /sys/fs/cgroup,
   * "off" leaves them alone, a path names the directory to look under (the
   * node's /sys/fs/cgroup mounted into the agent's container).
   */
  readonly hostSockets: string;
  /**
   * kube-proxy's healthz port (/healthz, /livez; src/agent/proxy-health.ts),
   * "host:port" as httpListen; "" (default): not served. kube-proxy's own
   * is 0.0.0.0:10256.
   */
  readonly healthzListen: string;
  /** A change pending this long makes healthz answer 503 (kube-proxy: twice its 30 s sync period). */
  readonly healthzTimeoutMs: number;
  /** kube-proxy's status port (/proxyMode, /healthz, /metrics); "" (default): not served. kube-proxy's own is 127.0.0.1:10249. */
  readonly statusListen: string;
}
export const LB_ALGORITHMS = ['maglev', 'random'] as const;

export interface AgentConfig {
  readonly nodeName: string;
  /** Path of a kubeconfig; absent with inCluster = the pod's service account. */
  readonly kubeconfig?: string;
  readonly inCluster: boolean;
  readonly pinDir: string;
  readonly stateDir: string;
  readonly endpointSocket: string;
  /** host:port for /healthz, /readyz and /metrics. */
  readonly httpListen: string;
  readonly logLevel: LogLevel;
  readonly mapSizes: Readonly<Record<MapName, number>>;
  readonly maxEndpointId: number;
  readonly sync: SyncConfig;
  readonly watch: WatchConfig;
  readonly sweep: SweepConfig;
  readonly conntrack: ConntrackConfig;
  readonly flows: FlowsConfig;
  readonly routing?: RoutingConfig;
  readonly hostRouting: HostRouting;
  readonly lb: LbConfig;
}

export const DEFAULT_CONFIG: Omit<AgentConfig, 'nodeName' | 'inCluster'> = {
  pinDir: '/sys/fs/bpf/sluice',
  stateDir: '/var/run/sluice',
  endpointSocket: '/var/run/sluice/agent.sock',
  httpListen: '127.0.0.1:9890',
  logLevel: 'info',
  // Sized for a large cluster, not a lab: a full map fails closed, so a default that is too small
  // drops traffic policy allows. iphost holds every pod IP of the cluster (Cilium's ipcache: 512k);
  // policy holds the allow entries of this node's endpoints (Cilium: 16k per endpoint, ~110 pods
  // per node). Hash buckets cost 16 bytes of kernel memory per slot whether used or not:
  // 8 MiB for iphost, 16 MiB for policy; elements are allocated as they are written. Conntrack,
  // fragments (LRU, preallocated) and interfaces keep lxc.o's compiled sizes.
  mapSizes: {
    ipcache: 16_384, iphost: 524_288, policy: 1_048_576, endpoints: 4_096, conntrack: SluiceMapCapacity.CT_MAX_ENTRIES,
    fragments: SluiceMapCapacity.FRAG_MAX_ENTRIES, interfaces: SluiceMapCapacity.LXC_IFACES_MAX_ENTRIES,
  },
  maxEndpointId: 65_535,
  sync: { debounceMs: 20, maxDelayMs: 200, endpointTimeoutMs: 10_000, retry: DEFAULT_BACKOFF },
  watch: { timeoutSeconds: 300, pageSize: 500, backoff: { initialMs: 800, maxMs: 30_000, factor: 2, jitter: 0.5 } },
  sweep: { intervalMs: 30_000, graceMs: 60_000, ipamDataDir: CNI_DEFAULTS.ipamDataDir },
  conntrack: { tcpSynMs: 0, tcpEstablishedMs: 0, tcpFinMs: 0, tcpClosedMs: 0, udpMs: 0, icmpMs: 0 },
  flows: { socket: '/var/run/sluice/hubble.sock', capacity: 4095, trace: 'policy' },
  hostRouting: 'bpf',
  // Random by default, as kube-proxy and Cilium: a Maglev table holds 64 KiB of kernel memory per Service port at 16381 slots.
  lb: { enabled: true, algorithm: 'random', maglevTableSize: DEFAULT_MAGLEV_TABLE_SIZE, hostSockets: 'auto', healthzListen: '', healthzTimeoutMs: 60_000, statusListen: '' },
};

const TOP_KEYS = [
  'nodeName', 'kubeconfig', 'inCluster', 'pinDir', 'stateDir', 'endpointSocket', 'httpListen', 'logLevel', 'mapSizes',
  'maxEndpointId', 'sync', 'watch', 'sweep', 'conntrack', 'flows', 'routing', 'lb', 'hostRouting',
] as const;
const BACKOFF_KEYS = ['initialMs', 'maxMs', 'factor', 'jitter'] as const;

/** What flags and the environment contribute, already split from argv. */
export interface ConfigOverrides {
  readonly configFile?: string;
  readonly nodeName?: string;
  readonly kubeconfig?: string;
  readonly inCluster?: boolean;
  readonly pinDir?: string;
  readonly stateDir?: string;
  readonly endpointSocket?: string;
  readonly flowsSocket?: string;
  readonly httpListen?: string;
  readonly logLevel?: string;
  /** "name=size" items from --map-size. */
  readonly mapSizes?: readonly string[];
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bad(field: string, message: string, source: string): AgentError {
  return new AgentError('invalid-config', `${source}: ${field}: ${message}`, field);
}

/** Reads a config file (YAML or JSON) into a plain object; errors name the file. */
export function readConfigFile(path: string): Obj {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new AgentError('invalid-config', `--config ${path}: cannot read: ${asError(e).message}`, 'config');
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new AgentError('invalid-config', `${path}: not valid YAML/JSON: ${asError(e).message}`, 'config');
  }
  if (doc === null || doc === undefined) return {};
  if (!isObj(doc)) throw new AgentError('invalid-config', `${path}: must be a mapping of settings`, 'config');
  return doc;
}

/**
 * Builds the configuration. `env` supplies NODE_NAME, KUBECONFIG and
 * KUBERNETES_SERVICE_HOST (in-cluster detection).
 */
export function loadConfig(overrides: ConfigOverrides, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const file = overrides.configFile === undefined ? {} : readConfigFile(overrides.configFile);
  const src = overrides.configFile ?? 'config';
  for (const key of Object.keys(file)) {
    if (!(TOP_KEYS as readonly string[]).includes(key)) throw bad(key, `unknown setting (known: ${TOP_KEYS.join(', ')})`, src);
  }
  const r = new Reader(file, src);

  const nodeName = pickString(overrides.nodeName, '--node-name') ?? r.str('nodeName') ?? pickString(env['NODE_NAME'], '$NODE_NAME');
  if (nodeName === undefined) {
    throw new AgentError('invalid-config', 'nodeName: required: pass --node-name, set nodeName in the config file or $NODE_NAME', 'nodeName');
  }
  const badNode = checkDnsSubdomain(nodeName);
  if (badNode !== undefined) throw new AgentError('invalid-config', `nodeName: ${badNode}`, 'nodeName');

  const explicitKubeconfig = overrides.kubeconfig ?? r.str('kubeconfig');
  const inClusterFlag = overrides.inCluster ?? r.bool('inCluster');
  let kubeconfig: string | undefined;
  let inCluster = false;
  if (explicitKubeconfig !== undefined && inClusterFlag === true) {
    throw new AgentError('invalid-config', 'kubeconfig: give either a kubeconfig or inCluster, not both', 'kubeconfig');
  }
  if (explicitKubeconfig !== undefined) kubeconfig = explicitKubeconfig;
  else if (inClusterFlag === true) inCluster = true;
  else if (inClusterFlag !== false && env['KUBECONFIG'] !== undefined && env['KUBECONFIG'] !== '') kubeconfig = env['KUBECONFIG'];
  else if (inClusterFlag !== false && env['KUBERNETES_SERVICE_HOST'] !== undefined) inCluster = true;
  else {
    throw new AgentError('invalid-config',
      'kubeconfig: required: pass --kubeconfig (or set $KUBECONFIG), or --in-cluster when running in a pod', 'kubeconfig');
  }
  if (kubeconfig !== undefined) {
    try {
      accessSync(kubeconfig, constants.R_OK);
    } catch (e) {
      throw new AgentError('invalid-config', `kubeconfig: cannot read ${kubeconfig}: ${asError(e).message}`, 'kubeconfig');
    }
  }

  const path = (flag: string | undefined, key: 'pinDir' | 'stateDir' | 'endpointSocket', flagName: string): string => {
    const v = pickString(flag, flagName) ?? r.str(key) ?? DEFAULT_CONFIG[key];
    if (!isAbsolute(v)) throw new AgentError('invalid-config', `${key}: must be an absolute path, got "${v}"`, key);
    return v;
  };
  const pinDir = path(overrides.pinDir, 'pinDir', '--pin-dir');
  const stateDir = path(overrides.stateDir, 'stateDir', '--state-dir');
  const endpointSocket = path(overrides.endpointSocket, 'endpointSocket', '--endpoint-socket');
  // sockaddr_un.sun_path is 108 bytes with the terminating NUL.
  if (Buffer.byteLength(endpointSocket) > MAX_UNIX_PATH) {
    throw new AgentError('invalid-config', `endpointSocket: a unix socket path must be at most ${MAX_UNIX_PATH} bytes, got ${Buffer.byteLength(endpointSocket)}`, 'endpointSocket');
  }

  const httpListen = pickString(overrides.httpListen, '--http-listen') ?? r.str('httpListen') ?? DEFAULT_CONFIG.httpListen;
  const addr = parseListenAddress(httpListen);
  if (typeof addr === 'string') throw new AgentError('invalid-config', `httpListen: ${addr}`, 'httpListen');

  const logLevel = pickString(overrides.logLevel, '--log-level') ?? r.str('logLevel') ?? DEFAULT_CONFIG.logLevel;
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new AgentError('invalid-config', `logLevel: "${logLevel}" is not one of ${LOG_LEVELS.join(', ')}`, 'logLevel');
  }

  const mapSizes = { ...DEFAULT_CONFIG.mapSizes, ...r.mapSizes() };
  for (const item of overrides.mapSizes ?? []) {
    const m = /^([a-z]+)=(\d+)$/.exec(item);
    if (m === null) throw new AgentError('invalid-config', `--map-size: "${item}" is not name=entries`, 'mapSizes');
    const name = m[1] ?? '';
    if (!(MAP_NAMES as readonly string[]).includes(name)) {
      throw new AgentError('invalid-config', `--map-size: mapSizes.${name}: unknown map (known: ${MAP_NAMES.join(', ')})`, `mapSizes.${name}`);
    }
    mapSizes[name as MapName] = checkMapSize(Number(m[2]), `mapSizes.${name}`, '--map-size');
  }

  const maxEndpointId = r.int('maxEndpointId', 1, 0xffffffff) ?? DEFAULT_CONFIG.maxEndpointId;

  const syncObj = r.section('sync', ['debounceMs', 'maxDelayMs', 'endpointTimeoutMs', 'retry']);
  const sync: SyncConfig = {
    debounceMs: syncObj.int('debounceMs', 0, 60_000) ?? DEFAULT_CONFIG.sync.debounceMs,
    maxDelayMs: syncObj.int('maxDelayMs', 0, 600_000) ?? DEFAULT_CONFIG.sync.maxDelayMs,
    endpointTimeoutMs: syncObj.int('endpointTimeoutMs', 1, 600_000) ?? DEFAULT_CONFIG.sync.endpointTimeoutMs,
    retry: syncObj.backoff('retry', DEFAULT_CONFIG.sync.retry),
  };
  const watchObj = r.section('watch', ['timeoutSeconds', 'pageSize', 'backoff']);
  const watch: WatchConfig = {
    timeoutSeconds: watchObj.int('timeoutSeconds', 1, 3600) ?? DEFAULT_CONFIG.watch.timeoutSeconds,
    pageSize: watchObj.int('pageSize', 1, 100_000) ?? DEFAULT_CONFIG.watch.pageSize,
    backoff: watchObj.backoff('backoff', DEFAULT_CONFIG.watch.backoff),
  };

  const sweep = readSweep(r.section('sweep', ['intervalMs', 'graceMs', 'hostNetns', 'ipamDataDir']), src);

  const ct = r.section('conntrack', CONNTRACK_KEYS);
  const conntrack = Object.fromEntries(CONNTRACK_KEYS.map((k) => [k, ct.int(k, 0, 0xffff_ffff) ?? DEFAULT_CONFIG.conntrack[k]])) as unknown as ConntrackConfig;
  const flows = readFlows(r.section('flows', ['socket', 'capacity', 'trace', 'tcp', 'exporter']), overrides.flowsSocket, src);
  const routing = readRouting(r, src);
  const hostRouting = r.str('hostRouting') ?? DEFAULT_CONFIG.hostRouting;
  if (!(HOST_ROUTINGS as readonly string[]).includes(hostRouting)) {
    throw bad('hostRouting', `want one of ${HOST_ROUTINGS.join(', ')}, got ${JSON.stringify(hostRouting)}`, src);
  }

  const lb = readLb(r.section('lb', ['enabled', 'algorithm', 'maglevTableSize', 'hostSockets', 'healthzListen', 'healthzTimeoutMs', 'statusListen']), src);

  const base = {
    nodeName, inCluster, pinDir, stateDir, endpointSocket, httpListen, logLevel: logLevel as LogLevel, mapSizes, maxEndpointId, sync, watch, sweep,
    conntrack, flows, lb, ...(routing !== undefined ? { routing } : {}), hostRouting: hostRouting as HostRouting,
  };
  return kubeconfig === undefined ? base : { ...base, kubeconfig };
}

function readRouting(r: Reader, source: string): RoutingConfig | undefined {
  if (!r.has('routing')) return undefined;
  const s = r.section('routing', ['mode', 'device', 'vni', 'port']);
  const mode = s.str('mode');
  if (mode === undefined || !(ROUTING_MODES as readonly string[]).includes(mode)) {
    throw bad('routing.mode', `want one of ${ROUTING_MODES.join(', ')}, got ${JSON.stringify(mode)}`, source);
  }
  const device = s.str('device');
  if (device === undefined || !/^[A-Za-z0-9_.-]{1,15}$/.test(device)) throw bad('routing.device', `want an interface name, got ${JSON.stringify(device)}`, source);
  return { mode: mode as RoutingMode, device, vni: s.int('vni', 1, 0xffffff) ?? 2, port: s.int('port', 1, 65535) ?? 8472 };
}

function readLb(s: Reader, source: string): LbConfig {
  const algorithm = s.str('algorithm') ?? DEFAULT_CONFIG.lb.algorithm;
  if (!(LB_ALGORITHMS as readonly string[]).includes(algorithm)) throw bad('lb.algorithm', `want one of ${LB_ALGORITHMS.join(', ')}, got ${JSON.stringify(algorithm)}`, source);
  const size = s.num('maglevTableSize') ?? DEFAULT_CONFIG.lb.maglevTableSize;
  if (!(MAGLEV_TABLE_SIZES as readonly number[]).includes(size)) throw bad('lb.maglevTableSize', `want one of the primes ${MAGLEV_TABLE_SIZES.join(', ')}, got ${size}`, source);
  const hostSockets = s.str('hostSockets') ?? DEFAULT_CONFIG.lb.hostSockets;
  if (hostSockets !== 'auto' && hostSockets !== 'off' && !hostSockets.startsWith('/')) {
    throw bad('lb.hostSockets', `want auto, off or an absolute path, got ${JSON.stringify(hostSockets)}`, source);
  }
  const listen = (key: 'healthzListen' | 'statusListen'): string => {
    const text = s.str(key) ?? DEFAULT_CONFIG.lb[key];
    const a = text === '' ? undefined : parseListenAddress(text);
    if (typeof a === 'string') throw bad(`lb.${key}`, a, source);
    return text;
  };
  return {
    enabled: s.bool('enabled') ?? DEFAULT_CONFIG.lb.enabled, algorithm: algorithm as LbConfig['algorithm'], maglevTableSize: size, hostSockets,
    healthzListen: listen('healthzListen'), healthzTimeoutMs: s.int('healthzTimeoutMs', 1, 86_400_000) ?? DEFAULT_CONFIG.lb.healthzTimeoutMs,
    statusListen: listen('statusListen'),
  };
}

function readSweep(s: Reader, source: string): SweepConfig {
  const d = DEFAULT_CONFIG.sweep;
  const absolute = (k: 'hostNetns' | 'ipamDataDir'): string | undefined => {
    const v = s.str(k);
    if (v !== undefined && !isAbsolute(v)) throw bad(`sweep.${k}`, `must be an absolute path, got "${v}"`, source);
    return v;
  };
  const hostNetns = absolute('hostNetns');
  const sweep = {
    intervalMs: s.int('intervalMs', 0, 86_400_000) ?? d.intervalMs,
    graceMs: s.int('graceMs', 0, 86_400_000) ?? d.graceMs,
    ipamDataDir: absolute('ipamDataDir') ?? d.ipamDataDir,
  };
  return hostNetns === undefined ? sweep : { ...sweep, hostNetns };
}

function readFlows(f: Reader, socketFlag: string | undefined, source: string): FlowsConfig {
  const d = DEFAULT_CONFIG.flows;
  const socket = socketFlag ?? f.strOrEmpty('socket') ?? d.socket;
  if (socket !== '' && !isAbsolute(socket)) throw bad('flows.socket', `must be an absolute path or "", got "${socket}"`, source);
  if (Buffer.byteLength(socket) > MAX_UNIX_PATH) throw bad('flows.socket', `a unix socket path must be at most ${MAX_UNIX_PATH} bytes`, source);
  const capacity = f.int('capacity', 1, 1 << 20) ?? d.capacity;
  const trace = f.str('trace') ?? d.trace;
  if (trace !== 'off' && trace !== 'policy' && trace !== 'tcp-flags' && trace !== 'all') {
    throw bad('flows.trace', `"${trace}" is not off, policy, tcp-flags or all`, source);
  }
  const t = f.section('tcp', ['listen', 'certFile', 'keyFile', 'clientCaFile']);
  const listen = t.str('listen');
  let tcp: FlowsConfig['tcp'];
  if (listen !== undefined) {
    if (!/^[^\s]*:\d{1,5}$/.test(listen)) throw bad('flows.tcp.listen', `"${listen}" is not host:port`, source);
    const certFile = t.str('certFile');
    const keyFile = t.str('keyFile');
    if (certFile === undefined || keyFile === undefined) throw bad('flows.tcp', 'TCP is served with TLS only: set certFile and keyFile', source);
    const clientCaFile = t.str('clientCaFile');
    tcp = { listen, certFile, keyFile, ...(clientCaFile !== undefined ? { clientCaFile } : {}) };
  }
  const e = f.section('exporter', ['file', 'maxSizeMb', 'maxBackups', 'allow', 'deny']);
  const file = e.str('file');
  let exporter: ExporterConfig | undefined;
  if (file !== undefined) {
    if (!isAbsolute(file)) throw bad('flows.exporter.file', `must be an absolute path, got "${file}"`, source);
    exporter = {
      file,
      maxSizeBytes: Math.round((e.num('maxSizeMb') ?? 10) * 1024 * 1024),
      maxBackups: e.int('maxBackups', 0, 1000) ?? 5,
      allow: e.list('allow') ?? [],
      deny: e.list('deny') ?? [],
    };
    if (!(exporter.maxSizeBytes >= 1024)) throw bad('flows.exporter.maxSizeMb', 'must be at least 0.001 (1 KiB)', source);
  }
  return { socket, capacity, trace, ...(tcp !== undefined ? { tcp } : {}), ...(exporter !== undefined ? { exporter } : {}) };
}

function pickString(v: string | undefined, name: string): string | undefined {
  if (v === undefined) return undefined;
  if (v === '') throw new AgentError('invalid-config', `${name}: must not be empty`, name.replace(/^--/, ''));
  return v;
}

function checkMapSize(n: number, field: string, source: string): number {
  if (!Number.isInteger(n) || n < 1 || n > MAX_MAP_SIZE) throw bad(field, `must be an integer 1..${MAX_MAP_SIZE}, got ${n}`, source);
  return n;
}

/** Typed reads from one level of the config file; errors carry the dotted key. */
class Reader {
  constructor(
    private readonly obj: Obj,
    private readonly source: string,
    private readonly prefix = '',
  ) {}

  private key(k: string): string {
    return this.prefix === '' ? k : `${this.prefix}.${k}`;
  }

  has(k: string): boolean {
    return this.obj[k] !== undefined && this.obj[k] !== null;
  }

  str(k: string): string | undefined {
    const v = this.obj[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v === '') throw bad(this.key(k), `must be a non-empty string, got ${JSON.stringify(v)}`, this.source);
    return v;
  }

  /** A string that may be empty (a setting that turns something off with ""). */
  strOrEmpty(k: string): string | undefined {
    const v = this.obj[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw bad(this.key(k), `must be a string, got ${JSON.stringify(v)}`, this.source);
    return v;
  }

  list(k: string): unknown[] | undefined {
    const v = this.obj[k];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) throw bad(this.key(k), 'must be a list', this.source);
    return v as unknown[];
  }

  bool(k: string): boolean | undefined {
    const v = this.obj[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw bad(this.key(k), `must be true or false, got ${JSON.stringify(v)}`, this.source);
    return v;
  }

  num(k: string): number | undefined {
    const v = this.obj[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(this.key(k), `must be a number, got ${JSON.stringify(v)}`, this.source);
    return v;
  }

  int(k: string, min: number, max: number): number | undefined {
    const v = this.num(k);
    if (v === undefined) return undefined;
    if (!Number.isInteger(v) || v < min || v > max) throw bad(this.key(k), `must be an integer ${min}..${max}, got ${v}`, this.source);
    return v;
  }

  section(k: string, keys: readonly string[]): Reader {
    const v = this.obj[k];
    if (v === undefined || v === null) return new Reader({}, this.source, this.key(k));
    if (!isObj(v)) throw bad(this.key(k), 'must be a mapping', this.source);
    for (const sub of Object.keys(v)) {
      if (!keys.includes(sub)) throw bad(`${this.key(k)}.${sub}`, `unknown setting (known: ${keys.join(', ')})`, this.source);
    }
    return new Reader(v, this.source, this.key(k));
  }

  mapSizes(): Partial<Record<MapName, number>> {
    const s = this.section('mapSizes', MAP_NAMES);
    const out: Partial<Record<MapName, number>> = {};
    for (const name of MAP_NAMES) {
      const n = s.num(name);
      if (n !== undefined) out[name] = checkMapSize(n, `mapSizes.${name}`, this.source);
    }
    return out;
  }

  backoff(k: string, defaults: BackoffPolicy): BackoffPolicy {
    const s = this.section(k, BACKOFF_KEYS);
    const p: BackoffPolicy = {
      initialMs: s.num('initialMs') ?? defaults.initialMs,
      maxMs: s.num('maxMs') ?? defaults.maxMs,
      factor: s.num('factor') ?? defaults.factor,
      jitter: s.num('jitter') ?? defaults.jitter,
    };
    const problem = checkBackoffPolicy(p, this.key(k));
    if (problem !== undefined) throw bad(problem.field, problem.message, this.source);
    return p;
  }
}
