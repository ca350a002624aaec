/**
 * TCP request/response inside a pod namespace (bench/crossnode runs it with
 * `ip netns exec`):
 *
 *   server <ip> <port>              echo every message of the one connection back, then exit
 *   client <ip> <port> <n> <size>   n requests of size bytes, one at a time, each
 *                                   timed until its whole echo is back; prints
 *                                   {"p50Us":…, "p99Us":…, "n":…} (the first 10% not counted)
 *
 * TCP_NODELAY both ends; the timing includes the event loop on both sides,
 * equally with and without programs.
 */
import { createConnection, createServer } from 'node:net';

function server(ip: string, port: number): void {
  const srv = createServer({ noDelay: true }, (s) => {
    s.on('data', (d) => s.write(d));
    s.on('end', () => {
      s.end();
      srv.close();
    });
  });
  srv.listen(port, ip, () => process.stdout.write('{"listening":true}\n'));
}

function client(ip: string, port: number, n: number, size: number): void {
  const msg = Buffer.alloc(size, 7);
  const samples: number[] = [];
  const s = createConnection({ host: ip, port, noDelay: true });
  let got = 0;
  let t0 = 0n;
  const send = (): void => {
    got = 0;
    t0 = process.hrtime.bigint();
    s.write(msg);
  };
  s.on('connect', send);
  s.on('data', (d) => {
    got += d.length;
    if (got < size) return;
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
    if (samples.length < n) send();
    else s.end();
  });
  s.on('close', () => {
    const kept = samples.slice(Math.floor(n / 10)).sort((a, b) => a - b);
    const at = (q: number): number => kept[Math.min(kept.length - 1, Math.floor(q * kept.length))] ?? NaN;
    process.stdout.write(`${JSON.stringify({ p50Us: at(0.5), p99Us: at(0.99), n: kept.length })}\n`);
  });
  s.on('error', (e) => {
    process.stdout.write(`${JSON.stringify({ error: e.message })}\n`);
    process.exit(1);
  });
}

const [mode, ip = '', port = '0', a = '0', b = '64'] = process.argv.slice(2);
if (mode === 'server') server(ip, Number(port));
else if (mode === 'client') client(ip, Number(port), Number(a), Number(b));
else {
  process.stderr.write('usage: rr-tool server IP PORT | client IP PORT N SIZE\n');
  process.exit(2);
}
