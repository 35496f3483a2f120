/**
 * The README is the front door: every setting the config module understands is documented there by
 * name, so that a new setting cannot land undocumented; and every curl example can be pasted as
 * written, with no `…` standing in for part of it, no worker id the default service does not have and no
 * job name it refuses.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/config.js';
import { CONFIG_VARIABLES } from '../../src/config/env-schema.js';
import { DELAYED_QUEUE, workerIdFor } from '../../src/contracts/names.js';
import { DUMMY_EXAMPLE_JOB_NAME } from '../../src/execution/handlers.js';

const readme = (): string => readFileSync('README.md', 'utf8');

/** Every shell command of the README's `sh` blocks that runs curl, its continued lines joined. */
function curlCommands(text: string): string[] {
  const blocks = [...text.matchAll(/^\s*```sh\n([\s\S]*?)^\s*```/gm)].map((match) => match[1] ?? '');
  return blocks
    .flatMap((block) => block.replace(/\\\n/g, ' ').split('\n'))
    .map((line) => line.trim())
    .filter((line) => /\bcurl\b/.test(line));
}

test('every configuration variable is named in the README', () => {
  // PATH is read only to find redis-server, as the README says where it describes `npm start`.
  const missing = CONFIG_VARIABLES.filter((name) => name !== 'PATH' && !readme().includes(`\`${name}\``));
  assert.deepEqual(missing, []);
  assert.match(readme(), /redis-server` from PATH/);
});

test('every curl example can be pasted as written: no … in it, and only worker ids the default service has', () => {
  const text = readme();
  const commands = curlCommands(text);
  assert.ok(commands.length >= 10, `the examples were found: ${commands.length}`);
  const elided = commands.filter((command) => command.includes('…'));
  assert.deepEqual(elided, [], 'a curl example with … in it cannot be pasted');

  // The examples name the HOST_ID they were made with; the default service has WORKERS ids of it.
  const start = /`HOST_ID=([A-Za-z0-9_.-]+) DUMMY_JOB_NAMES=([A-Za-z0-9_.:,-]+) npm start`/.exec(text);
  const [, hostId, dummyJobNames] = start ?? [];
  assert.ok(hostId && dummyJobNames, 'the README says which HOST_ID and DUMMY_JOB_NAMES its examples assume');
  const { processes } = loadConfig({});
  const known = new Set([
    ...Array.from({ length: processes }, (_, index) => workerIdFor(hostId, index)),
    DELAYED_QUEUE,
  ]);
  const named = commands.flatMap((command) => [
    ...[...command.matchAll(/[?&]worker=([^&'"\s]+)/g)].map((match) => match[1] ?? ''),
    // A job id's worker part, where the path holds a literal id rather than a variable.
    ...[...command.matchAll(/\/jobs\/([^$/~\s'"?]+)~/g)].map((match) => match[1] ?? ''),
    ...[...command.matchAll(new RegExp(`\\b${hostId.replace(/\./g, '\\.')}-\\d+\\b`, 'g'))].map((match) => match[0]),
  ]);
  assert.ok(named.length > 0, 'some example names a worker');
  const unknown = named.filter((id) => !known.has(id));
  assert.deepEqual(unknown, [], `worker ids the default service (${[...known].join(', ')}) does not have`);

  // Every job name an example sends is one that service accepts: a handler file, or one the dummy runs.
  const accepted = new Set([
    DUMMY_EXAMPLE_JOB_NAME,
    ...dummyJobNames.split(','),
    ...readdirSync('workers/handlers').map((file) => basename(file, '.ts')),
  ]);
  const jobNames = commands.flatMap((command) =>
    [...command.matchAll(/"jobName":\s*"([^"]*)"/g)].map((match) => match[1] ?? ''),
  );
  assert.ok(jobNames.length > 0, 'some example sends a task');
  assert.deepEqual(
    jobNames.filter((name) => !accepted.has(name)),
    [],
    `job names that service refuses (it takes ${[...accepted].join(', ')})`,
  );
});
