/**
 * A tiny TCP (and UDP) tool the lab tests run inside pod namespaces
 * (node <this> ...):
 *
 *   serve <ip> <port>                 accept ONE connection, verify the byte
 *                                     pattern, print a JSON summary, exit
 *   stream <ip> <port> <ms>           write the pattern for <ms>, half-close,
 *                                     print the server's summary + our count
 *   probe <ip> <port> <lport> <ms>    try to connect from local port <lport>
 *   udp-serve <ip> <port>             echo every datagram back, until killed
 *   udp-ask <ip> <port> <lport> <ms>  send one datagram from <lport>, wait <ms>
 *                                     for the echo: answered | timeout
 *
 * The pattern (byte at stream offset i is i mod 251) makes any lost,
 * duplicated or reordered byte visible at the receiver, and the server records
 * the longest pause between two arrivals: a connection that "survives" a
 * reload must keep both its bytes and its pace.
 */
import { createSocket } from 'node:dgram';
import { createConnection, createServer, type Socket } from 'node:net';

const PERIOD = 251;
const pattern = Buffer.alloc(PERIOD * 1024, 0);
for (let i = 0; i < pattern.length; i++) pattern[i] = i % PERIOD;
const CHUNK = 64 * 1024;

export interface ServeSummary {
  readonly bytes: number;
  /** false when a byte differed from the pattern; firstBad says where. */
  readonly ok: boolean;
  readonly firstBad?: number;
  readonly maxGapMs: number;
  readonly error?: string;
}

export interface StreamSummary {
  readonly written: number;
  readonly server?: ServeSummary;
  readonly error?: string;
}

function print(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v)}\n`);
}

function serve(ip: string, port: number): void {
  const server = createServer((sock: Socket) => {
    server.close();
    let bytes = 0;
    let firstBad: number | undefined;
    let last = performance.now();
    let maxGapMs = 0;
    sock.on('data', (chunk: Buffer) => {
      const now = performance.now();
      maxGapMs = Math.max(maxGapMs, now - last);
      last = now;
      if (firstBad === undefined) {
        for (let done = 0; done < chunk.length; ) {
          const start = (bytes + done) % PERIOD;
          const n = Math.min(chunk.length - done, pattern.length - start);
          if (chunk.compare(pattern, start, start + n, done, done + n) !== 0) {
            firstBad = bytes + done;
            break;
          }
          done += n;
        }
      }
      bytes += chunk.length;
    });
    const finish = (error?: Error): void => {
      const summary: ServeSummary = {
        bytes,
        ok: firstBad === undefined && !error,
        maxGapMs: Math.round(maxGapMs * 10) / 10,
        ...(firstBad !== undefined ? { firstBad } : {}),
        ...(error ? { error: error.message } : {}),
      };
      print(summary);
      if (!error) sock.end(JSON.stringify(summary));
    };
    sock.on('end', () => finish());
    sock.on('error', (e) => finish(e));
  });
  server.listen(port, ip, () => print({ listening: true }));
}

function stream(ip: string, port: number, ms: number): void {
  let written = 0;
  let reply = '';
  let failed = false;
  const sock = createConnection({ host: ip, port }, () => {
    const deadline = performance.now() + ms;
    const pump = (): void => {
      while (performance.now() < deadline) {
        const start = written % PERIOD;
        const chunk = pattern.subarray(start, start + CHUNK);
        written += chunk.length;
        if (!sock.write(chunk)) {
          sock.once('drain', pump);
          return;
        }
      }
      sock.end();
    };
    pump();
  });
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => (reply += d));
  sock.on('error', (e) => {
    failed = true;
    print({ written, error: e.message } satisfies StreamSummary);
  });
  sock.on('close', () => {
    if (failed) return;
    try {
      print({ written, server: JSON.parse(reply) as ServeSummary } satisfies StreamSummary);
    } catch {
      print({ written, error: `no summary from server (got ${JSON.stringify(reply)})` } satisfies StreamSummary);
    }
  });
}

function probe(ip: string, port: number, localPort: number, ms: number): void {
  const sock = createConnection({ host: ip, port, localPort });
  const timer = setTimeout(() => {
    print({ result: 'timeout' });
    sock.destroy();
  }, ms);
  sock.on('connect', () => {
    clearTimeout(timer);
    print({ result: 'connected' });
    sock.destroy();
  });
  sock.on('error', (e) => {
    clearTimeout(timer);
    print({ result: `error: ${e.message}` });
  });
}

function udpServe(ip: string, port: number): void {
  const sock = createSocket('udp4');
  sock.on('message', (msg, from) => sock.send(msg, from.port, from.address));
  sock.bind(port, ip, () => print({ listening: true }));
}

function udpAsk(ip: string, port: number, localPort: number, ms: number): void {
  const sock = createSocket('udp4');
  const timer = setTimeout(() => {
    print({ result: 'timeout' });
    sock.close();
  }, ms);
  sock.on('message', () => {
    clearTimeout(timer);
    print({ result: 'answered' });
    sock.close();
  });
  sock.bind(localPort, () => sock.send('ping', port, ip));
}

const [mode, ip = '', port = '0', a = '0', b = '0'] = process.argv.slice(2);
if (mode === 'serve') serve(ip, Number(port));
else if (mode === 'stream') stream(ip, Number(port), Number(a));
else if (mode === 'probe') probe(ip, Number(port), Number(a), Number(b));
else if (mode === 'udp-serve') udpServe(ip, Number(port));
else if (mode === 'udp-ask') udpAsk(ip, Number(port), Number(a), Number(b));
else if (mode !== undefined) {
  process.stderr.write(`tcp-tool: unknown mode ${mode}\n`);
  process.exitCode = 2;
}
