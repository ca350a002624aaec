/**
 * Shared by the lab tests: unique lab names, a leftover scan, and traffic
 * tools (ping, iperf3) run inside pod namespaces.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { hostIfname, netnsPrefix, pinRootFor, statePathFor, type LabPaths } from '../../src/lab/names.js';
import type { ServeSummary, StreamSummary } from './tcp-tool.js';

export const labPaths: LabPaths = { bpffs: '/sys/fs/bpf', stateDir: '/run/sluice/lab' };

/** "t" + 7 random [a-z0-9]: every object is then sluice-t<random>-... */
export function uniqueLabName(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return `t${[...randomBytes(7)].map((b) => alphabet[b % alphabet.length]).join('')}`;
}

export interface Exec {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command and resolves with its exit code (never rejects on non-zero). */
export function sh(file: string, args: readonly string[], timeoutMs = 30_000): Promise<Exec> {
  return new Promise((resolve) => {
    execFile(file, [...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export function inNetns(ns: string, cmd: readonly string[], timeoutMs?: number): Promise<Exec> {
  return sh('ip', ['netns', 'exec', ns, ...cmd], timeoutMs);
}

/**
 * Everything a lab named `lab` could leave: namespaces with its prefix, its
 * pin directory, its state file, and host-veth-named links in the root
 * namespace (the lab never creates any there; this catches a regression).
 */
export async function labLeftovers(lab: string): Promise<string[]> {
  const found: string[] = [];
  const netns = await sh('ip', ['netns', 'list']);
  for (const line of netns.stdout.split('\n')) {
    const name = line.trim().split(/\s+/)[0] ?? '';
    if (name.startsWith(netnsPrefix(lab))) found.push(`netns ${name}`);
  }
  const links = await sh('ip', ['-o', 'link', 'show']);
  const vethPrefix = hostIfname(lab, 0).slice(0, -1);
  for (const line of links.stdout.split('\n')) {
    const ifname = line.split(':')[1]?.trim().split('@')[0] ?? '';
    if (ifname.startsWith(vethPrefix)) found.push(`link ${ifname}`);
  }
  for (const path of [pinRootFor(labPaths, lab), statePathFor(labPaths, lab)]) {
    if (existsSync(path)) found.push(path);
  }
  return found;
}

export interface PingResult {
  readonly transmitted: number;
  readonly received: number;
  /** Average RTT in ms; undefined when nothing came back. */
  readonly avgMs: number | undefined;
}

export async function ping(fromNs: string, to: string, count = 3): Promise<PingResult> {
  const r = await inNetns(fromNs, ['ping', '-n', '-q', '-c', String(count), '-i', '0.2', '-W', '1', to]);
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  if (!m) throw new Error(`ping from ${fromNs} to ${to}: unexpected output: ${r.stdout}${r.stderr}`);
  const rtt = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  return { transmitted: Number(m[1]), received: Number(m[2]), avgMs: rtt ? Number(rtt[1]) : undefined };
}

export interface IperfResult {
  readonly ok: boolean;
  readonly error: string | undefined;
  readonly bytesReceived: number;
  /** Bytes received per reporting interval (to spot stalls). */
  readonly intervals: readonly number[];
  readonly retransmits: number;
}

/**
 * An iperf3 server in `serverNs` for one test, then a client in `clientNs`.
 * The server is started first and the client retries the connect until the
 * server listens (at most ~2 s).
 */
export async function iperf(
  serverNs: string,
  serverIp: string,
  clientNs: string,
  opts: { seconds: number; port: number; intervalS?: number; bitrate?: string; connectTimeoutMs?: number },
): Promise<IperfResult> {
  const server = spawn('ip', ['netns', 'exec', serverNs, 'iperf3', '-s', '-1', '-B', serverIp, '-p', String(opts.port)], {
    stdio: 'ignore',
  });
  try {
    let last: Exec | undefined;
    for (let attempt = 0; attempt < 20; attempt++) {
      const args = ['iperf3', '-J', '-c', serverIp, '-p', String(opts.port), '-t', String(opts.seconds)];
      args.push('-i', String(opts.intervalS ?? 1), '--connect-timeout', String(opts.connectTimeoutMs ?? 1000));
      if (opts.bitrate) args.push('-b', opts.bitrate);
      last = await inNetns(clientNs, args, (opts.seconds + 10) * 1000);
      const parsed = parseIperf(last.stdout);
      // "Connection refused": the server is not listening yet; retry.
      if (parsed.ok || !/refused/i.test(parsed.error ?? '')) return parsed;
      await new Promise((r) => setTimeout(r, 100));
    }
    return parseIperf(last?.stdout ?? '');
  } finally {
    server.kill('SIGKILL');
  }
}

function parseIperf(stdout: string): IperfResult {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(stdout) as Record<string, unknown>;
  } catch {
    return { ok: false, error: `no JSON from iperf3: ${stdout.slice(0, 200)}`, bytesReceived: 0, intervals: [], retransmits: 0 };
  }
  const error = typeof json['error'] === 'string' ? json['error'] : undefined;
  const end = (json['end'] ?? {}) as Record<string, Record<string, number> | undefined>;
  const intervals = ((json['intervals'] ?? []) as { sum?: { bytes?: number } }[]).map((i) => i.sum?.bytes ?? 0);
  return {
    ok: error === undefined,
    error,
    bytesReceived: end['sum_received']?.['bytes'] ?? 0,
    intervals,
    retransmits: end['sum_sent']?.['retransmits'] ?? 0,
  };
}

const tcpTool = fileURLToPath(new URL('./tcp-tool.js', import.meta.url));

/** Reads a child's stdout as JSON lines. */
function jsonLines(child: ChildProcess, onLine: (v: Record<string, unknown>) => void): void {
  let buf = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim()) onLine(JSON.parse(line) as Record<string, unknown>);
    }
  });
}

export interface TcpServer {
  /** Resolves with the server's summary once its one connection ends. */
  readonly done: Promise<ServeSummary>;
  kill(): void;
}

/** Starts tcp-tool serve in `ns`; resolves once it listens. */
export function tcpServe(ns: string, ip: string, port: number): Promise<TcpServer> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, tcpTool, 'serve', ip, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let resolveDone: (s: ServeSummary) => void = () => {};
  const done = new Promise<ServeSummary>((r) => (resolveDone = r));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`tcp-tool serve in ${ns} exited (${code}) before listening`)));
    jsonLines(child, (v) => {
      if (v['listening']) resolve({ done, kill: () => child.kill('SIGKILL') });
      else resolveDone(v as unknown as ServeSummary);
    });
  });
}

/** A UDP echo server (tcp-tool udp-serve) in `ns`; resolves once it listens. */
export function udpServe(ns: string, ip: string, port: number): Promise<{ kill(): void }> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, tcpTool, 'udp-serve', ip, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`tcp-tool udp-serve in ${ns} exited (${code}) before listening`)));
    jsonLines(child, (v) => {
      if (v['listening']) resolve({ kill: () => child.kill('SIGKILL') });
    });
  });
}

/** One datagram from local port `localPort`, and its echo within `ms`: 'answered' or 'timeout'. */
export async function udpAsk(ns: string, ip: string, port: number, localPort: number, ms = 1000): Promise<string> {
  return String((await runJson(ns, ['udp-ask', ip, String(port), String(localPort), String(ms)]))['result']);
}

/** tcp-tool stream from `ns`: writes for `ms`, then reports. */
export async function tcpStream(ns: string, ip: string, port: number, ms: number): Promise<StreamSummary> {
  return (await runJson(ns, ['stream', ip, String(port), String(ms)])) as unknown as StreamSummary;
}

/** One connect attempt from a fixed local port: 'connected', 'timeout' or 'error: ...'. */
export async function tcpProbe(ns: string, ip: string, port: number, localPort: number, ms = 1000): Promise<string> {
  return String((await runJson(ns, ['probe', ip, String(port), String(localPort), String(ms)]))['result']);
}

function runJson(ns: string, args: readonly string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, tcpTool, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let result: Record<string, unknown> | undefined;
    child.on('error', reject);
    jsonLines(child, (v) => (result = v));
    child.on('close', (code) =>
      result ? resolve(result) : reject(new Error(`tcp-tool ${args.join(' ')} in ${ns}: no result (exit ${code})`)),
    );
  });
}
