/**
 * Run inside a pod's (or any lab) network namespace by the Service tests (node <this> …):
 *
 *   serve <ip> <port> <name>   answer every TCP connection with "<name> <peer address>\n", then
 *                              close it; prints {"listening":true} once it listens, runs until killed
 *   userve <ip> <port> <name>  answer every UDP datagram with "<name> <peer address>"
 *   hold <ip> <port> <name>    long TCP connections: "<name>\n" on accept, then every byte echoed
 *   ask <ip> <port> <ms>       one TCP connection; prints what happened within <ms>:
 *                              {"result":"answered","name":…,"peer":…,"ms":…} (the backend's name
 *                              and the client address it saw), {"result":"refused","ms":…}
 *                              (ECONNREFUSED: a reset or an ICMP port-unreachable),
 *                              {"result":"timeout"} or {"result":"error","code":…,"ms":…}
 *   asks <tcp|udp> <ip> <port> <n> <ms>
 *                              n asks one after the other, one line each (udp: a connected
 *                              socket per ask, so each has its own source port; an ICMP
 *                              port-unreachable is ECONNREFUSED on it)
 *   stream <ip> <port> <ms>    one long TCP connection to a `hold` server: prints
 *                              {"backend":name}, then writes a line every <ms> and prints
 *                              {"echoed":n} as the echoes come back; {"error":code} or
 *                              {"closed":true} when it ends; runs until killed
 *   flow <ip> <port> <lport> <ms>
 *                              one UDP flow from the fixed source port <lport>: a datagram
 *                              every <ms>, printing {"name":…} per answer, {"error":code} per
 *                              error; runs until killed
 *
 * The name lets a test see which backend a Service address led to, the peer
 * whether the source was translated; the time tells a rejected connection (at
 * once) from a dropped one.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createConnection, createServer } from 'node:net';

export type AskResult =
  | { readonly result: 'answered'; readonly name: string; readonly peer?: string; readonly ms: number }
  | { readonly result: 'refused'; readonly ms: number }
  | { readonly result: 'timeout' }
  | { readonly result: 'error'; readonly code: string; readonly ms: number };

/** A line of `stream` or `flow`. */
export type FlowLine =
  | { readonly backend: string }
  | { readonly echoed: number }
  | { readonly name: string }
  | { readonly error: string }
  | { readonly closed: true };

function print(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v)}\n`);
}

function bareAddress(a: string | undefined): string {
  return (a ?? '').replace(/^::ffff:/, '');
}

function answered(text: string, ms: number): AskResult {
  const [name = '', peer] = text.trim().split(/\s+/);
  return { result: 'answered', name, ...(peer !== undefined ? { peer } : {}), ms };
}

function serve(ip: string, port: number, name: string): void {
  const server = createServer((sock) => {
    sock.on('error', () => undefined);
    sock.end(`${name} ${bareAddress(sock.remoteAddress)}\n`);
  });
  server.listen({ host: ip, port }, () => print({ listening: true }));
}

function userve(ip: string, port: number, name: string): void {
  const sock = createSocket('udp4');
  sock.on('message', (_msg, rinfo) => sock.send(`${name} ${rinfo.address}`, rinfo.port, rinfo.address));
  sock.on('error', () => undefined);
  sock.bind(port, ip, () => print({ listening: true }));
}

function hold(ip: string, port: number, name: string): void {
  const server = createServer((sock) => {
    sock.on('error', () => undefined);
    sock.write(`${name}\n`);
    sock.pipe(sock);
  });
  server.listen({ host: ip, port }, () => print({ listening: true }));
}

function elapsedSince(t0: number): () => number {
  return () => Math.round((performance.now() - t0) * 100) / 100;
}

/** The settle function of one ask: the first result wins, `close` runs once, a timeout after `ms`. */
function settler(ms: number, close: () => void, resolve: (r: AskResult) => void): (r: AskResult) => void {
  let settled = false;
  const settle = (r: AskResult): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    close();
    resolve(r);
  };
  const timer = setTimeout(() => settle({ result: 'timeout' }), ms);
  return settle;
}

/** ECONNREFUSED (a reset, an ICMP port unreachable) is a refusal; anything else an error. */
function failed(e: NodeJS.ErrnoException, ms: number): AskResult {
  const code = e.code ?? 'unknown';
  return code === 'ECONNREFUSED' ? { result: 'refused', ms } : { result: 'error', code, ms };
}

function askTcp(ip: string, port: number, ms: number): Promise<AskResult> {
  return new Promise((resolve) => {
    const elapsed = elapsedSince(performance.now());
    let text = '';
    const sock = createConnection({ host: ip, port });
    const settle = settler(ms, () => sock.destroy(), resolve);
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (text += d));
    sock.on('end', () => settle(answered(text, elapsed())));
    sock.on('error', (e: NodeJS.ErrnoException) => settle(failed(e, elapsed())));
  });
}

function askUdp(ip: string, port: number, ms: number): Promise<AskResult> {
  return new Promise((resolve) => {
    const elapsed = elapsedSince(performance.now());
    const sock: UdpSocket = createSocket('udp4');
    const settle = settler(ms, () => sock.close(), resolve);
    sock.on('message', (msg) => settle(answered(msg.toString('utf8'), elapsed())));
    sock.on('error', (e: NodeJS.ErrnoException) => settle(failed(e, elapsed())));
    sock.connect(port, ip, () => sock.send('ask'));
  });
}

async function asks(proto: string, ip: string, port: number, n: number, ms: number): Promise<void> {
  for (let i = 0; i < n; i++) print(proto === 'udp' ? await askUdp(ip, port, ms) : await askTcp(ip, port, ms));
}

function stream(ip: string, port: number, everyMs: number): void {
  const sock = createConnection({ host: ip, port });
  let buf = '';
  let backend: string | undefined;
  let echoed = 0;
  let seq = 0;
  sock.setEncoding('utf8');
  sock.on('connect', () => {
    setInterval(() => sock.write(`${++seq}\n`), everyMs);
  });
  sock.on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (backend === undefined) {
        backend = line;
        print({ backend });
      } else {
        print({ echoed: ++echoed });
      }
    }
  });
  sock.on('error', (e: NodeJS.ErrnoException) => {
    print({ error: e.code ?? e.message });
    process.exit(0);
  });
  sock.on('close', () => {
    print({ closed: true });
    process.exit(0);
  });
}

function flow(ip: string, port: number, lport: number, everyMs: number): void {
  const sock = createSocket('udp4');
  sock.on('message', (msg) => print({ name: msg.toString('utf8').trim().split(/\s+/)[0] ?? '' }));
  // A connected UDP socket reports an ICMP error for one datagram as an error event; the flow goes on.
  sock.on('error', (e: NodeJS.ErrnoException) => print({ error: e.code ?? e.message }));
  sock.bind(lport, () => {
    sock.connect(port, ip, () => {
      setInterval(() => sock.send('flow'), everyMs);
    });
  });
}

const [cmd, ...args] = process.argv.slice(2);
const [a0, a1, a2, a3, a4] = args;
const num = Number;
if (cmd === 'serve' && a2 !== undefined && a0 !== undefined && a1 !== undefined) serve(a0, num(a1), a2);
else if (cmd === 'userve' && a0 !== undefined && a1 !== undefined && a2 !== undefined) userve(a0, num(a1), a2);
else if (cmd === 'hold' && a0 !== undefined && a1 !== undefined && a2 !== undefined) hold(a0, num(a1), a2);
else if (cmd === 'ask' && a0 !== undefined && a1 !== undefined && a2 !== undefined) void askTcp(a0, num(a1), num(a2)).then(print);
else if (cmd === 'asks' && a0 !== undefined && a1 !== undefined && a2 !== undefined && a3 !== undefined && a4 !== undefined) void asks(a0, a1, num(a2), num(a3), num(a4));
else if (cmd === 'stream' && a0 !== undefined && a1 !== undefined && a2 !== undefined) stream(a0, num(a1), num(a2));
else if (cmd === 'flow' && a0 !== undefined && a1 !== undefined && a2 !== undefined && a3 !== undefined) flow(a0, num(a1), num(a2), num(a3));
else {
  process.stderr.write('usage: echo-tool serve|userve|hold <ip> <port> <name> | ask <ip> <port> <ms> | asks tcp|udp <ip> <port> <n> <ms> | stream <ip> <port> <ms> | flow <ip> <port> <lport> <ms>\n');
  process.exitCode = 2;
}
