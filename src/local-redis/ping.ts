/**
 * Asking whatever listens on a loopback port whether it is a Redis, over a raw socket so that it
 * works before any client library is set up and against servers that are not Redis at all. The
 * answer has three states, so that start-up can say precisely what it found on a port: a Redis that
 * answers PONG, something that answers otherwise (a Redis that wants a password says -NOAUTH, one
 * still loading its data says -LOADING, a web server says HTTP/1.1 400), or nothing at all.
 */
import { createConnection } from 'node:net';

export type PingResult =
  | { readonly state: 'pong' }
  /** Something answered, but not +PONG: `reply` is its first line, cut to 200 characters. */
  | { readonly state: 'answered'; readonly reply: string }
  /** Nothing answered: refused, closed without a word, or silent until the time-out. */
  | { readonly state: 'silent'; readonly reason: string };

const REPLY_LIMIT = 200;

/** Sends PING and reads the first line of the answer. */
export function probeRedis(host: string, port: number, timeoutMs = 500): Promise<PingResult> {
  return new Promise((resolvePing) => {
    const socket = createConnection({ host, port });
    let reply = '';
    let settled = false;
    const done = (result: PingResult) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolvePing(result);
    };
    const answered = () => {
      const line = reply.split(/\r?\n/, 1)[0] ?? '';
      if (line.startsWith('+PONG')) done({ state: 'pong' });
      else done({ state: 'answered', reply: line.slice(0, REPLY_LIMIT) });
    };
    socket.setTimeout(timeoutMs, () =>
      reply === '' ? done({ state: 'silent', reason: `no answer within ${timeoutMs} ms` }) : answered(),
    );
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\n') || reply.length >= REPLY_LIMIT) answered();
    });
    // A server that says something and hangs up without a line break still answered.
    socket.on('end', () =>
      reply === '' ? done({ state: 'silent', reason: 'the connection was closed without an answer' }) : answered(),
    );
    socket.on('error', (error: NodeJS.ErrnoException) =>
      done({ state: 'silent', reason: error.code ?? error.message }),
    );
  });
}

/** True only for a Redis that answers +PONG. */
export async function pingRedis(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return (await probeRedis(host, port, timeoutMs)).state === 'pong';
}

/** Says in words what a probe found, for log lines and error messages. */
export function describeProbe(result: PingResult): string {
  switch (result.state) {
    case 'pong':
      return 'a Redis answers PING';
    case 'answered':
      if (result.reply.startsWith('-NOAUTH') || result.reply.startsWith('-WRONGPASS')) {
        return `a password-protected Redis answers PING with "${result.reply}"`;
      }
      return `something that is not an open Redis answers PING with "${result.reply}"`;
    case 'silent':
      return `nothing answers PING (${result.reason})`;
  }
}
