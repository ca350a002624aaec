/**
 * `sluice lab ...` as a user runs it: every command a separate process, so
 * status/exec/reload/down work from the state file and the kernel alone.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { labLeftovers, sh, uniqueLabName } from './helpers.js';

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const name = uniqueLabName();

function sluice(...args: string[]): ReturnType<typeof sh> {
  return sh(process.execPath, [main, 'lab', ...args], 60_000);
}

after(async () => {
  await sluice('down', '--name', name);
  assert.deepEqual(await labLeftovers(name), []);
});

test('sluice lab up / status / exec / reload / down', async () => {
  const up = await sluice('up', '--name', name, '--pods', 'web,db', '--cidr', '10.77.3.0/24');
  assert.equal(up.code, 0, up.stderr);
  assert.equal(up.stdout, `lab "${name}" up: web=10.77.3.2 db=10.77.3.3\n`);

  const json = await sluice('status', '--name', name, '-o', 'json');
  assert.equal(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as {
    healthy: boolean;
    pods: { pod: { name: string; ipv4: string }; programs?: { fromContainer?: number; toContainer?: number } }[];
  };
  assert.equal(report.healthy, true);
  assert.deepEqual(
    report.pods.map((p) => [p.pod.name, p.pod.ipv4, typeof p.programs?.fromContainer, typeof p.programs?.toContainer]),
    [
      ['web', '10.77.3.2', 'number', 'number'],
      ['db', '10.77.3.3', 'number', 'number'],
    ],
  );
  const text = await sluice('status', '--name', name);
  assert.match(text.stdout, new RegExp(`^lab ${name}: ready, healthy .*\\nPOD +IP .*\\nweb +10\\.77\\.3\\.2 +sluice-${name}-web `));

  const pingDb = await sluice('exec', '--name', name, 'web', '--', 'ping', '-c', '1', '-W', '1', '10.77.3.3');
  assert.equal(pingDb.code, 0, pingDb.stdout + pingDb.stderr);
  assert.match(pingDb.stdout, /1 received/);
  assert.equal((await sluice('exec', '--name', name, 'db', '--', 'sh', '-c', 'exit 7')).code, 7, 'exit code passes through');

  const reload = await sluice('reload', '--name', name, 'db');
  assert.equal(reload.code, 0, reload.stderr);
  assert.match(reload.stdout, /^pod "db": from_container prog \d+, to_container prog \d+\n$/);

  const down = await sluice('down', '--name', name);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, new RegExp(`removed .*netns sluice-${name}-node.*/sys/fs/bpf/sluice-${name}, /run/sluice/lab/${name}\\.json`));
  assert.deepEqual(await labLeftovers(name), []);
  assert.equal((await sluice('down', '--name', name)).stdout, `lab "${name}": nothing to remove\n`);
});

test('sluice lab errors name the field and exit 1', async () => {
  const bad = async (args: string[], message: RegExp): Promise<void> => {
    const r = await sluice(...args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}`);
    assert.match(r.stderr, message);
  };
  await bad(['up', '--name', 'Bad'], /^sluice lab: lab name "Bad": want 1-20 characters of \[a-z0-9\]\n$/);
  await bad(['up', '--name', name, '--pods', 'a,a'], /pod "a": listed twice/);
  await bad(['up', '--name', name, '--cidr', '10.0.0.1/24'], /cidr: host bits set/);
  await bad(['status', '--name', name], new RegExp(`lab "${name}" not found`));
  await bad(['up', '--name', name, '--fabric'], /-f, --foreground, --nodes, --zones, --fabric and --proxy go with --cluster/);

  const up = await sluice('up', '--name', name, '--pods', 'a', '--no-datapath');
  assert.equal(up.code, 0, up.stderr);
  await bad(['up', '--name', name], new RegExp(`lab "${name}" exists already \\(netns sluice-${name}-`));
  await bad(['exec', '--name', name, 'c', '--', 'true'], new RegExp(`unknown pod "c" in lab "${name}" \\(pods: "a"\\)`));
  await bad(['status', '--name', name, '-o', 'yaml'], /output "yaml": want text or json/);
  await bad(['reload', '--name', name, 'a'], /has no datapath to reload/);
  assert.equal((await sluice('down', '--name', name)).code, 0);
});
