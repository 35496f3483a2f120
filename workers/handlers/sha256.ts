/**
 * An example of a real handler: hashes `data.text` `data.rounds` times. Dropping a file like this
 * into `workers/handlers/` is all it takes to serve a new job name (here `sha256`).
 */
import { createHash } from 'node:crypto';
import type { Handler } from '../handler.js';

const MAX_ROUNDS = 1_000_000;

const sha256: Handler = ({ data, reportProgress }) => {
  const text = typeof data.text === 'string' ? data.text : '';
  const rounds = Math.min(MAX_ROUNDS, Math.max(1, Number.isInteger(data.rounds) ? Number(data.rounds) : 1));
  let digest = text;
  for (let round = 1; round <= rounds; round += 1) {
    digest = createHash('sha256').update(digest).digest('hex');
    if (round % 10_000 === 0) reportProgress(Math.floor((round * 100) / rounds));
  }
  reportProgress(100);
  return { rounds, digest };
};

export default sha256;
