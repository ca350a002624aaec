/**
 * The CNI result: one internal model (the 1.1.0 shape, a superset of the
 * others), parsed from a prevResult in the config's version and printed in
 * the config's version:
 *
 *   1.1.0        interfaces {name, mac, mtu, sandbox, socketPath, pciID};
 *                routes {dst, gw, mtu, advmss, priority, table, scope}
 *   1.0.0        interfaces {name, mac, sandbox}; routes {dst, gw}
 *   0.3.x, 0.4.0 as 1.0.0, and every ip carries "version": "4" | "6"
 *
 * Parsing is strict about what it reads (a prevResult we cannot understand
 * is an invalid config, code 7, naming the field) and keeps fields it does
 * not use, so a chained plugin's result survives our ADD unchanged.
 */
import { parseCidr, parseIp } from '../policy/cidr.js';
import { CniCode, CniError } from './errors.js';
import { atLeast, type CniVersion } from './version.js';

export interface CniInterface {
  readonly name: string;
  readonly mac?: string;
  readonly mtu?: number;
  /** The netns path for a container interface; absent for a host interface. */
  readonly sandbox?: string;
  readonly socketPath?: string;
  readonly pciID?: string;
}

export interface CniIpConfig {
  /** CIDR: the address and the prefix length it has on the interface. */
  readonly address: string;
  readonly gateway?: string;
  /** Index into interfaces. */
  readonly interface?: number;
}

export interface CniRoute {
  readonly dst: string;
  readonly gw?: string;
  readonly mtu?: number;
  readonly advmss?: number;
  readonly priority?: number;
  readonly table?: number;
  readonly scope?: number;
}

export interface CniDns {
  readonly nameservers?: readonly string[];
  readonly domain?: string;
  readonly search?: readonly string[];
  readonly options?: readonly string[];
}

export interface CniResult {
  readonly interfaces: readonly CniInterface[];
  readonly ips: readonly CniIpConfig[];
  readonly routes: readonly CniRoute[];
  readonly dns: CniDns;
}

export const EMPTY_RESULT: CniResult = { interfaces: [], ips: [], routes: [], dns: {} };

/** The result as the given spec version prints it. */
export function encodeResult(r: CniResult, version: CniVersion): Record<string, unknown> {
  const v11 = atLeast(version, '1.1.0');
  const v10 = atLeast(version, '1.0.0');
  const interfaces = r.interfaces.map((i) => compact({
    name: i.name,
    mac: i.mac,
    mtu: v11 ? i.mtu : undefined,
    sandbox: i.sandbox,
    socketPath: v11 ? i.socketPath : undefined,
    pciID: v11 ? i.pciID : undefined,
  }));
  const ips = r.ips.map((ip) => compact({
    version: v10 ? undefined : familyOf(ip.address),
    address: ip.address,
    gateway: ip.gateway,
    interface: ip.interface,
  }));
  const routes = r.routes.map((rt) => compact(v11
    ? { dst: rt.dst, gw: rt.gw, mtu: rt.mtu, advmss: rt.advmss, priority: rt.priority, table: rt.table, scope: rt.scope }
    : { dst: rt.dst, gw: rt.gw }));
  return { cniVersion: version, interfaces, ips, routes, dns: compact({ ...r.dns }) };
}

/** Reads a prevResult written in `version`; error 7 naming the field when it is not a result. */
export function parseResult(raw: unknown, version: CniVersion, where = 'prevResult'): CniResult {
  const obj = asObject(raw, where);
  const interfaces = optionalArray(obj['interfaces'], `${where}.interfaces`).map((v, i) => parseInterface(v, `${where}.interfaces[${i}]`));
  const ips = optionalArray(obj['ips'], `${where}.ips`).map((v, i) => parseIpConfig(v, `${where}.ips[${i}]`, version, interfaces.length));
  const routes = optionalArray(obj['routes'], `${where}.routes`).map((v, i) => parseRoute(v, `${where}.routes[${i}]`));
  const dns = obj['dns'] === undefined || obj['dns'] === null ? {} : parseDns(obj['dns'], `${where}.dns`);
  return { interfaces, ips, routes, dns };
}

export function parseDns(raw: unknown, where: string): CniDns {
  const o = asObject(raw, where);
  const out: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] } = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === 'domain') out.domain = str(v, `${where}.domain`);
    else if (k === 'nameservers' || k === 'search' || k === 'options') out[k] = strings(v, `${where}.${k}`);
    else throw new CniError(CniCode.UNSUPPORTED_FIELD, `${where}.${k}: unsupported field (value ${JSON.stringify(v)}); known: nameservers, domain, search, options`);
  }
  for (const ns of out.nameservers ?? []) {
    if (typeof parseIp(ns) === 'string') invalid(`${where}.nameservers`, `"${ns}" is not an IP address`);
  }
  return out;
}

function parseInterface(raw: unknown, where: string): CniInterface {
  const o = asObject(raw, where);
  const name = str(o['name'], `${where}.name`);
  return compact({
    name,
    mac: optStr(o['mac'], `${where}.mac`),
    mtu: optInt(o['mtu'], `${where}.mtu`),
    sandbox: optStr(o['sandbox'], `${where}.sandbox`),
    socketPath: optStr(o['socketPath'], `${where}.socketPath`),
    pciID: optStr(o['pciID'], `${where}.pciID`),
  }) as CniInterface;
}

function parseIpConfig(raw: unknown, where: string, version: CniVersion, interfaceCount: number): CniIpConfig {
  const o = asObject(raw, where);
  const address = str(o['address'], `${where}.address`);
  const parsed = parseCidr(address);
  if (typeof parsed === 'string') invalid(`${where}.address`, parsed);
  if (!atLeast(version, '1.0.0')) {
    const v = o['version'];
    if (v !== '4' && v !== '6') invalid(`${where}.version`, `must be "4" or "6" in a ${version} result, got ${JSON.stringify(v)}`);
    if (v !== String(parsed.cidr.family)) invalid(`${where}.version`, `"${v}" does not match the address ${address}`);
  }
  const gateway = optStr(o['gateway'], `${where}.gateway`);
  if (gateway !== undefined && typeof parseIp(gateway) === 'string') invalid(`${where}.gateway`, `"${gateway}" is not an IP address`);
  const iface = optInt(o['interface'], `${where}.interface`);
  if (iface !== undefined && (iface < 0 || iface >= interfaceCount)) {
    invalid(`${where}.interface`, `index ${iface} is not one of the ${interfaceCount} interfaces`);
  }
  return compact({ address, gateway, interface: iface }) as CniIpConfig;
}

function parseRoute(raw: unknown, where: string): CniRoute {
  const o = asObject(raw, where);
  const dst = str(o['dst'], `${where}.dst`);
  if (typeof parseCidr(dst) === 'string') invalid(`${where}.dst`, `"${dst}" is not a CIDR`);
  const gw = optStr(o['gw'], `${where}.gw`);
  if (gw !== undefined && typeof parseIp(gw) === 'string') invalid(`${where}.gw`, `"${gw}" is not an IP address`);
  return compact({
    dst, gw,
    mtu: optInt(o['mtu'], `${where}.mtu`),
    advmss: optInt(o['advmss'], `${where}.advmss`),
    priority: optInt(o['priority'], `${where}.priority`),
    table: optInt(o['table'], `${where}.table`),
    scope: optInt(o['scope'], `${where}.scope`),
  }) as CniRoute;
}

function familyOf(cidr: string): string {
  return cidr.includes(':') ? '6' : '4';
}

/** Drops undefined fields, so the JSON has no "key": null noise. */
function compact<T extends Record<string, unknown>>(o: T): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as Partial<T>;
}

function invalid(field: string, message: string): never {
  throw new CniError(CniCode.INVALID_CONFIG, `${field}: ${message}`);
}

function asObject(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) invalid(where, `must be an object, got ${JSON.stringify(v)}`);
  return v as Record<string, unknown>;
}

function optionalArray(v: unknown, where: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) invalid(where, `must be a list, got ${JSON.stringify(v)}`);
  return v;
}

function str(v: unknown, where: string): string {
  if (typeof v !== 'string' || v === '') invalid(where, `must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function optStr(v: unknown, where: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') invalid(where, `must be a string, got ${JSON.stringify(v)}`);
  return v;
}

function optInt(v: unknown, where: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) invalid(where, `must be an integer, got ${JSON.stringify(v)}`);
  return v;
}

function strings(v: unknown, where: string): string[] {
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) invalid(where, `must be a list of strings, got ${JSON.stringify(v)}`);
  return v;
}
