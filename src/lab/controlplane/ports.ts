/**
 * Free loopback ports. Each port is found by binding port 0 and reading what
 * the kernel gave; all listeners stay open until every port is known, so the
 * ports returned by one call are distinct. (Another process can still take a
 * port between this call and the component binding it; on loopback in tests
 * that window has not mattered.)
 */
import { createServer, type Server } from 'node:net';

function listenEphemeral(host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => resolve(server));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Returns `count` distinct ports that were free on `host` a moment ago. */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) servers.push(await listenEphemeral(host));
    return servers.map((s) => {
      const addr = s.address();
      if (addr === null || typeof addr === 'string') throw new Error(`no TCP address for a listener on ${host}`);
      return addr.port;
    });
  } finally {
    await Promise.all(servers.map(close));
  }
}
