/**
 * The agent's command helper (started by HelperRunner in exec-runner.ts
 * with an IPC channel): runs each requested command with spawnCommand and
 * answers with its output, so the fork happens in this small process and
 * not in the agent. Exits with its parent (the channel closes).
 */
import { spawnCommand } from './command.js';

interface Request {
  readonly id: number;
  readonly file: string;
  readonly args: readonly string[];
  readonly input: string;
}

process.on('message', (m: Request) => {
  spawnCommand(m.file, m.args, m.input).then(
    (out) => process.send?.({ id: m.id, out }),
    (e: unknown) => process.send?.({ id: m.id, error: e instanceof Error ? e.message : String(e) }),
  );
});
process.on('disconnect', () => process.exit(0));
