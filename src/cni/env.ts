/**
 * The CNI_* environment, read and checked per command as the spec requires:
 *
 *   ADD, CHECK  CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME
 *   DEL         CNI_COMMAND, CNI_CONTAINERID, CNI_IFNAME (CNI_NETNS optional)
 *   GC          CNI_COMMAND, CNI_PATH
 *   STATUS, VERSION  CNI_COMMAND
 *
 * CNI_ARGS ("K=V;K2=V2") carries the pod's namespace and name from the
 * kubelet. Unknown keys are refused (code 2) unless IgnoreUnknown is set, as
 * every runtime that adds keys of its own does. Every error names the
 * variable, so whoever wired the runtime can fix it in one round.
 */
import { checkContainerId, checkIfname } from '../endpoint/contract.js';
import { checkDnsLabel, checkDnsSubdomain } from '../policy/names.js';
import { CniCode, CniError } from './errors.js';
import { CRASH_ENV } from './hooks.js';

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'] as const;
export type CniCommand = (typeof COMMANDS)[number];

/** CNI_ARGS keys we read, and those runtimes send that we accept and ignore. */
const KNOWN_ARGS = ['IgnoreUnknown', 'K8S_POD_NAMESPACE', 'K8S_POD_NAME', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID'] as const;

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
}

export interface CniEnv {
  readonly command: CniCommand;
  /** ADD, DEL, CHECK. */
  readonly containerId: string;
  /** ADD, CHECK; DEL when the runtime still has it ('' otherwise). */
  readonly netns: string;
  readonly ifname: string;
  /** CNI_ARGS, parsed. */
  readonly args: ReadonlyMap<string, string>;
  /** K8S_POD_NAMESPACE/K8S_POD_NAME when both are there. */
  readonly pod: PodRef | undefined;
  readonly path: readonly string[];
  /** SLUICE_CNI_TEST_CRASH_AT (hooks.ts): a test hook, only ever set for the Node plugin process. */
  readonly crashAt: string | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

export function readCommand(env: Env): CniCommand {
  const raw = env['CNI_COMMAND'];
  if (raw === undefined || raw === '') throw new CniError(CniCode.INVALID_ENV, 'CNI_COMMAND is not set (want one of ADD, DEL, CHECK, STATUS, GC, VERSION)');
  if (!(COMMANDS as readonly string[]).includes(raw)) {
    throw new CniError(CniCode.INVALID_ENV, `CNI_COMMAND="${raw}" is not a CNI command (want one of ${COMMANDS.join(', ')})`);
  }
  return raw as CniCommand;
}

const REQUIRED: Record<CniCommand, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  GC: ['CNI_PATH'],
  STATUS: [],
  VERSION: [],
};

export function readEnv(env: Env): CniEnv {
  const command = readCommand(env);
  const missing = REQUIRED[command].filter((k) => (env[k] ?? '') === '');
  if (missing.length > 0) {
    throw new CniError(CniCode.INVALID_ENV, `${command} needs ${missing.join(', ')}; not set: ${missing.join(', ')}`);
  }
  const containerId = env['CNI_CONTAINERID'] ?? '';
  const ifname = env['CNI_IFNAME'] ?? '';
  const netns = env['CNI_NETNS'] ?? '';
  if (REQUIRED[command].includes('CNI_CONTAINERID')) {
    const why = checkContainerId(containerId);
    if (why !== undefined) throw new CniError(CniCode.INVALID_ENV, `CNI_CONTAINERID: ${why}`);
  }
  if (REQUIRED[command].includes('CNI_IFNAME')) {
    const why = checkIfname(ifname);
    if (why !== undefined) throw new CniError(CniCode.INVALID_ENV, `CNI_IFNAME: ${why}`);
  }
  if (netns !== '' && !netns.startsWith('/')) {
    throw new CniError(CniCode.INVALID_ENV, `CNI_NETNS="${netns}" must be an absolute path to a network namespace (e.g. /var/run/netns/NAME or /proc/PID/ns/net)`);
  }
  const args = parseArgs(env['CNI_ARGS'] ?? '');
  return {
    command,
    containerId,
    netns,
    ifname,
    args,
    pod: podRef(args),
    path: (env['CNI_PATH'] ?? '').split(':').filter((p) => p !== ''),
    crashAt: env[CRASH_ENV],
  };
}

/** "K=V;K2=V2" → map; code 4 for a malformed pair, code 2 for an unknown key without IgnoreUnknown. */
export function parseArgs(text: string): Map<string, string> {
  const out = new Map<string, string>();
  if (text === '') return out;
  for (const pair of text.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(CniCode.INVALID_ENV, `CNI_ARGS: "${pair}" is not KEY=VALUE (pairs are separated by ';')`);
    out.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  const ignore = out.get('IgnoreUnknown');
  const ignoreUnknown = ignore !== undefined && /^(1|true)$/i.test(ignore);
  if (!ignoreUnknown) {
    for (const [k, v] of out) {
      if (!(KNOWN_ARGS as readonly string[]).includes(k)) {
        throw new CniError(CniCode.UNSUPPORTED_FIELD,
          `CNI_ARGS: unsupported key ${k}=${v} (known: ${KNOWN_ARGS.join(', ')}; add IgnoreUnknown=1 to pass others)`);
      }
    }
  }
  return out;
}

function podRef(args: ReadonlyMap<string, string>): PodRef | undefined {
  const namespace = args.get('K8S_POD_NAMESPACE');
  const name = args.get('K8S_POD_NAME');
  if (namespace === undefined && name === undefined) return undefined;
  if (namespace === undefined || name === undefined) {
    throw new CniError(CniCode.INVALID_ENV, `CNI_ARGS has ${namespace === undefined ? 'K8S_POD_NAME but not K8S_POD_NAMESPACE' : 'K8S_POD_NAMESPACE but not K8S_POD_NAME'}; the kubelet passes both`);
  }
  const nsWhy = checkDnsLabel(namespace);
  if (nsWhy !== undefined) throw new CniError(CniCode.INVALID_ENV, `CNI_ARGS K8S_POD_NAMESPACE="${namespace}": ${nsWhy}`);
  const nameWhy = checkDnsSubdomain(name);
  if (nameWhy !== undefined) throw new CniError(CniCode.INVALID_ENV, `CNI_ARGS K8S_POD_NAME="${name}": ${nameWhy}`);
  return { namespace, name };
}

/** ADD needs the pod: the agent keys policy by it. */
export function requirePod(env: CniEnv): PodRef {
  if (env.pod === undefined) {
    throw new CniError(CniCode.INVALID_ENV,
      'CNI_ARGS must carry K8S_POD_NAMESPACE and K8S_POD_NAME (the kubelet sends them; by hand: CNI_ARGS="K8S_POD_NAMESPACE=default;K8S_POD_NAME=web")');
  }
  return env.pod;
}
