/**
 * Listening on a unix socket that only root can use: the directory is
 * created 0700 when missing, a stale socket from a dead agent is removed
 * (but a live one is an error: two agents must not share a node), anything
 * that is not a socket is never deleted, and the socket is chmod 0600 right
 * after bind (nobody else can reach it in between through a 0700 dir).
 */
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { connect, type Server } from 'node:net';
import { dirname } from 'node:path';
import { AgentError, asError, errnoCode } from '../errors.js';

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function listenUnix(server: Server, path: string, field = 'endpointSocket'): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  try {
    const st = await lstat(path);
    if (!st.isSocket()) throw new AgentError('io', `${path} exists and is not a socket: not touching it`, field);
    if (await answers(path)) throw new AgentError('io', `another process is serving ${path} (is an agent already running?)`, field);
    await unlink(path);
  } catch (e) {
    if (e instanceof AgentError) throw e;
    if (errnoCode(e) !== 'ENOENT') throw new AgentError('io', `cannot inspect ${path}: ${asError(e).message}`, field, { cause: e });
  }
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error): void => reject(new AgentError('io', `cannot listen on ${path}: ${e.message}`, field, { cause: e }));
    server.once('error', onError);
    server.listen(path, () => {
      server.off('error', onError);
      resolve();
    });
  });
  await chmod(path, 0o600);
}
