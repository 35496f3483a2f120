import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createHandlerRegistry, DUMMY_EXAMPLE_JOB_NAME, type HandlerRegistry } from '../../src/execution/handlers.js';

describe('createHandlerRegistry', () => {
  let root = '';
  let directory = '';
  let fallback = '';
  let registry: HandlerRegistry | undefined;

  const get = (): HandlerRegistry => {
    assert.ok(registry !== undefined);
    return registry;
  };

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'bullpen-handlers-'));
    directory = join(root, 'handlers');
    mkdirSync(directory);
    // Written in reverse order (libuv lists directories sorted anyway; the registry promises sorted names).
    writeFileSync(join(directory, 'b.js'), 'export default () => "b";\n');
    writeFileSync(join(directory, 'a.js'), 'export default () => "a";\n');
    writeFileSync(join(directory, 'notes.txt'), 'not a handler\n');
    writeFileSync(join(directory, 'c.mjs'), 'export default () => "c";\n');
    fallback = join(root, 'dummy.js');
    writeFileSync(fallback, 'export default () => "dummy";\n');
    registry = createHandlerRegistry({ directory, fallback, dummyJobNames: ['resize'] });
  });

  after(() => {
    rmSync(root, { recursive: true, force: true });
  });

  test('names lists the .js files without extension, sorted', () => {
    assert.deepEqual([...get().names], ['a', 'b']);
  });

  test('names is frozen', () => {
    assert.ok(Object.isFrozen(get().names));
  });

  test('a known name resolves to the file URL of its file', () => {
    assert.equal(get().resolve('a'), pathToFileURL(join(directory, 'a.js')).href);
    assert.equal(get().resolve('b'), pathToFileURL(join(directory, 'b.js')).href);
    assert.ok(get().resolve('a').startsWith('file://'));
  });

  test('unknown names resolve to the fallback', () => {
    const fallbackUrl = pathToFileURL(fallback).href;
    for (const name of ['unknown', 'notes', 'notes.txt', 'c', 'A']) {
      assert.equal(get().resolve(name), fallbackUrl, name);
    }
  });

  test('traversal-looking and odd names resolve to the fallback', () => {
    const fallbackUrl = pathToFileURL(fallback).href;
    for (const name of [
      '../a',
      './a',
      'a.js',
      '',
      `${directory}/a`,
      join(directory, 'a.js'),
      '__proto__',
      'constructor',
      'toString',
    ]) {
      assert.equal(get().resolve(name), fallbackUrl, JSON.stringify(name));
    }
  });

  test('an empty directory gives no names and always the fallback', () => {
    const empty = join(root, 'empty');
    mkdirSync(empty);
    const registryOfEmpty = createHandlerRegistry({ directory: empty, fallback, dummyJobNames: [] });
    assert.deepEqual([...registryOfEmpty.names], []);
    assert.equal(registryOfEmpty.resolve('a'), pathToFileURL(fallback).href);
  });

  test('the folder is listed once: files added later are not seen', () => {
    writeFileSync(join(directory, 'late.js'), 'export default () => "late";\n');
    assert.equal(get().resolve('late'), pathToFileURL(fallback).href);
    assert.ok(!get().names.includes('late'));
  });

  test('accepts the names of its files, the dummy example and DUMMY_JOB_NAMES; no other', () => {
    for (const name of ['a', 'b', DUMMY_EXAMPLE_JOB_NAME, 'resize']) assert.ok(get().accepts(name), name);
    for (const name of ['c', 'notes', 'A', 'resize-image', '*', 'videoprocessing'])
      assert.ok(!get().accepts(name), name);
    assert.deepEqual([...get().accepted], ['a', 'b', 'resize', 'videoProcessing']);
    assert.ok(Object.isFrozen(get().accepted));
    // What it does not accept still resolves to the dummy: such a job was accepted by a service set up otherwise.
    assert.equal(get().resolve('resize-image'), pathToFileURL(fallback).href);
  });

  test('with DUMMY_JOB_NAMES=*, any name is accepted', () => {
    const any = createHandlerRegistry({ directory, fallback, dummyJobNames: '*' });
    for (const name of ['a', 'typo', DUMMY_EXAMPLE_JOB_NAME]) assert.ok(any.accepts(name), name);
    assert.ok(any.accepted.includes('*'));
  });

  test('a missing directory throws', () => {
    assert.throws(() => createHandlerRegistry({ directory: join(root, 'missing'), fallback, dummyJobNames: '*' }), {
      code: 'ENOENT',
    });
  });
});
