/**
 * IP allocation from the node's pod CIDRs, one address per family per
 * attachment, persisted as one symlink per address:
 *
 *   <dataDir>/<network>/10.1.0.7 -> "containerId/ifname"
 *   <dataDir>/<network>/last.4      the last address handed out (a hint)
 *
 * symlink(2) creates the name and its content in one step and fails with
 * EEXIST when the name is taken, like open(O_CREAT|O_EXCL) but with no window
 * in which the file exists without its owner. So concurrent ADDs (separate
 * processes, no lock) never get one address twice, and a process killed at
 * any instant leaves either no link or a complete one naming its attachment,
 * which that attachment's DEL (or GC) releases. Allocation moves forward from
 * the last address handed out, so a freed address is not reused at once
 * (another node may still cache the old pod's identity for it).
 *
 * The network and broadcast addresses of an IPv4 CIDR are never handed out.
 */
import { mkdirSync, readdirSync, readlinkSync, renameSync, symlinkSync, unlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatCidr, formatIp, parseIp, type Cidr, type IpAddress } from '../policy/cidr.js';
import type { Attachment } from './config.js';
import { errnoCode } from '../common/errors.js';
import { CniCode, CniError } from './errors.js';

export interface Allocation {
  readonly ip: string;
  readonly family: 4 | 6;
  readonly owner: string;
}

export function ownerOf(a: Attachment): string {
  return `${a.containerId}/${a.ifname}`;
}

export function parseOwner(owner: string): Attachment | undefined {
  const slash = owner.indexOf('/');
  if (slash <= 0 || slash === owner.length - 1) return undefined;
  return { containerId: owner.slice(0, slash), ifname: owner.slice(slash + 1) };
}

export class IpamStore {
  constructor(readonly dir: string) {}

  static forNetwork(dataDir: string, network: string): IpamStore {
    return new IpamStore(join(dataDir, network));
  }

  /** Every allocation on disk. */
  list(): Allocation[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return [];
      throw ioError(`cannot read the IPAM directory ${this.dir}`, e);
    }
    const out: Allocation[] = [];
    for (const name of names) {
      const ip = parseIp(name);
      if (typeof ip === 'string' || formatIp(ip) !== name) continue;
      let owner: string;
      try {
        owner = readlinkSync(join(this.dir, name));
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') continue; // released meanwhile
        throw ioError(`cannot read the allocation ${join(this.dir, name)}`, e);
      }
      out.push({ ip: name, family: ip.family, owner });
    }
    return out;
  }

  /** The attachment's addresses: existing ones kept (a rerun ADD), one new per CIDR family it lacks. */
  allocate(a: Attachment, cidrs: readonly Cidr[]): Allocation[] {
    this.ensureDir();
    const owner = ownerOf(a);
    const all = this.list();
    const mine = all.filter((x) => x.owner === owner);
    const used = new Set(all.map((x) => x.ip));
    const out: Allocation[] = [];
    for (const cidr of cidrs) {
      const have = mine.find((x) => x.family === cidr.family && inCidr(x.ip, cidr));
      out.push(have ?? this.take(owner, cidr, used));
    }
    return out;
  }

  /** Removes every address of the attachment; returns them. Idempotent. */
  release(a: Attachment): string[] {
    const owner = ownerOf(a);
    const freed: string[] = [];
    for (const x of this.list()) {
      if (x.owner !== owner) continue;
      try {
        unlinkSync(join(this.dir, x.ip));
        freed.push(x.ip);
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw ioError(`cannot release ${x.ip} (${join(this.dir, x.ip)})`, e);
      }
    }
    return freed;
  }

  /**
   * Releases one address if its link still names the attachment (false:
   * gone already, or another owner's). For a releaser that knows the address
   * from elsewhere (the agent's sweep knows it from the registration) and
   * must prove it is still the attachment's before freeing it. Between the
   * readlink and the unlink only this attachment's own release (DEL, GC)
   * could free the name, and a new ADD could take it only after the cursor
   * came all the way round the pod CIDR.
   */
  releaseAddress(ip: string, a: Attachment): boolean {
    const path = join(this.dir, ip);
    let owner: string;
    try {
      owner = readlinkSync(path);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return false;
      throw ioError(`cannot read the allocation ${path}`, e);
    }
    if (owner !== ownerOf(a)) return false;
    try {
      unlinkSync(path);
      return true;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return false;
      throw ioError(`cannot release ${ip} (${path})`, e);
    }
  }

  private take(owner: string, cidr: Cidr, used: Set<string>): Allocation {
    const { first, count } = hostRange(cidr);
    const last = this.readCursor(cidr);
    let offset = last !== undefined && last >= first && last < first + BigInt(count) ? last - first + 1n : 0n;
    for (let tried = 0; tried < count; tried++, offset++) {
      if (offset >= BigInt(count)) offset = 0n;
      const ip = formatIp({ family: cidr.family, value: first + offset });
      if (used.has(ip)) continue;
      try {
        symlinkSync(owner, join(this.dir, ip));
      } catch (e) {
        if (errnoCode(e) === 'EEXIST') continue; // a concurrent ADD took it
        throw ioError(`cannot record the allocation of ${ip} in ${this.dir}`, e);
      }
      this.writeCursor(cidr, ip);
      return { ip, family: cidr.family, owner };
    }
    throw new CniError(CniCode.ADDRESSES_EXHAUSTED,
      `no free address in pod CIDR ${formatCidr(cidr)} (${count} addresses, all allocated in ${this.dir}); ` +
      'free stale ones with a CNI GC from the runtime, or give the node a larger podCIDR');
  }

  private readCursor(cidr: Cidr): bigint | undefined {
    try {
      const ip = parseIp(readFileSync(join(this.dir, `last.${cidr.family}`), 'utf8').trim());
      return typeof ip === 'string' || ip.family !== cidr.family ? undefined : ip.value;
    } catch {
      return undefined; // only a hint
    }
  }

  private writeCursor(cidr: Cidr, ip: string): void {
    const tmp = join(this.dir, `.last.${cidr.family}.${process.pid}`);
    try {
      writeFileSync(tmp, `${ip}\n`);
      renameSync(tmp, join(this.dir, `last.${cidr.family}`));
    } catch {
      // A hint: losing it only means the next scan starts at the beginning.
    }
  }

  private ensureDir(): void {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw ioError(`cannot create the IPAM directory ${this.dir}`, e);
    }
  }
}

/** Addresses a pod may get: IPv4 without network and broadcast; IPv6 without the subnet-router anycast. */
function hostRange(cidr: Cidr): { first: bigint; count: number } {
  const bits = cidr.family === 4 ? 32 : 128;
  const size = 1n << BigInt(bits - cidr.prefixlen);
  const usable = cidr.family === 4 ? size - 2n : size - 1n;
  // Scans are bounded: a /16 has 65,534; IPv6 ranges are capped at 2^20 candidates.
  return { first: cidr.base + 1n, count: Number(usable > 1n << 20n ? 1n << 20n : usable) };
}

function inCidr(ip: string, cidr: Cidr): boolean {
  const p = parseIp(ip) as IpAddress;
  const bits = cidr.family === 4 ? 32 : 128;
  return p.family === cidr.family && p.value >> BigInt(bits - cidr.prefixlen) === cidr.base >> BigInt(bits - cidr.prefixlen);
}

function ioError(what: string, e: unknown): CniError {
  return new CniError(CniCode.IO, `${what}: ${(e as Error).message}`);
}
