#!/usr/bin/env node
/**
 * sluice-cni: the CNI plugin binary (no arguments, CNI_COMMAND set: see
 * plugin.ts), and its installer (`sluice-cni install|uninstall …`: see
 * install.ts). Start-up is
 * most of an invocation's cost, so this file imports only the plugin; the
 * installer and the BPF addon load on demand.
 */
import { readFileSync } from 'node:fs';
import { EndpointClient } from '../endpoint/client.js';
import { invoke } from './plugin.js';
import { mark, startTiming, timingLine } from './timing.js';

async function main(): Promise<number> {
  startTiming(process.env);
  mark('start');
  const argv = process.argv.slice(2);
  if (argv.length > 0) {
    const { runInstaller } = await import('./install.js');
    return runInstaller(argv);
  }
  let stdin = '';
  try {
    stdin = readFileSync(0, 'utf8');
  } catch {
    // No stdin (closed): VERSION needs none; the others report a decode error.
  }
  const out = await invoke(process.env, stdin, (conf) => new EndpointClient(conf.agentSocket, { timeoutMs: conf.timeoutMs }));
  process.stdout.write(out.stdout);
  if (out.stderr !== '') process.stderr.write(out.stderr);
  mark('done');
  process.stderr.write(timingLine());
  return out.exitCode;
}

// Exit at once: stdout/stderr are synchronous for files and pipes on Linux, and
// nothing else may keep a short-lived plugin alive.
main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`sluice-cni: ${String(e)}\n`);
    process.exit(1);
  },
);
