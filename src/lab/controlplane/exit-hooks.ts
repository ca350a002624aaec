/**
 * Last-resort cleanup when the Node process ends without calling stop():
 * hooks run synchronously on 'exit', and SIGINT/SIGTERM are turned into an
 * exit (with the conventional 128+n code) so that 'exit' fires for them too.
 * Signal handlers are installed only when nobody else handles that signal, so
 * a CLI with its own handling keeps it.
 */
type Hook = () => void;

const hooks = new Set<Hook>();
let installed = false;

function runAll(): void {
  for (const hook of [...hooks]) {
    hooks.delete(hook);
    try {
      hook();
    } catch {
      // An exit hook must not stop the others.
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runAll);
  const signals: [NodeJS.Signals, number][] = [
    ['SIGINT', 2],
    ['SIGTERM', 15],
  ];
  for (const [sig, n] of signals) {
    if (process.listenerCount(sig) === 0) {
      process.once(sig, () => process.exit(128 + n));
    }
  }
}

/** Registers a synchronous hook for process exit; returns its unregister function. */
export function onProcessExit(hook: Hook): () => void {
  install();
  hooks.add(hook);
  return () => {
    hooks.delete(hook);
  };
}
