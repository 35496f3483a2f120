/**
 * The shape of the code: imports run one way, down the layers the README's layout section lists, and
 * no files import each other in a circle. A new import that runs back up (the ledger reaching into
 * the queue layer, a route into the composition root) or closes a circle fails here, with the files
 * that do it, so the shape outlives whoever drew it.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'node:test';

/**
 * The folders of `src/`, top to bottom (a top-level file stands for itself). A file may import its own
 * folder and any folder on a lower line; folders on one line are siblings and import neither each
 * other nor anything above them.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['main.ts'],
  ['primary', 'process'],
  ['config'],
  ['http'],
  ['schedules'],
  ['enqueue', 'idempotency', 'cancel', 'expiry'],
  ['jobs', 'ownership', 'execution', 'fairness'],
  ['metrics'],
  ['queue'],
  ['ledger'],
  ['local-redis'],
  ['redis'],
  ['contracts', 'platform', 'logging', 'tracing'],
  ['errors.ts'],
];

/** The thread side may use the contract between the service and its threads, and nothing else of `src/`. */
const WORKERS_MAY_IMPORT = ['src/contracts/thread.ts'];

const IMPORT =
  /(?:import|export)\s[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\s*\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)|import\s+['"](\.{1,2}\/[^'"]+)['"]/g;

function sourceFiles(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root).flatMap((name) => {
    const path = join(root, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

/** Every file of `src/` and `workers/`, with the files of the tree it imports (relative imports only). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of [...sourceFiles('src'), ...sourceFiles('workers')]) {
    const targets = [...readFileSync(file, 'utf8').matchAll(IMPORT)].map((match) => {
      const specifier = match[1] ?? match[2] ?? match[3] ?? '';
      return relative('.', normalize(join(dirname(file), specifier))).replace(/\.js$/, '.ts');
    });
    graph.set(
      file,
      targets.filter((target) => graph.has(target) || existsSync(target)),
    );
  }
  return graph;
}

/** `src/ledger/ledger.ts` -> `ledger`; `src/main.ts` -> `main.ts`; outside `src/`, undefined. */
function layerOf(file: string): string | undefined {
  const [root, first] = file.split('/');
  return root === 'src' ? first : undefined;
}

function rankOf(folder: string): number {
  return LAYERS.findIndex((line) => line.includes(folder));
}

/** The circles of the graph (strongly connected components of more than one file), by Tarjan. */
function circles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, next);
    low.set(node, next);
    next += 1;
    stack.push(node);
    onStack.add(node);
    for (const target of graph.get(node) ?? []) {
      if (!index.has(target)) {
        visit(target);
        low.set(node, Math.min(low.get(node) ?? 0, low.get(target) ?? 0));
      } else if (onStack.has(target)) low.set(node, Math.min(low.get(node) ?? 0, index.get(target) ?? 0));
    }
    if (low.get(node) !== index.get(node)) return;
    const circle: string[] = [];
    for (let member = stack.pop(); member !== undefined; member = stack.pop()) {
      onStack.delete(member);
      circle.push(member);
      if (member === node) break;
    }
    if (circle.length > 1) found.push(circle.sort());
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return found;
}

const graph = importGraph();

test('every folder of src/ has its place in the layers', () => {
  const folders = new Set([...graph.keys()].flatMap((file) => layerOf(file) ?? []));
  assert.deepEqual(
    [...folders].filter((folder) => rankOf(folder) === -1),
    [],
    'a folder missing from LAYERS (and from the README layout)',
  );
  assert.deepEqual(
    LAYERS.flat().filter((folder) => !folders.has(folder)),
    [],
    'a layer that no longer exists',
  );
});

test('imports in src/ run down the layers, never up or sideways', () => {
  const wrong = [...graph].flatMap(([file, targets]) => {
    const from = layerOf(file);
    if (from === undefined) return [];
    return targets.flatMap((target) => {
      const to = layerOf(target);
      if (to === undefined) return [`${file} -> ${target} (outside src/)`];
      return to === from || rankOf(to) > rankOf(from) ? [] : [`${file} -> ${target}`];
    });
  });
  assert.deepEqual(wrong, []);
});

test('the thread side imports only the thread contract of src/', () => {
  const wrong = [...graph].flatMap(([file, targets]) =>
    file.startsWith('workers/')
      ? targets.filter((target) => target.startsWith('src/') && !WORKERS_MAY_IMPORT.includes(target))
      : [],
  );
  assert.deepEqual(wrong, []);
});

test('no files import each other in a circle', () => {
  assert.deepEqual(circles(graph), []);
});

test('a circle is found, and so is one through three files', () => {
  assert.deepEqual(
    circles(
      new Map([
        ['a', ['b']],
        ['b', ['a']],
        ['c', ['a']],
      ]),
    ),
    [['a', 'b']],
  );
  assert.deepEqual(
    circles(
      new Map([
        ['a', ['b']],
        ['b', ['c']],
        ['c', ['a']],
      ]),
    ),
    [['a', 'b', 'c']],
  );
});

test('the check sees what it checks: the graph holds the service and a known arrow', () => {
  assert.ok(graph.size > 80, `only ${graph.size} files read`);
  assert.ok(graph.get('src/ledger/ledger.ts')?.includes('src/redis/connections.ts'));
  assert.ok(graph.get('src/main.ts')?.includes('src/process/run.ts'), 'a dynamic import is an arrow too');
});
