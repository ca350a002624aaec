/**
 * The node-netns half of the API bridge (api-bridge.ts), run by path:
 *
 *   nsenter --net=<node netns> node api-forwarder.js --listen 127.0.0.1:<port> --to <lab dir>/api.sock
 *
 * Listens on the API server's address inside the netns and pipes every
 * connection, byte for byte, to the unix socket the lab's owner serves.
 * Prints FORWARDER_READY once it listens; runs until SIGTERM/SIGKILL.
 */
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import { FORWARDER_READY, pipeServer } from './api-bridge.js';

const { values } = parseArgs({ options: { listen: { type: 'string' }, to: { type: 'string' } }, strict: true });
const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(values.listen ?? '');
const to = values.to;
if (m === null || to === undefined) {
  process.stderr.write('usage: api-forwarder --listen HOST:PORT --to SOCKET\n');
  process.exit(2);
}
const [, host = '', port = ''] = m;
const server = pipeServer(() => connect(to));
server.once('error', (e) => {
  process.stderr.write(`api-forwarder: cannot listen on ${host}:${port}: ${e.message}\n`);
  process.exit(1);
});
server.listen(Number(port), host, () => process.stdout.write(`${FORWARDER_READY} on ${host}:${port} → ${to}\n`));
process.once('SIGTERM', () => process.exit(0));
