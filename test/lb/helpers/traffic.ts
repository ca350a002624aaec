/**
 * Traffic for the Service tests, from inside pod namespaces (echo-tool.ts):
 * name servers on backends, and one-connection asks from clients that say
 * which backend answered, or that the connection was refused, and how fast.
 * Independent of what implements Services (Sluice's datapath or kube-proxy).
 */
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AskResult } from './echo-tool.js';

export type { AskResult };

const tool = fileURLToPath(new URL('./echo-tool.js', import.meta.url));

export interface NameServer {
  kill(): void;
}

/** Starts `echo-tool serve` in `ns` (answers every connection with `name`); resolves once it listens. */
export function serveName(ns: string, ip: string, port: number, name: string): Promise<NameServer> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, tool, 'serve', ip, String(port), name], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`echo-tool serve in ${ns} exited (${String(code)}) before listening`)));
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
