/**
 * HelperRunner (the agent's command helper) and spawnCommand: output, exit
 * status, a command that cannot start, and a helper that dies mid-command
 * (pending commands fail, the next one gets a new helper).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnCommand } from '../../src/cni/command.js';
import { HelperRunner } from '../../src/cni/exec-runner.js';

test('spawnCommand and HelperRunner agree: stdout, stderr, status; a missing binary rejects', async () => {
  const helper = new HelperRunner();
  try {
    for (const run of [spawnCommand, helper.run]) {
      assert.deepEqual(await run('cat', [], 'hello\n'), { status: 0, stdout: 'hello\n', stderr: '' });
      assert.deepEqual(await run('sh', ['-c', 'echo out; echo err >&2; exit 3'], ''), { status: 3, stdout: 'out\n', stderr: 'err\n' });
      await assert.rejects(run('/nonexistent/sluice-no-such-binary', [], ''), /ENOENT/);
    }
    // Concurrent commands each get their own answer.
    const outs = await Promise.all(Array.from({ length: 10 }, (_, i) => helper.run('sh', ['-c', `sleep 0.0${i % 3}; echo ${i}`], '')));
    assert.deepEqual(outs.map((o) => o.stdout), Array.from({ length: 10 }, (_, i) => `${i}\n`));
  } finally {
    helper.close();
  }
});

test('a helper that dies fails its pending commands; the next command starts a new one', async () => {
  const helper = new HelperRunner();
  try {
    const first = await helper.run('sh', ['-c', 'echo $PPID'], '');
    const helperPid = Number(first.stdout.trim());
    assert.ok(helperPid > 0 && helperPid !== process.pid, `the command ran under the helper, not here (${helperPid})`);
    const pending = helper.run('sleep', ['5'], '');
    process.kill(helperPid, 'SIGKILL');
    await assert.rejects(pending, /command helper exited \(SIGKILL\)/);
    const again = await helper.run('sh', ['-c', 'echo $PPID'], '');
    assert.notEqual(Number(again.stdout.trim()), helperPid);
  } finally {
    helper.close();
  }
});
