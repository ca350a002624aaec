/**
 * The agent's side of the sluice-cni front end (native/cni-shim): one CNI
 * invocation the shim forwarded — its CNI_* environment, its stdin and the
 * identity of its network and mount namespaces — run through the same
 * plugin code as the Node binary (plugin.ts), inside the warm agent. The
 * plugin reaches the agent through the EndpointPort the agent hands in (its
 * endpoint service, called directly), not through the agent's own socket.
 *
 * The answer is either the plugin's outcome (stdout, stderr, exit code, to
 * be written back verbatim) or a fallback, decided before any work starts
 * (CniFallbackReason in src/endpoint/contract.ts):
 *   not-here  the shim runs in another network namespace (host veths would be
 *             the wrong node's), or in another mount namespace where a path
 *             the plugin touches leads elsewhere than for the agent (below)
 *   not-mine  the config names another agent socket, or cannot be read (the
 *             Node plugin reports that itself)
 *   not-in-process  VERSION, or a request without a CNI command
 * On a fallback the shim execs the Node plugin, so the two never both run.
 *
 * Another mount namespace: on a lab node the shim and the agent share both
 * namespaces and the invocation runs at once. On a cluster node the agent is a
 * DaemonSet pod on the host network with a mount namespace of its own, and
 * the runtime execs the shim in the node's; the node has no Node.js for the
 * fallback. The plugin's only mount-namespace dependence is the paths it
 * opens — the pod's netns (CNI_NETNS), the agent socket, the pin root, the
 * IPAM data dir, a configured bpfObject — and the chart mounts each from the
 * host at the same path. So the shim sends, with its namespaces, the
 * identity (st_dev:st_ino) of every absolute path in its environment's
 * CNI_NETNS and its config plus the plugin's default paths, and the agent
 * runs the invocation when each path the plugin will touch has the same
 * identity here (path-identity.ts). Any path that differs or was not sent —
 * a netns under /proc/<pid>/ of another pid namespace, a dir the chart does
 * not mount, a mount that did not propagate — is not-here.
 *
 * Concurrency: invocations interleave on the event loop. Everything the
 * plugin shares with other invocations — in this process or Node plugin
 * processes at the same time — is guarded by file-system atomicity
 * (IPAM: symlink(2) EEXIST; pinned programs: rename), never by a lock held
 * across an await; rtnetlink requests run on addon threads of their own.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { CniExecAnswer, CniExecStats, CniFallbackReason, EndpointPort } from '../endpoint/contract.js';
import { decodeConfig, DEFAULT_AGENT_SOCKET, parseConfig } from './config.js';
import { pathDiffers, statIdentity, type StatIdentity } from './path-identity.js';
import { invoke } from './plugin.js';

export interface NamespaceIds {
  readonly net: string;
  readonly mnt: string;
}

const RUN_IN_PROCESS = new Set(['ADD', 'DEL', 'CHECK', 'STATUS', 'GC']);

/** "st_dev:st_ino" of /proc/self/ns/{net,mnt}: the shim sends the same of itself. */
export function ownNamespaces(): NamespaceIds {
  const id = (kind: string): string => {
    const st = statSync(`/proc/self/ns/${kind}`, { bigint: true });
    return `${st.dev}:${st.ino}`;
  };
  return { net: id('net'), mnt: id('mnt') };
}

export interface InProcessCniOptions {
  /** The endpoint socket this agent serves: a config naming another one is not this agent's. */
  readonly socketPath: string;
  /** The agent's endpoint service: the plugin's calls to the agent. */
  readonly endpoints: EndpointPort;
  /** The agent's own namespaces; default: read once from /proc. */
  readonly namespaces?: NamespaceIds;
  /** A path's identity in the agent's mount namespace; default: stat(2). */
  readonly statIdentity?: StatIdentity;
}

export class InProcessCni {
  private done = 0;
  private readonly fallbacks: Record<CniFallbackReason, number> = { 'not-here': 0, 'not-mine': 0, 'not-in-process': 0 };
  private readonly socket: string;
  private readonly namespaces: NamespaceIds;
  private readonly endpoints: EndpointPort;
  private readonly stat: StatIdentity;

  constructor(options: InProcessCniOptions) {
    this.socket = resolve(options.socketPath);
    this.namespaces = options.namespaces ?? ownNamespaces();
    this.endpoints = options.endpoints;
    this.stat = options.statIdentity ?? statIdentity;
  }

  stats(): CniExecStats {
    return { done: this.done, fallback: { ...this.fallbacks } };
  }

  /** One forwarded invocation (the request body, unvalidated). */
  async exec(body: unknown): Promise<CniExecAnswer> {
    const req = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const env = stringRecord(req['env']);
    const ns = stringRecord(req['namespaces']);
    const stdin = req['stdin'];
    if (env === undefined || ns === undefined || typeof stdin !== 'string') return this.fallback('not-in-process', 'request needs env, stdin and namespaces');
    if (!RUN_IN_PROCESS.has(env['CNI_COMMAND'] ?? '')) return this.fallback('not-in-process', `CNI_COMMAND ${JSON.stringify(env['CNI_COMMAND'] ?? '')}`);
    if (ns['net'] !== this.namespaces.net) {
      return this.fallback('not-here', `shim netns ${ns['net'] ?? '?'}, agent netns ${this.namespaces.net}`);
    }
    if (ns['mnt'] !== this.namespaces.mnt) {
      const differs = this.pathDiffers(env, stdin, stringRecord(req['paths']) ?? {});
      if (differs !== undefined) return this.fallback('not-here', `shim mount namespace ${ns['mnt'] ?? '?'}, agent ${this.namespaces.mnt}: ${differs}`);
    }
    const socket = configuredSocket(stdin);
    if (socket !== this.socket) return this.fallback('not-mine', `config agentSocket ${socket ?? '(unreadable)'}, this agent serves ${this.socket}`);
    // Only CNI_* reaches the plugin: no test hook or timing switch of the shim's caller applies here.
    const cniEnv = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('CNI_')));
    const outcome = await invoke(cniEnv, stdin, () => this.endpoints);
    this.done++;
    return { kind: 'done', outcome };
  }

  /** The first path the plugin will touch that may lead elsewhere for the agent than for the shim. */
  private pathDiffers(env: Record<string, string>, stdin: string, shimPaths: Record<string, string>): string | undefined {
    for (const path of touchedPaths(env, stdin)) {
      const differs = pathDiffers(path, shimPaths[path], this.stat);
      if (differs !== undefined) return differs;
    }
    return undefined;
  }

  private fallback(reason: CniFallbackReason, detail: string): CniExecAnswer {
    this.fallbacks[reason]++;
    return { kind: 'fallback', reason, detail };
  }
}

/**
 * The paths an invocation opens: CNI_NETNS, and the config's agent socket, pin
 * root, IPAM data dir and bpfObject. A config the plugin refuses touches none
 * (invoke reports it before any work).
 */
function touchedPaths(env: Record<string, string>, stdin: string): string[] {
  const paths = env['CNI_NETNS'] ? [env['CNI_NETNS']] : [];
  try {
    const conf = parseConfig(decodeConfig(stdin));
    paths.push(conf.agentSocket, conf.pinRoot, conf.ipam.dataDir, ...(conf.bpfObject !== undefined ? [conf.bpfObject] : []));
  } catch {
    // refused by the plugin before it touches anything
  }
  return paths;
}

/** The config's agentSocket, resolved (default when absent); undefined when the config cannot say. */
function configuredSocket(stdin: string): string | undefined {
  let conf: unknown;
  try {
    conf = JSON.parse(stdin);
  } catch {
    return undefined;
  }
  if (typeof conf !== 'object' || conf === null || Array.isArray(conf)) return undefined;
  const s = (conf as Record<string, unknown>)['agentSocket'] ?? DEFAULT_AGENT_SOCKET;
  return typeof s === 'string' && s.startsWith('/') ? resolve(s) : undefined;
}

function stringRecord(v: unknown): Record<string, string> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') return undefined;
    out[k] = x;
  }
  return out;
}
