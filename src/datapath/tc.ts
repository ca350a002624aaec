/**
 * tc clsact hooks: attach, replace, query and detach direct-action cls_bpf
 * programs on an interface in our netns or in one given by path. The addon
 * enters the netns on the calling thread and returns before control comes
 * back to JS.
 */
import { addon, type NativeIfRef } from './addon.js';
import type { InterfaceRef, TcAttachOptions, TcAttachment, TcDirection } from './api.js';

/** A filter slot on a hook: (handle, priority), both default 1. */
export interface TcSlot {
  readonly handle?: number;
  readonly priority?: number;
}

const DEFAULT_HANDLE = 1;
const DEFAULT_PRIORITY = 1;

function nativeRef(ref: InterfaceRef): NativeIfRef {
  return {
    ...(ref.ifname !== undefined && { ifname: ref.ifname }),
    ...(ref.ifindex !== undefined && { ifindex: ref.ifindex }),
    ...(ref.netns !== undefined && { netns: ref.netns }),
  };
}

/** Adds the clsact qdisc unless present; `created` says whether we added it. */
export function ensureClsact(ref: InterfaceRef): { ifindex: number; created: boolean } {
  return addon().tcHookCreate(nativeRef(ref));
}

/** Removes the clsact qdisc and with it every tc filter on both directions. */
export function removeClsact(ref: InterfaceRef): boolean {
  return addon().tcHookDestroy(nativeRef(ref));
}

/**
 * Attaches progFd (a SCHED_CLS program) in direct-action mode, creating the
 * clsact qdisc if needed. With replace, swaps the program at (handle,
 * priority) atomically; without, an occupied slot is an EEXIST BpfError.
 */
export function attachTc(ref: InterfaceRef, dir: TcDirection, progFd: number, opts: TcAttachOptions = {}): TcAttachment {
  const handle = opts.handle ?? DEFAULT_HANDLE;
  const priority = opts.priority ?? DEFAULT_PRIORITY;
  const r = addon().tcAttach(nativeRef(ref), dir, progFd, handle, priority, opts.replace ?? false);
  return { ifindex: r.ifindex, direction: dir, handle, priority, progId: r.progId };
}

/** Removes the filter at (handle, priority); false when nothing was there. */
export function detachTc(ref: InterfaceRef, dir: TcDirection, slot: TcSlot = {}): boolean {
  return addon().tcDetach(nativeRef(ref), dir, slot.handle ?? DEFAULT_HANDLE, slot.priority ?? DEFAULT_PRIORITY);
}

/** The program attached at (handle, priority), or undefined. */
export function queryTc(ref: InterfaceRef, dir: TcDirection, slot: TcSlot = {}): TcAttachment | undefined {
  const handle = slot.handle ?? DEFAULT_HANDLE;
  const priority = slot.priority ?? DEFAULT_PRIORITY;
  const r = addon().tcQuery(nativeRef(ref), dir, handle, priority);
  return r === undefined ? undefined : { ifindex: r.ifindex, direction: dir, handle, priority, progId: r.progId };
}
