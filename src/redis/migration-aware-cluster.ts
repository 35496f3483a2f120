/**
 * An ioredis Cluster that waits out slot migrations within one deadline. While a slot migrates, Redis
 * refuses scripts and transactions over its keys (TRYAGAIN, ASK); ioredis retries single commands,
 * but not a transaction after an ASK, and it bounds retries by count, not by time. The connections
 * of `connections.ts` that serve requests need both: a reshard must cost a client no error, and a
 * cluster that is down must still fail a request within its time-out.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, type ChainableCommander, type ClusterOptions, type Command } from './ioredis.js';
import { withDeadline } from '../platform/deadline.js';

/**
 * A transaction past its deadline fails as ioredis's own `commandTimeout` fails a command. As with a
 * timed-out command, what was sent may still run later; everything a request can leave behind is
 * undone or reconciled.
 */
const COMMAND_TIMED_OUT = 'Command timed out';

/**
 * How often a request's command refused by a migrating slot (TRYAGAIN) is sent again. ioredis sends
 * it to a random node first, which answers MOVED unless it serves the slot: two redirections a retry.
 */
export const TRYAGAIN_DELAY_MS = 50;

export interface MigrationPolicy {
  /**
   * The time limit of each command sent on its own, over every redirection and retry that ioredis
   * makes for it; undefined for none. (ioredis starts a command's `commandTimeout` only once a node
   * takes it, so the retries of a command refused before that, while a master is away, had no bound.)
   */
  readonly commandDeadlineMs: number | undefined;
  /** How long a transaction refused by a migrating slot is sent again; 0 for never. */
  readonly transactionPatienceMs: number;
}

/**
 * A Cluster whose commands have one deadline and whose transactions survive a slot migration. Both
 * are missing from ioredis: it retries a transaction refused with TRYAGAIN, but not after it has
 * followed an ASK (its retry then holds an ASKING that it takes for a write), and it gives up on one
 * after `maxRedirections`, without a time limit for the whole. A transaction refused by a migration
 * was discarded by Redis (nothing of it ran), so sending it again is safe.
 */
export class MigrationAwareCluster extends Cluster {
  constructor(
    nodes: ConstructorParameters<typeof Cluster>[0],
    options: ClusterOptions,
    private readonly policy: MigrationPolicy,
  ) {
    super(nodes, options);
  }

  override sendCommand(command: Command, stream?: Parameters<Cluster['sendCommand']>[1], node?: unknown): unknown {
    // A pipeline's commands come with their node, and their pipeline has its own limit (below).
    // Set before ioredis's own per-node timer, this one runs from the first attempt to the last.
    // (`policy` is set once the base constructor has returned: nothing is limited before.)
    const deadlineMs = (this.policy as MigrationPolicy | undefined)?.commandDeadlineMs;
    if (deadlineMs !== undefined && node === undefined) command.setTimeout(deadlineMs);
    return super.sendCommand(command, stream, node);
  }

  override multi(options: { pipeline: false }): Promise<'OK'>;
  override multi(): ChainableCommander;
  override multi(options: { pipeline: true }): ChainableCommander;
  override multi(commands?: unknown[][]): ChainableCommander;
  override multi(arg?: { pipeline: boolean } | unknown[][]): ChainableCommander | Promise<'OK'> {
    const base = Cluster.prototype.multi.bind(this) as (...args: unknown[]) => ChainableCommander | Promise<'OK'>;
    // The other forms (commands given up front, MULTI outside a pipeline) are not used here: as ioredis has them.
    if (arg !== undefined) return base(arg);
    if (this.policy.transactionPatienceMs <= 0) return base();
    return replayableTransaction(
      () => base() as ChainableCommander,
      this.policy,
      (methods) => this.loadScriptsOnMasters(methods),
    );
  }

  /**
   * Loads on every master the Lua scripts among `methods` (commands defined with `defineCommand`, as
   * BullMQ's and the ledger's are), so that a transaction calling them finds them wherever its slot
   * is now. Best effort: a node that refuses is left to answer NOSCRIPT as it would have.
   */
  private async loadScriptsOnMasters(methods: readonly (string | symbol)[]): Promise<void> {
    // ioredis's own record of the scripts defined on this client, by command name.
    const defined = this.scriptsSet as Readonly<Record<string, { readonly lua: string } | undefined>>;
    const texts = new Set(
      methods.flatMap((method) => (typeof method === 'string' ? (defined[method]?.lua ?? []) : [])),
    );
    if (texts.size === 0) return;
    await Promise.allSettled(this.nodes('master').flatMap((node) => [...texts].map((lua) => node.script('LOAD', lua))));
  }
}

/** Redis's answers of a slot that is migrating, or has just moved: the command did not run. */
const MIGRATION_REFUSAL = /^(TRYAGAIN|ASK|MOVED) /;

/**
 * Whether a transaction was refused, whole, because of a migrating slot: EXEC itself answered
 * TRYAGAIN (keys on both sides), or Redis discarded the transaction (EXECABORT) because it refused
 * commands while queueing them with ASK, MOVED or TRYAGAIN.
 */
function refusedByMigration(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (MIGRATION_REFUSAL.test(error.message)) return true;
  const previous: unknown = (error as { previousErrors?: unknown }).previousErrors;
  return (
    error.message.startsWith('EXECABORT') &&
    Array.isArray(previous) &&
    previous.length > 0 &&
    previous.every((cause: unknown) => cause instanceof Error && MIGRATION_REFUSAL.test(cause.message))
  );
}

/**
 * A transaction that can be sent again: it keeps every call made on it (commands, and scripts such
 * as BullMQ's, which queue themselves on it), and when EXEC is refused by a migrating slot it makes
 * the same calls on a fresh transaction and sends that, until the patience runs out. A request's
 * transaction ends at its deadline in all, like its single commands.
 *
 * Before that, the scripts it calls are loaded on every master (`loadScripts`). ioredis sends a
 * script's text the first time it goes over a connection and only its SHA after, and it counts the
 * script as sent even when Redis discarded the transaction that carried it. Sent again to the node
 * that discarded it, or to any node the script never reached, the SHA would find no script: in a
 * transaction that is a NOSCRIPT for that command at EXEC while the others run, and ioredis then runs
 * the script alone, outside the transaction (seen under load in test/faults/cluster-reshard.test.ts).
 */
function replayableTransaction(
  open: () => ChainableCommander,
  policy: MigrationPolicy,
  loadScripts: (methods: readonly (string | symbol)[]) => Promise<void>,
): ChainableCommander {
  const calls: { readonly method: string | symbol; readonly args: unknown[] }[] = [];
  const first = open();

  const execute = async (): Promise<[error: Error | null, result: unknown][] | null> => {
    const startedAt = Date.now();
    let transaction = first;
    for (;;) {
      try {
        return await transaction.exec();
      } catch (error) {
        if (!refusedByMigration(error)) throw error;
        await loadScripts(calls.map(({ method }) => method));
        const left = policy.transactionPatienceMs - (Date.now() - startedAt);
        if (left < TRYAGAIN_DELAY_MS) throw error;
      }
      await sleep(TRYAGAIN_DELAY_MS);
      transaction = open();
      for (const { method, args } of calls) {
        const replay: unknown = Reflect.get(transaction, method);
        if (typeof replay === 'function') Reflect.apply(replay, transaction, args);
      }
    }
  };

  const recorder: ChainableCommander = new Proxy(first, {
    get(target, property) {
      if (property === 'exec') {
        return () =>
          policy.commandDeadlineMs === undefined
            ? execute()
            : withDeadline(execute(), policy.commandDeadlineMs, COMMAND_TIMED_OUT);
      }
      const value: unknown = Reflect.get(target, property);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]): unknown => {
        calls.push({ method: property, args });
        const result: unknown = Reflect.apply(value, target, args);
        // Chained calls go on through the recorder, so that they are kept too.
        return result === target ? recorder : result;
      };
    },
  });
  return recorder;
}
