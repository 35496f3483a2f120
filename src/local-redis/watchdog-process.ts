/**
 * The watchdog: a small process that stops the private redis-server when its primary goes away,
 * however it goes. The primary holds the write end of this process's stdin; the kernel closes it
 * when the primary exits, even on SIGKILL, and the watchdog then stops redis-server with SIGTERM (so
 * the AOF is flushed) and exits once the server is gone. On a normal shutdown the primary writes
 * `stop` first, and closes the pipe the same way.
 *
 * It runs in its own session, like the server: a Ctrl-C at the terminal reaches the primary and its
 * processes only, and Redis stays up while their running jobs finish. Its output goes to the server's
 * log file in the data directory.
 *
 * Usage: node watchdog-process.js <redis-server pid> <primary pid>
 */
import { setInterval } from 'node:timers';
import { isRunning, terminate } from './terminate.js';

/** How often it checks that the server still runs, to exit when there is nothing left to watch. */
const SERVER_CHECK_MS = 1_000;

const [serverArg, primaryArg] = process.argv.slice(2);
const serverPid = Number(serverArg);
const primaryPid = Number(primaryArg);

function say(message: string): void {
  process.stdout.write(`${new Date().toISOString()} bullpen watchdog (pid ${process.pid}): ${message}\n`);
}

if (!Number.isInteger(serverPid) || serverPid <= 0 || !Number.isInteger(primaryPid) || primaryPid <= 0) {
  say(`expected <redis-server pid> <primary pid>, got ${JSON.stringify(process.argv.slice(2))}`);
  process.exit(2);
}

let asked = false;
let stopping = false;

async function stopServer(): Promise<void> {
  if (stopping) return;
  stopping = true;
  const why = asked ? `the primary (pid ${primaryPid}) is shutting down` : `the primary (pid ${primaryPid}) went away`;
  say(`${why}; stopping redis-server (pid ${serverPid}) with SIGTERM`);
  const outcome = await terminate(serverPid);
  say(`redis-server (pid ${serverPid}): ${outcome}`);
  process.exit(outcome === 'would not die' ? 1 : 0);
}

// Signals meant for a terminal's process group never come here; a stray one must not end the watch
// either. SIGTERM keeps its default: it ends the watch and leaves the server running, for the next
// start to take over.
for (const signal of ['SIGINT', 'SIGHUP'] as const) process.on(signal, () => {});

process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  if (chunk.includes('stop')) asked = true;
});
process.stdin.on('end', () => void stopServer());
process.stdin.on('close', () => void stopServer());
process.stdin.on('error', () => void stopServer());

setInterval(() => {
  if (stopping || isRunning(serverPid)) return;
  say(`redis-server (pid ${serverPid}) is gone; nothing left to watch`);
  process.exit(0);
}, SERVER_CHECK_MS);

say(`watching redis-server (pid ${serverPid}) for the primary (pid ${primaryPid})`);
