/**
 * The API bridge (src/lab/cluster/api-bridge.ts) with a real netns: a TCP
 * server on the root netns' loopback is reached from inside the netns at
 * the same address, byte for byte, through the unix socket; a server
 * restarted on the same port is reached again by the next connection; stop
 * ends the forwarder and removes the socket. Netns sluice-t<random>-node,
 * files in a temp dir; both removed in finally.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ApiBridge } from '../../src/lab/cluster/api-bridge.js';
import { isProcessAlive } from '../../src/lab/controlplane/process.js';
import { inNetns, sh, uniqueLabName } from './helpers.js';

/** An upstream that answers every connection with `<tag>:` and the bytes it got, then closes. */
async function echo(tag: string, port = 0): Promise<{ server: Server; port: number }> {
  const server = createServer((c) => c.once('data', (d: Buffer) => c.end(`${tag}:${d.toString()}`)));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { server, port: address.port };
}

const close = (s: Server): Promise<void> => new Promise((resolve) => s.close(() => resolve()));

/** One connection from inside the netns: sends "ping", resolves with the answer. */
async function askFromNetns(ns: string, port: number): Promise<string> {
  const script = `const c=require('node:net').connect(${port},'127.0.0.1',()=>c.write('ping'));let t='';` +
    `c.on('data',(d)=>t+=d);c.on('close',()=>process.stdout.write(t));c.on('error',(e)=>{process.stderr.write(e.message);process.exit(1);});`;
  const r = await inNetns(ns, [process.execPath, '-e', script], 10_000);
  return r.code === 0 ? r.stdout : `failed: ${r.stderr}`;
}

test('a loopback server of the root netns, reached from inside a netns at the same address', async () => {
  const ns = `sluice-${uniqueLabName()}-node`;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-t-bridge-'));
  let upstream = await echo('first');
  let bridge: ApiBridge | undefined;
  try {
    assert.equal((await sh('ip', ['netns', 'add', ns])).code, 0);
    assert.equal((await sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])).code, 0);
    const socket = join(dir, 'api.sock');
    bridge = await ApiBridge.start({ server: `https://127.0.0.1:${upstream.port}`, netns: `/var/run/netns/${ns}`, socket, logFile: join(dir, 'fwd.log') });
    const pid = bridge.pid;
    assert.ok(pid !== undefined);
    assert.equal(await askFromNetns(ns, upstream.port), 'first:ping');

    // The upstream restarts on the same port (an apiserver restart): the next connection reaches the new one.
    await close(upstream.server);
    assert.match(await askFromNetns(ns, upstream.port), /^(failed: .*|)$/, 'nothing answers while it is down');
    upstream = await echo('second', upstream.port);
    assert.equal(await askFromNetns(ns, upstream.port), 'second:ping');

    await bridge.stop();
    assert.equal(isProcessAlive(pid), false, 'the forwarder is gone');
    assert.equal(existsSync(socket), false, 'the socket is removed');
    await bridge.stop(); // idempotent
  } finally {
    await bridge?.stop();
    await close(upstream.server);
    await sh('ip', ['netns', 'delete', ns]);
    rmSync(dir, { recursive: true, force: true });
  }
});
