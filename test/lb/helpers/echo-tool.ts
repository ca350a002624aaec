/**
 * Run inside a pod's network namespace by the Service tests (node <this> …):
 *
 *   serve <ip> <port> <name>   answer every TCP connection with "<name>\n", then close it;
 *                              prints {"listening":true} once it listens, runs until killed
 *   ask <ip> <port> <ms>       one TCP connection; prints what happened within <ms>:
 *                              {"result":"answered","name":…,"ms":…} (the backend's name),
 *                              {"result":"refused","ms":…} (ECONNREFUSED: a reset or an
 *                              ICMP port-unreachable), {"result":"timeout"} or
 *                              {"result":"error","code":…,"ms":…}
 *
 * The name lets a test see which backend a Service address led to; the time
 * tells a rejected connection (at once) from a dropped one.
 */
import { createConnection, createServer } from 'node:net';

export type AskResult =
  | { readonly result: 'answered'; readonly name: string; readonly ms: number }
  | { readonly result: 'refused'; readonly ms: number }
  | { readonly result: 'timeout' }
  | { readonly result: 'error'; readonly code: string; readonly ms: number };

function print(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v)}\n`);
}

function serve(ip: string, port: number, name: string): void {
  const server = createServer((sock) => {
    sock.on('error', () => undefined);
    sock.end(`${name}\n`);
  });
  server.listen({ host: ip, port }, () => print({ listening: true }));
}

function ask(ip: string, port: number, ms: number): void {
  const t0 = performance.now();
  const elapsed = (): number => Math.round((performance.now() - t0) * 100) / 100;
  let text = '';
  let settled = false;
  const settle = (r: AskResult): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    sock.destroy();
    print(r);
  };
  const sock = createConnection({ host: ip, port });
  const timer = setTimeout(() => settle({ result: 'timeout' }), ms);
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => (text += d));
  sock.on('end', () => settle({ result: 'answered', name: text.trim(), ms: elapsed() }));
  sock.on('error', (e: NodeJS.ErrnoException) => {
    const code = e.code ?? 'unknown';
    settle(code === 'ECONNREFUSED' ? { result: 'refused', ms: elapsed() } : { result: 'error', code, ms: elapsed() });
  });
}

const [cmd, ip, port, arg] = process.argv.slice(2);
if (cmd === 'serve' && ip !== undefined && port !== undefined && arg !== undefined) serve(ip, Number(port), arg);
else if (cmd === 'ask' && ip !== undefined && port !== undefined && arg !== undefined) ask(ip, Number(port), Number(arg));
else {
  process.stderr.write('usage: echo-tool serve <ip> <port> <name> | ask <ip> <port> <ms>\n');
  process.exitCode = 2;
}
