/**
 * Whether a path names the same file for the CNI front end (native/cni-shim)
 * and for the agent when the two run in different mount namespaces — the
 * agent in a DaemonSet pod, the shim in the node's (the runtime's) mount
 * namespace. The agent may run such an invocation in-process only when every
 * path the plugin would touch leads to the same file in both: the pod's netns
 * (CNI_NETNS), the agent socket, the pin root, the IPAM data dir and a
 * configured bpfObject. The chart mounts each of them from the host at the
 * same path; this check proves it per invocation instead of trusting it (a
 * missing hostPath, a mount that did not propagate, or a /proc/<pid>/ns/net
 * path of another pid namespace all fail it).
 *
 * Identity: "st_dev:st_ino" of the path (stat, symlinks followed; a netns
 * bind mount stats as its namespace), or, when the path does not exist yet
 * (the IPAM dir before the first ADD, a netns already removed at DEL), of its
 * nearest existing ancestor followed by "/" and the rest of the path:
 * "66:1234/ipam". Device numbers are the kernel's, the same in every mount
 * namespace. The shim writes the same format (path_identity in sluice-cni.c).
 *
 * Comparing: a full identity from the shim is compared with the agent's stat
 * of the path; an ancestor identity with the agent's stat of that ancestor (so
 * a directory another invocation creates meanwhile does not make them differ).
 */
import { statSync } from 'node:fs';
import { posix } from 'node:path';

/** st_dev:st_ino of a file. */
export type DevIno = `${bigint}:${bigint}`;

/** "dev:ino" of a path (symlinks followed), 'absent' (ENOENT, ENOTDIR), or undefined on any other error. */
export type StatIdentity = (path: string) => DevIno | 'absent' | undefined;

export const statIdentity: StatIdentity = (path) => {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'absent' : undefined;
  }
};

const IDENTITY = /^(\d+:\d+)(?:\/(.+))?$/;

/** An absolute path without ".", "..", "//" or a trailing "/": the only form compared across mount namespaces. */
export function isPlainPath(path: string): boolean {
  return path.startsWith('/') && posix.normalize(path) === path && (path === '/' || !path.endsWith('/'));
}

/** The identity of a path in this process's mount namespace (the format above); undefined when it cannot be read. */
export function pathIdentity(path: string, stat: StatIdentity = statIdentity): string | undefined {
  if (!isPlainPath(path)) return undefined;
  let dir = path;
  for (;;) {
    const id = stat(dir);
    if (id === undefined) return undefined;
    if (id !== 'absent') return dir === path ? id : `${id}/${path.slice(dir === '/' ? 1 : dir.length + 1)}`;
    if (dir === '/') return undefined;
    dir = posix.dirname(dir);
  }
}

/**
 * Why `path` may lead elsewhere for the agent than for the shim whose identity
 * of it is `shimId`, or undefined when both reach the same file.
 */
export function pathDiffers(path: string, shimId: string | undefined, stat: StatIdentity = statIdentity): string | undefined {
  if (!isPlainPath(path)) return `${path}: not a plain absolute path`;
  if (shimId === undefined) return `${path}: the front end sent no identity of it`;
  const m = IDENTITY.exec(shimId);
  if (m === null) return `${path}: unreadable identity ${JSON.stringify(shimId)}`;
  const [, id, rest] = m;
  let compared = path;
  if (rest !== undefined) {
    const suffix = `/${rest}`;
    if (!path.endsWith(suffix)) return `${path}: identity ${shimId} is of another path`;
    compared = path.slice(0, path.length - suffix.length) || '/';
  }
  const mine = stat(compared);
  if (mine === id) return undefined;
  return `${compared}: ${id} for the front end, ${mine ?? 'unreadable'} here`;
}
