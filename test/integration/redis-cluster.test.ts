/**
 * What the design for issue 12 (Bullpen on Redis Cluster) relies on, proved against a real 3-master
 * cluster (test/support/redis-cluster.ts), with no Bullpen code involved yet:
 *
 * - BullMQ works through an ioredis `Cluster` when each queue name carries its own `{hash tag}`;
 *   different tags spread queues over the masters; a tag in the prefix instead puts every queue in
 *   one slot; no tag at all fails with CROSSSLOT.
 * - Redis itself enforces "every script's KEYS in one slot" (CROSSSLOT), and MULTI is refused across
 *   slots (by ioredis across masters, by Redis within one master). A key a script builds itself is
 *   refused only when it lives on another master: that part of the rule is ours to keep.
 * - Classic pub/sub reaches a subscriber whatever node a message is published on.
 * - During a slot migration ioredis follows ASK by itself; a multi-key command on a slot whose keys
 *   are split gets TRYAGAIN, which ioredis retries only for a while. A reshard under load reaches the
 *   caller as no error at all.
 * - A master restarted with AOF keeps its keys, the cluster returns to `cluster_state:ok`, and both
 *   the ioredis Cluster client and a BullMQ Worker carry on by themselves.
 *
 * Needs `redis-server` and `redis-cli` on PATH: without them the tests are skipped, except in CI
 * (`CI` set), where they fail saying how to install them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Queue, Worker } from 'bullmq';
import { Cluster, Redis, type ClusterOptions } from 'ioredis';
import {
  CLUSTER_SLOTS,
  skipUnlessClusterTools,
  startRedisCluster,
  type TestRedisCluster,
} from '../support/redis-cluster.js';
import { waitFor } from '../support/wait.js';

const PREFIX = 'bullpen';
const skip = skipUnlessClusterTools();

/** The scripts these tests register, as ioredis adds them to a client at run time. */
interface TestScripts {
  bpTestPair(first: string, second: string): Promise<[string | null, string | null]>;
  bpTestMget(first: string, second: string): Promise<[string | null, string | null]>;
  bpTestTouch(key: string, other: string): Promise<string>;
  bpTestWhere(key: string): Promise<string>;
  bpTestCount(counter: string, list: string): Promise<[number, number]>;
}

function withScripts(client: Cluster): Cluster & TestScripts {
  return client as Cluster & TestScripts;
}

/**
 * A command that must settle: a Cluster client that never came back would queue it for ever, and the
 * test would hang instead of failing. Generous; never an assertion on time.
 */
const SETTLE_MS = 30_000;
function settles<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${SETTLE_MS} ms`)), SETTLE_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A Cluster client of its own for one test, closed by `closeAll`. */
const opened: Cluster[] = [];
async function connectCluster(cluster: TestRedisCluster, options: ClusterOptions = {}): Promise<Cluster> {
  const client = new Cluster(
    cluster.nodes.map(({ host, port }) => ({ host, port })),
    options,
  );
  opened.push(client);
  client.on('error', () => {}); // node errors while one is stopped are expected; commands report their own
  await waitFor(() => client.status === 'ready', { timeoutMs: 30_000, what: 'a ready Cluster client' });
  return client;
}
/** A plain connection to one node, for what only that node can say. */
const plain: Redis[] = [];
function connectNode(port: number): Redis {
  const redis = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 3 });
  redis.on('error', () => {}); // its node may be stopped on purpose; commands report their own errors
  plain.push(redis);
  return redis;
}
function closeAll(): void {
  for (const client of opened.splice(0)) client.disconnect();
  for (const redis of plain.splice(0)) redis.disconnect();
}

interface Tag {
  readonly tag: string;
  readonly slot: number;
  readonly master: number;
}

/** The first `count` tags `{<stem><i>}` whose slot and master `accept` takes (slot owners as they are now). */
async function tagsWhere(
  cluster: TestRedisCluster,
  stem: string,
  count: number,
  accept: (slot: number, master: number) => boolean,
): Promise<Tag[]> {
  const owners = await slotOwners(cluster.client);
  const found: Tag[] = [];
  for (let i = 0; found.length < count; i += 1) {
    if (i > 100_000) throw new Error(`fewer than ${count} tags {${stem}…} fit`);
    const tag = `{${stem}${i}}`;
    const slot = await cluster.slotOf(tag);
    const master = owners.get(slot) ?? 0;
    if (accept(slot, master)) found.push({ tag, slot, master });
  }
  return found;
}

async function tagWhere(
  cluster: TestRedisCluster,
  stem: string,
  accept: (slot: number, master: number) => boolean = () => true,
): Promise<Tag> {
  const [found] = await tagsWhere(cluster, stem, 1, accept);
  return found ?? assert.fail(`no tag {${stem}…} fits`);
}

/** Owners of every slot, from CLUSTER SLOTS: slot -> master port. */
async function slotOwners(client: Cluster): Promise<Map<number, number>> {
  const owners = new Map<number, number>();
  for (const [start, end, master] of await client.cluster('SLOTS')) {
    for (let slot = start; slot <= end; slot += 1) owners.set(slot, Number(master?.[1]));
  }
  return owners;
}

describe('a real 3-master Redis Cluster', { skip, timeout: 300_000 }, () => {
  let cluster: TestRedisCluster;

  before(async () => {
    cluster = await startRedisCluster({ masters: 3 });
  });
  after(async () => {
    closeAll();
    await cluster?.stop();
  });

  test('comes up with 3 masters that together cover all 16384 slots', async () => {
    assert.equal(cluster.nodes.length, 3);
    assert.equal(cluster.nodesSpec, cluster.nodes.map(({ port }) => `127.0.0.1:${port}`).join(','));
    assert.match(cluster.nodesSpec, /^127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+$/);

    const owners = await slotOwners(cluster.client);
    assert.equal(owners.size, CLUSTER_SLOTS, 'every slot has a master');
    assert.deepEqual(
      [...new Set(owners.values())].sort(),
      cluster.nodes.map(({ port }) => port).sort(),
      'each node is the master of some slots',
    );
    for (let index = 0; index < cluster.nodes.length; index += 1) {
      const info = await cluster.clusterInfo(index);
      assert.equal(info.cluster_state, 'ok');
      assert.equal(info.cluster_slots_assigned, String(CLUSTER_SLOTS));
      assert.equal(info.cluster_size, '3', 'three masters serve slots');
    }
  });

  test('BullMQ runs on a Cluster connection when each queue name has its own hash tag, spread over the masters', async () => {
    const names = ['{tasks.h-0}', '{tasks.h-1}', '{tasks.h-2}', '{tasks.h-3}'];
    // A Worker duplicates its connection twice (commands and blocking); BullMQ refuses a connection
    // whose per-node maxRetriesPerRequest is not null, which a Cluster takes in redisOptions.
    const consumer = await connectCluster(cluster, { redisOptions: { maxRetriesPerRequest: null } });
    const queues = names.map((name) => new Queue(name, { connection: cluster.client, prefix: PREFIX }));
    const errors: Error[] = [];
    const workers = names.map((name) => {
      const worker = new Worker(name, (job) => Promise.resolve({ doubled: (job.data as { n: number }).n * 2 }), {
        connection: consumer,
        prefix: PREFIX,
        concurrency: 2,
      });
      worker.on('error', (error) => errors.push(error));
      return worker;
    });
    try {
      const jobs = await Promise.all(
        queues.map((queue, q) => Promise.all([1, 2, 3].map((n) => queue.add('double', { n: n + 10 * q })))),
      );
      for (const [q, queue] of queues.entries()) {
        for (const [n, added] of (jobs[q] ?? []).entries()) {
          const id = added.id ?? assert.fail('BullMQ gave the job no id');
          await waitFor(async () => (await queue.getJobState(id)) === 'completed', {
            what: `job ${id} of ${queue.name} to complete`,
          });
          const job = (await queue.getJob(id)) ?? assert.fail(`job ${id} is gone`);
          assert.deepEqual(job.returnvalue, { doubled: (n + 1 + 10 * q) * 2 });
          assert.equal(job.attemptsMade, 1);
        }
        assert.equal((await queue.getJobCounts('completed')).completed, 3);
      }
      assert.deepEqual(errors, [], 'no Worker reported an error');

      // Every key of a queue is `bullpen:{tag}:...`: one slot, the tag's.
      const masters = new Set<number>();
      for (const [q, name] of names.entries()) {
        const tagSlot = await cluster.slotOf(name);
        const jobId = jobs[q]?.[0]?.id ?? assert.fail('no first job');
        const keys = ['wait', 'meta', 'id', 'events', 'completed', jobId].map((part) => `${PREFIX}:${name}:${part}`);
        for (const key of keys) assert.equal(await cluster.slotOf(key), tagSlot, `${key} is in the tag's slot`);
        assert.equal(await cluster.client.exists(`${PREFIX}:${name}:meta`), 1, `${name}'s meta key exists`);
        masters.add(await cluster.masterOf(`${PREFIX}:${name}:wait`));
      }
      assert.ok(masters.size >= 2, `queues with different tags land on ${masters.size} master(s), expected 2 or 3`);
    } finally {
      await Promise.all(workers.map((worker) => worker.close()));
      await Promise.all(queues.map((queue) => queue.close()));
    }
  });

  test('a BullMQ prefix needs no tag; a tag in the prefix wins over the name’s; no tag at all is CROSSSLOT', async () => {
    const untagged = new Queue('tasks.untagged', { connection: cluster.client, prefix: PREFIX });
    const prefixTagged = ['tasks.a', 'tasks.b', '{tasks.h-2}'].map(
      (name) => new Queue(name, { connection: cluster.client, prefix: `{${PREFIX}}` }),
    );
    try {
      await assert.rejects(untagged.add('x', {}), /CROSSSLOT/, 'a queue without any tag cannot add a job');

      const prefixSlot = await cluster.slotOf(`{${PREFIX}}`);
      for (const queue of prefixTagged) {
        const job = await queue.add('x', { ok: true });
        assert.equal(await queue.getJobState(job.id ?? ''), 'waiting');
        // Redis hashes the first {...} of a key: the prefix's tag, so every queue shares one slot.
        assert.equal(await cluster.slotOf(`{${PREFIX}}:${queue.name}:wait`), prefixSlot);
      }
      assert.notEqual(
        await cluster.slotOf('{tasks.h-2}'),
        prefixSlot,
        'the name tag alone would have chosen another slot',
      );
    } finally {
      await untagged.close();
      await Promise.all(prefixTagged.map((queue) => queue.close()));
    }
  });

  test('a script runs on the master of its first key; Redis refuses KEYS that span two slots (CROSSSLOT)', async () => {
    const client = withScripts(cluster.client);
    client.defineCommand('bpTestPair', {
      numberOfKeys: 2,
      lua: "redis.call('SET', KEYS[1], 'one'); redis.call('SET', KEYS[2], 'two'); return redis.call('MGET', KEYS[1], KEYS[2])",
    });
    client.defineCommand('bpTestWhere', {
      numberOfKeys: 1,
      lua: "return string.match(redis.call('INFO', 'server'), 'tcp_port:(%d+)')",
    });
    client.defineCommand('bpTestTouch', {
      numberOfKeys: 1,
      lua: "redis.call('SET', KEYS[1], 'declared'); return redis.call('SET', ARGV[1], 'undeclared')",
    });

    // One slot: works, wherever that slot lives.
    assert.deepEqual(await client.bpTestPair('{lua}:a', '{lua}:b'), ['one', 'two']);
    for (const node of cluster.nodes) {
      const { tag } = await tagWhere(cluster, `where-${node.port}-`, (_, master) => master === node.port);
      assert.equal(Number(await client.bpTestWhere(`${tag}:k`)), node.port, `a script on ${tag} runs on its master`);
    }

    // Two slots on two masters, and two slots on one master: both refused by Redis.
    const first = await tagWhere(cluster, 'x-');
    const onOther = await tagWhere(cluster, 'y-', (_, master) => master !== first.master);
    const onSame = await tagWhere(cluster, 'z-', (slot, master) => master === first.master && slot !== first.slot);
    await assert.rejects(client.bpTestPair(`${first.tag}:a`, `${onOther.tag}:b`), /CROSSSLOT/);
    await assert.rejects(client.bpTestPair(`${first.tag}:a`, `${onSame.tag}:b`), /CROSSSLOT/);
    assert.equal(await client.exists(`${first.tag}:a`), 0, 'a refused script wrote nothing');

    // A key the script builds itself (not in KEYS): refused on another master, but NOT within one.
    await assert.rejects(client.bpTestTouch(`${first.tag}:c`, `${onOther.tag}:d`), /non local key/);
    assert.equal(await client.bpTestTouch(`${first.tag}:e`, `${onSame.tag}:f`), 'OK');
  });

  test('MULTI across two slots is refused (by ioredis across masters, by Redis within one); within one slot it works', async () => {
    const client = cluster.client;
    const a = await tagWhere(cluster, 'm-');
    const elsewhere = await tagWhere(cluster, 'n-', (_, master) => master !== a.master);
    const sameMaster = await tagWhere(cluster, 'o-', (slot, master) => master === a.master && slot !== a.slot);

    await assert.rejects(
      client.multi().set(`${a.tag}:1`, '1').set(`${elsewhere.tag}:2`, '2').exec(),
      /same slots allocation group/,
    );
    await assert.rejects(client.multi().set(`${a.tag}:1`, '1').set(`${sameMaster.tag}:2`, '2').exec(), /CROSSSLOT/);
    assert.equal(await client.exists(`${a.tag}:1`, `${a.tag}:3`), 0, 'a refused MULTI wrote nothing');

    const done = await client.multi().set(`${a.tag}:1`, '1').incr(`${a.tag}:3`).get(`${a.tag}:1`).exec();
    assert.deepEqual(done, [
      [null, 'OK'],
      [null, 1],
      [null, '1'],
    ]);
  });

  test('pub/sub: a message published on any node reaches a Cluster subscriber connected to another', async () => {
    const channel = `${PREFIX}:test:cancels`;
    const subscriber = await connectCluster(cluster);
    const received: string[] = [];
    subscriber.on('message', (from: string, message: string) => {
      if (from === channel) received.push(message);
    });
    await subscriber.subscribe(channel);

    // PUBSUB NUMSUB is local to a node: it says which node holds the subscription.
    const counts = await Promise.all(
      cluster.nodes.map(async ({ port }) => {
        const [, count] = (await connectNode(port).pubsub('NUMSUB', channel)) as [string, number];
        return count;
      }),
    );
    assert.deepEqual(counts.slice().sort(), [0, 0, 1], 'the subscription lives on exactly one node');
    const home = cluster.nodes[counts.indexOf(1)]?.port;

    for (const { port } of cluster.nodes) await connectNode(port).publish(channel, `via ${port}`);
    await waitFor(() => received.length === 3, { timeoutMs: 10_000, what: 'three messages' });
    assert.deepEqual(received.slice().sort(), cluster.nodes.map(({ port }) => `via ${port}`).sort());
    assert.ok(
      received.some((message) => message !== `via ${home}`),
      'a message published on a node other than the subscriber’s arrived',
    );
  });

  test('mid-migration: ioredis follows ASK; a multi-key call on split keys gets TRYAGAIN, retried only for a while', async () => {
    const { tag, slot, master } = await tagWhere(cluster, 'mig-');
    const source = cluster.nodes.find(({ port }) => port === master) ?? assert.fail('no source');
    const target = cluster.nodes.find(({ port }) => port !== master) ?? assert.fail('no target');
    const keys = Array.from({ length: 10 }, (_, i) => `${tag}:k${i}`);
    for (const key of keys) await cluster.client.set(key, `value of ${key}`);

    const from = connectNode(source.port);
    const to = connectNode(target.port);
    let finished = false;
    /** Ends the migration: the rest of the keys, then the slot, to the target. Later tests need a clean cluster. */
    const finish = async () => {
      if (finished) return;
      finished = true;
      const left = await from.cluster('GETKEYSINSLOT', slot, 1_000);
      if (left.length > 0) await from.migrate(target.host, target.port, '', 0, 5_000, 'KEYS', ...left);
      for (const node of [to, from]) await node.cluster('SETSLOT', slot, 'NODE', target.id);
    };
    await to.cluster('SETSLOT', slot, 'IMPORTING', source.id);
    await from.cluster('SETSLOT', slot, 'MIGRATING', target.id);
    try {
      await from.migrate(target.host, target.port, '', 0, 5_000, 'KEYS', ...keys.slice(0, 5));
      assert.equal(await to.cluster('COUNTKEYSINSLOT', slot), 5, 'half the keys have moved');

      // Single-key commands: the source answers ASK for keys it no longer has, ioredis follows it.
      const client = withScripts(cluster.client);
      assert.equal(await client.get(keys[0] ?? ''), `value of ${keys[0]}`, 'a moved key, through ASK');
      assert.equal(await client.get(keys[9] ?? ''), `value of ${keys[9]}`, 'a key still on the source');
      assert.equal(await client.set(`${tag}:new`, 'new'), 'OK');
      assert.equal(await to.cluster('COUNTKEYSINSLOT', slot), 6, 'a new key of a migrating slot is made on the target');

      // Keys split between the nodes: the source says TRYAGAIN. ioredis retries a script on a random
      // node (which says MOVED) every retryDelayOnTryAgain, until maxRedirections; a MULTI not at all.
      client.defineCommand('bpTestMget', { numberOfKeys: 2, lua: "return redis.call('MGET', KEYS[1], KEYS[2])" });
      await assert.rejects(
        client.bpTestMget(keys[0] ?? '', keys[9] ?? ''),
        /Too many Cluster redirections\. Last error: ReplyError: (TRYAGAIN|MOVED)/,
      );
      await assert.rejects(
        client
          .multi()
          .get(keys[0] ?? '')
          .get(keys[9] ?? '')
          .exec(),
        /TRYAGAIN/,
      );

      // A client that retries TRYAGAIN long enough gets its answer once the migration ends.
      const patient = withScripts(await connectCluster(cluster, { retryDelayOnTryAgain: 500, maxRedirections: 60 }));
      patient.defineCommand('bpTestMget', { numberOfKeys: 2, lua: "return redis.call('MGET', KEYS[1], KEYS[2])" });
      const pending = patient.bpTestMget(keys[0] ?? '', keys[9] ?? '');
      await finish();
      assert.deepEqual(await pending, [`value of ${keys[0]}`, `value of ${keys[9]}`]);
      assert.equal(await cluster.masterOf(tag), target.port, 'the slot now belongs to the target');
      assert.equal(await to.cluster('COUNTKEYSINSLOT', slot), 11, 'every key of the slot is on the target');
      assert.deepEqual(await client.bpTestMget(keys[0] ?? '', keys[9] ?? ''), [
        `value of ${keys[0]}`,
        `value of ${keys[9]}`,
      ]);
    } finally {
      await finish();
    }
  });

  test('redis-cli --cluster reshard under load: no error reaches the caller, counters and jobs are intact', async (t) => {
    const SLOTS = 300;
    const WRITERS = 4;
    /** Bounds the load even if the reshard hangs until its own time-out. */
    const MAX_OPS_PER_WRITER = 20_000;
    const source = cluster.nodes[0] ?? assert.fail('no node 0');
    const target = cluster.nodes[1] ?? assert.fail('no node 1');
    // redis-cli moves the lowest-numbered slots of the source.
    const owners = await slotOwners(cluster.client);
    const moving = new Set(
      [...owners.entries()]
        .filter(([, port]) => port === source.port)
        .map(([slot]) => slot)
        .sort((a, b) => a - b)
        .slice(0, SLOTS),
    );
    const tags = (await tagsWhere(cluster, 'r-', 40, (slot) => moving.has(slot))).map(({ tag }) => tag);
    const ITEMS = 100;
    for (const tag of tags) {
      await cluster.client.set(`${tag}:n`, 0);
      await cluster.client.rpush(`${tag}:list`, ...Array.from({ length: ITEMS }, (_, i) => `item-${i}`));
    }

    // The load: single-key commands and a two-key script, on a client tuned to wait out TRYAGAIN.
    const load = withScripts(await connectCluster(cluster, { retryDelayOnTryAgain: 200, maxRedirections: 50 }));
    load.defineCommand('bpTestCount', {
      numberOfKeys: 2,
      lua: "return {redis.call('INCR', KEYS[1]), redis.call('LLEN', KEYS[2])}",
    });
    const consumer = await connectCluster(cluster, {
      retryDelayOnTryAgain: 200,
      maxRedirections: 50,
      redisOptions: { maxRetriesPerRequest: null },
    });
    const queueName = tags[0] ?? assert.fail('no tag');
    const queue = new Queue(queueName, { connection: load, prefix: PREFIX });
    const worker = new Worker(queueName, (job) => Promise.resolve((job.data as { i: number }).i), {
      connection: consumer,
      prefix: PREFIX,
      concurrency: 4,
    });
    const workerErrors: Error[] = [];
    worker.on('error', (error) => workerErrors.push(error));

    const errors: string[] = [];
    const increments = new Map<string, number>();
    let ops = 0;
    let added = 0;
    let resharding = true;
    const writer = async (offset: number) => {
      for (let n = 0; resharding && n < MAX_OPS_PER_WRITER; n += 1) {
        const i = offset + n;
        const tag = tags[i % tags.length] ?? '';
        try {
          const useScript = i % 2 === 0;
          const [, length] = useScript
            ? await load.bpTestCount(`${tag}:n`, `${tag}:list`)
            : [await load.incr(`${tag}:n`), await load.llen(`${tag}:list`)];
          increments.set(tag, (increments.get(tag) ?? 0) + 1);
          if (length !== ITEMS) errors.push(`${tag}:list has ${length} items`);
          if (i % 20 === 0) {
            await queue.add('n', { i });
            added += 1;
          }
          ops += 1;
        } catch (error) {
          errors.push((error as Error).message);
        }
      }
    };
    try {
      const writers = Array.from({ length: WRITERS }, (_, w) => writer(w * 7_919));
      await waitFor(() => ops > 50, { what: 'the load to run' });
      const opsBefore = ops;
      const output = await cluster.reshard(0, 1, SLOTS);
      const opsDuring = ops - opsBefore;
      resharding = false;
      await Promise.all(writers);

      assert.deepEqual(errors, [], 'no error reached the caller');
      assert.ok(opsDuring > 0, 'the load ran while the slots moved');
      t.diagnostic(`${opsDuring} calls and ${added} jobs added while ${SLOTS} slots moved`);
      assert.match(output, /Moving slot/);
      for (const tag of tags) {
        assert.equal(await cluster.masterOf(tag), target.port, `${tag} moved to the target`);
        assert.equal(Number(await cluster.client.get(`${tag}:n`)), increments.get(tag) ?? 0, `${tag}'s counter`);
        assert.equal(await cluster.client.llen(`${tag}:list`), ITEMS);
      }
      await waitFor(async () => (await queue.getJobCounts('completed')).completed === added, {
        what: `${added} jobs added during the reshard to complete`,
      });
      assert.equal((await queue.getJobCounts('failed')).failed, 0);
      assert.deepEqual(workerErrors, [], 'the Worker reported no error');
      assert.equal(await cluster.masterOf(`${PREFIX}:${queueName}:wait`), target.port, 'the queue moved too');
    } finally {
      resharding = false;
      await worker.close();
      await queue.close();
    }
  });
});

describe('a master restarted with AOF', { skip, timeout: 300_000 }, () => {
  let cluster: TestRedisCluster;

  before(async () => {
    // A short node time-out, so the surviving masters see the failure (and clear it) in seconds.
    cluster = await startRedisCluster({ masters: 3, appendOnly: true, nodeTimeoutMs: 3_000 });
  });
  after(async () => {
    closeAll();
    await cluster?.stop();
  });

  test('keeps its keys, the cluster returns to ok, and the Cluster client and a BullMQ Worker carry on by themselves', async (t) => {
    const STOPPED = 1;
    const stoppedPort = cluster.nodes[STOPPED]?.port ?? assert.fail('no node 1');
    const client = cluster.client;
    const perNode = await Promise.all(
      cluster.nodes.map(
        async ({ port }) => (await tagWhere(cluster, `aof-${port}-`, (_, master) => master === port)).tag,
      ),
    );
    for (const tag of perNode) {
      await client.set(`${tag}:s`, `kept ${tag}`);
      await client.rpush(`${tag}:l`, 'a', 'b', 'c');
    }

    const queueName = perNode[STOPPED] ?? assert.fail('no tag');
    const consumer = await connectCluster(cluster, { redisOptions: { maxRetriesPerRequest: null } });
    const queue = new Queue(queueName, { connection: client, prefix: PREFIX });
    const worker = new Worker(queueName, (job) => Promise.resolve(job.name), { connection: consumer, prefix: PREFIX });
    const workerErrors: string[] = [];
    worker.on('error', (error) => workerErrors.push(error.message)); // it loses its node: expected until it is back
    try {
      const before = await queue.add('before', {});
      await waitFor(async () => (await settles(queue.getJobState(before.id ?? ''), 'getJobState')) === 'completed', {
        what: 'the first job',
      });

      const dbsize = await connectNode(stoppedPort).dbsize();
      await cluster.stopNode(STOPPED);
      await waitFor(async () => (await cluster.clusterInfo(0)).cluster_state === 'fail', {
        timeoutMs: 60_000,
        what: 'the surviving masters to see the cluster fail',
      });
      // cluster-require-full-coverage (default yes): a master down means no slot is served anywhere. ioredis
      // retries CLUSTERDOWN (and, on a random node, the stopped master's "Connection is closed") and gives up.
      await assert.rejects(
        settles(client.get(`${perNode[0]}:s`), 'a GET while the cluster is down'),
        /Too many Cluster redirections\. Last error: .*(CLUSTERDOWN|Connection is closed)/,
        'a key of a healthy master is refused too',
      );

      const restartedAt = Date.now();
      await cluster.startNode(STOPPED);
      await cluster.waitUntilOk(120_000);
      t.diagnostic(`cluster_state:ok ${Date.now() - restartedAt} ms after the master was started again`);

      assert.equal(
        await settles(connectNode(stoppedPort).dbsize(), 'DBSIZE'),
        dbsize,
        'the restarted master loaded its keys',
      );
      for (const tag of perNode) {
        const value = await waitFor(() => settles(client.get(`${tag}:s`), 'a GET after the restart'), {
          timeoutMs: 60_000,
          what: `the Cluster client to read ${tag}:s again`,
        });
        assert.equal(value, `kept ${tag}`);
        assert.deepEqual(await settles(client.lrange(`${tag}:l`, 0, -1), 'LRANGE'), ['a', 'b', 'c']);
      }
      assert.equal(
        await settles(queue.getJobState(before.id ?? ''), 'getJobState'),
        'completed',
        'the job stayed completed',
      );

      const afterRestart = await waitFor(() => settles(queue.add('after', {}), 'Queue.add'), {
        timeoutMs: 60_000,
        what: 'the Queue to add again',
      });
      await waitFor(
        async () => (await settles(queue.getJobState(afterRestart.id ?? ''), 'getJobState')) === 'completed',
        {
          timeoutMs: 120_000,
          what: 'the same Worker to process a job added after the restart',
        },
      );
      assert.equal((await settles(queue.getJob(afterRestart.id ?? ''), 'getJob'))?.returnvalue, 'after');
      t.diagnostic(`the Worker reported ${workerErrors.length} error(s), first: ${workerErrors[0] ?? 'none'}`);
    } finally {
      // A Worker cannot close while its master is away: bring it back first when the test failed early.
      if (!cluster.isRunning(STOPPED)) await cluster.startNode(STOPPED);
      await settles(worker.close(), 'Worker.close');
      await settles(queue.close(), 'Queue.close');
    }
  });
});
