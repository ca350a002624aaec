/**
 * The lab as a container runtime towards sluice-cni: it installs the plugin
 * with the plugin's own installer (bin entry "sluice-cni install"), then
 * execs the installed binary as libcni does — CNI_* environment, the
 * conflist's plugin config (with the list's name and cniVersion) on stdin,
 * the result or error object on stdout — inside the node namespace, where a
 * runtime on a node would run it.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runWithInput } from '../command.js';
import { LabError } from '../errors.js';
import { netnsPath } from '../netns.js';
import { binEntry } from './bin-entries.js';

export interface CniRuntimeConfig {
  /** Where the plugin and its conflist go (bin/, net.d/). */
  readonly dir: string;
  /** Network name, also the IPAM subdirectory. */
  readonly network: string;
  readonly agentSocket: string;
  readonly pinRoot: string;
  readonly ipamDir: string;
  /** The namespace the plugin runs in (the lab's node netns). */
  readonly nodeNetns: string;
}

export interface Attachment {
  readonly containerId: string;
  /** Name of the pod's network namespace (/var/run/netns/<name>). */
  readonly netns: string;
  readonly podNamespace: string;
  readonly podName: string;
}

/** What ADD reported that the lab needs. */
export interface AddResult {
  readonly ipv4: string;
  readonly hostIfname: string;
  readonly hostMac: string;
  readonly podMac: string;
  readonly ms: number;
}

/** A CNI error object (or a plugin that printed none), as data. */
export class CniCallError extends LabError {
  constructor(
    readonly command: string,
    /** The CNI error code from the plugin's error object (undefined: it printed none). */
    readonly cniCode: number | undefined,
    message: string,
  ) {
    super('setup-failed', `sluice-cni ${command}: ${message}`, 'cni');
  }
}

export const POD_IFNAME = 'eth0';

export class CniRuntime {
  readonly binDir: string;
  readonly confDir: string;

  constructor(private readonly config: CniRuntimeConfig) {
    this.binDir = join(config.dir, 'bin');
    this.confDir = join(config.dir, 'net.d');
  }

  /** `sluice-cni install` into the lab's dirs. */
  async install(): Promise<void> {
    const c = this.config;
    await run(process.execPath, [
      binEntry('sluice-cni'), 'install', '--bin-dir', this.binDir, '--conf-dir', this.confDir, '--name', c.network,
      '--agent-socket', c.agentSocket, '--pin-root', c.pinRoot, '--ipam-dir', c.ipamDir,
    ]);
  }

  async add(a: Attachment): Promise<AddResult> {
    const { json, ms } = await this.call('ADD', a);
    const ip = (json['ips'] as { address?: unknown }[] | undefined)?.find((i) => typeof i.address === 'string' && i.address.includes('.'));
    const ifaces = (json['interfaces'] as { name?: unknown; mac?: unknown; sandbox?: unknown }[] | undefined) ?? [];
    const host = ifaces.find((i) => i.sandbox === undefined);
    const pod = ifaces.find((i) => i.sandbox !== undefined);
    if (typeof ip?.address !== 'string' || typeof host?.name !== 'string') {
      throw new CniCallError('ADD', undefined, `result without an IPv4 address or host interface: ${JSON.stringify(json)}`);
    }
    const mac = (v: unknown): string => (typeof v === 'string' ? v : '');
    return { ipv4: ip.address.split('/')[0] ?? '', hostIfname: host.name, hostMac: mac(host.mac), podMac: mac(pod?.mac), ms };
  }

  /** Idempotent, as the spec demands of the plugin. */
  async del(a: Attachment): Promise<void> {
    await this.call('DEL', a);
  }

  /** The first plugin of the installed conflist, as a runtime hands it over. */
  pluginConfig(): Record<string, unknown> {
    const path = conflistPath(this.confDir, this.config.network);
    const list = JSON.parse(readFileSync(path, 'utf8')) as { cniVersion: string; name: string; plugins: Record<string, unknown>[] };
    const first = list.plugins[0];
    if (first === undefined) throw new LabError('setup-failed', `${path}: no plugins`, 'cni');
    return { cniVersion: list.cniVersion, name: list.name, ...first };
  }

  private async call(command: 'ADD' | 'DEL', a: Attachment): Promise<{ json: Record<string, unknown>; ms: number }> {
    const env: Record<string, string> = {
      PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: a.containerId,
      CNI_NETNS: netnsPath(a.netns),
      CNI_IFNAME: POD_IFNAME,
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${a.podNamespace};K8S_POD_NAME=${a.podName};K8S_POD_INFRA_CONTAINER_ID=${a.containerId}`,
      CNI_PATH: this.binDir,
    };
    const t0 = performance.now();
    const r = await runWithInput(
      'nsenter',
      [`--net=${netnsPath(this.config.nodeNetns)}`, join(this.binDir, 'sluice-cni')],
      env,
      JSON.stringify(this.pluginConfig()),
    );
    const ms = performance.now() - t0;
    let json: Record<string, unknown> = {};
    try {
      json = r.stdout.trim() === '' ? {} : (JSON.parse(r.stdout) as Record<string, unknown>);
    } catch {
      // reported below with the raw output
    }
    if (r.exitCode !== 0) {
      const code = typeof json['code'] === 'number' ? json['code'] : undefined;
      const msg = typeof json['msg'] === 'string' ? json['msg'] : r.stderr.trim() || r.stdout.trim() || `exit ${String(r.exitCode)}`;
      const what = code === undefined ? `exit ${String(r.exitCode)}, no error object` : `code ${code}`;
      throw new CniCallError(command, code, `pod ${a.podNamespace}/${a.podName}: ${what}: ${msg}`);
    }
    return { json, ms };
  }
}

function conflistPath(confDir: string, network: string): string {
  // The installer's name: <priority>-<name>.conflist, priority 05 by default.
  return join(confDir, `05-${network}.conflist`);
}

function run(file: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, [...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new LabError('setup-failed', `${[file, ...args].join(' ')}: ${stderr.trim() || err.message}`, 'cni'));
      else resolve(stdout);
    });
  });
}

