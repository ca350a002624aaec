/**
 * Network-namespace operations through iproute2 and sysctl. Named namespaces
 * (`ip netns add`) are bind mounts under /run/netns, so they outlive this
 * process and any later process can find them by name.
 */
import { CommandError, type Runner } from './command.js';

export class NetnsOps {
  constructor(private readonly run: Runner) {}

  /** Names of all named network namespaces. */
  async list(): Promise<string[]> {
    const { stdout } = await this.run('ip', ['netns', 'list']);
    // Lines look like "name (id: 3)" or just "name".
    return stdout
      .split('\n')
      .map((line) => line.trim().split(/\s+/)[0] ?? '')
      .filter((n) => n !== '');
  }

  async exists(name: string): Promise<boolean> {
    return (await this.list()).includes(name);
  }

  /** Fails (CommandError "File exists") when the namespace is there already. */
  async add(name: string): Promise<void> {
    await this.run('ip', ['netns', 'add', name]);
  }

  /** Idempotent: a namespace that is already gone is not an error. */
  async delete(name: string): Promise<void> {
    try {
      await this.run('ip', ['netns', 'delete', name]);
    } catch (e) {
      if (e instanceof CommandError && /No such file|not found|does not exist/i.test(e.stderr)) return;
      throw e;
    }
  }

  /** `ip -n <ns> <args...>`: an iproute2 command inside the namespace. */
  async ip(ns: string, args: readonly string[]): Promise<string> {
    return (await this.run('ip', ['-n', ns, ...args])).stdout;
  }

  /** Writes one sysctl inside the namespace (/proc/sys/net is per netns). */
  async sysctl(ns: string, key: string, value: string | number): Promise<void> {
    await this.run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `${key}=${value}`]);
  }

  /** Reads one sysctl inside the namespace. */
  async readSysctl(ns: string, key: string): Promise<string> {
    return (await this.run('ip', ['netns', 'exec', ns, 'sysctl', '-n', key])).stdout.trim();
  }

  /** Names of the links in the namespace (ip -j link). */
  async links(ns: string): Promise<LinkInfo[]> {
    const out = await this.ip(ns, ['-j', 'link', 'show']);
    const parsed: unknown = JSON.parse(out || '[]');
    if (!Array.isArray(parsed)) throw new Error(`ip -n ${ns} -j link show: expected a JSON array`);
    return parsed.map((l: unknown): LinkInfo => {
      const o = l as Record<string, unknown>;
      return {
        ifname: String(o['ifname']),
        ifindex: Number(o['ifindex']),
        up: Array.isArray(o['flags']) && o['flags'].includes('UP'),
        address: typeof o['address'] === 'string' ? o['address'] : '',
      };
    });
  }
}

export interface LinkInfo {
  readonly ifname: string;
  readonly ifindex: number;
  readonly up: boolean;
  readonly address: string;
}

/** The path other tools (tc attach, nsenter) use to enter a named namespace. */
export function netnsPath(name: string): string {
  return `/var/run/netns/${name}`;
}
