/**
 * Traffic for the Service tests, from inside pod namespaces (echo-tool.ts):
 * name servers on backends, and one-connection asks from clients that say
 * which backend answered, or that the connection was refused, and how fast.
 * Independent of what implements Services (Sluice's datapath or kube-proxy).
 */
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AskResult, FlowLine } from './echo-tool.js';

export type { AskResult, FlowLine };

const tool = fileURLToPath(new URL('./echo-tool.js', import.meta.url));

export interface NameServer {
  kill(): void;
}

/** Starts `echo-tool serve` in `ns` (answers every connection with `name`); resolves once it listens. */
export function serveName(ns: string, ip: string, port: number, name: string): Promise<NameServer> {
  return startServer('serve', ns, ip, port, name);
}

/** A server of echo-tool: `serve` (TCP, answers and closes), `userve` (UDP, answers each datagram), `hold` (TCP, echoes). */
export function startServer(kind: 'serve' | 'userve' | 'hold', ns: string, ip: string, port: number, name: string): Promise<NameServer> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, tool, kind, ip, String(port), name], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`echo-tool ${kind} in ${ns} exited (${String(code)}) before listening`)));
    child.stdout.setEncoding('utf8');
    child.stdout.once('data', () => resolve({ kill: () => child.kill('SIGKILL') }));
  });
}

/** One TCP connection from `ns` to ip:port within `ms`. */
export function ask(ns: string, ip: string, port: number, ms = 2000): Promise<AskResult> {
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, tool, 'ask', ip, String(port), String(ms)], { encoding: 'utf8', timeout: ms + 10_000 }, (err, stdout) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      if (line === '') {
        reject(new Error(`echo-tool ask ${ip}:${port} in ${ns}: no result${err ? ` (${err.message})` : ''}`));
        return;
      }
      resolve(JSON.parse(line) as AskResult);
    });
  });
}

/** The backends that answered `n` asks (name → count); anything other than an answer throws. */
export async function spread(ns: string, ip: string, port: number, n: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = await ask(ns, ip, port);
    if (r.result !== 'answered') throw new Error(`ask ${i + 1}/${n} to ${ip}:${port}: ${JSON.stringify(r)}`);
    seen.set(r.name, (seen.get(r.name) ?? 0) + 1);
  }
  return seen;
}

/** `n` asks one after the other from `ns` (TCP: a connection each; UDP: a connected socket each, so a new source port). */
export function asks(ns: string, proto: 'tcp' | 'udp', ip: string, port: number, n: number, ms = 2000): Promise<AskResult[]> {
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, tool, 'asks', proto, ip, String(port), String(n), String(ms)], { encoding: 'utf8', timeout: n * (ms + 1000) + 10_000 }, (err, stdout) => {
      const lines = stdout.trim().split('\n').filter((l) => l !== '');
      if (lines.length !== n) {
        reject(new Error(`echo-tool asks ${proto} ${ip}:${port} in ${ns}: ${lines.length} of ${n} results${err ? ` (${err.message})` : ''}`));
        return;
      }
      resolve(lines.map((l) => JSON.parse(l) as AskResult));
    });
  });
}

/** The answering backends of `results` (name → count); anything other than an answer throws, naming it. */
export function answeredBy(results: readonly AskResult[], what: string): Map<string, number> {
  const seen = new Map<string, number>();
  for (const [i, r] of results.entries()) {
    if (r.result !== 'answered') throw new Error(`${what}: ask ${i + 1}/${results.length}: ${JSON.stringify(r)}`);
    seen.set(r.name, (seen.get(r.name) ?? 0) + 1);
  }
  return seen;
}

/** A running `stream` or `flow` of echo-tool: every line it printed so far. */
export interface ToolRun {
  readonly lines: readonly FlowLine[];
  stop(): void;
}

function run(ns: string, args: readonly string[]): ToolRun {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, tool, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: FlowLine[] = [];
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim() !== '') lines.push(JSON.parse(line) as FlowLine);
    }
  });
  return { lines, stop: () => child.kill('SIGKILL') };
}

/** One long TCP connection from `ns` to a `hold` server behind ip:port: a line every `everyMs`, echoed. */
export function startStream(ns: string, ip: string, port: number, everyMs = 50): ToolRun {
  return run(ns, ['stream', ip, String(port), String(everyMs)]);
}

/** One UDP flow from `ns`, source port `lport`, to ip:port: a datagram every `everyMs`. */
export function startFlow(ns: string, ip: string, port: number, lport: number, everyMs = 100): ToolRun {
  return run(ns, ['flow', ip, String(port), String(lport), String(everyMs)]);
}
