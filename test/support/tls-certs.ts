/**
 * A throwaway certificate authority and one server certificate it signed, made with `openssl` in a
 * temporary folder, for the TLS tests (`rediss://`): a TLS redis-server needs a real certificate, and
 * a client must be shown to trust it only through the CA it is given (NODE_EXTRA_CA_CERTS, or
 * ioredis's `tls.ca`), never by turning verification off. The server certificate names `127.0.0.1`
 * and `localhost`, the two ways a loopback test reaches a server. Each call makes a new CA, so no
 * test trusts another's. EC keys: generated in milliseconds, where RSA takes noticeably longer.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findOnPath } from '../../src/platform/find-on-path.js';

const run = promisify(execFile);

/** The certificate needs a day at most: the files are removed when the test ends. */
const DAYS = '1';

export interface TestCertificates {
  /** The folder of every file below; removed by `remove`. */
  readonly dir: string;
  /** The CA's certificate (PEM): what a client is told to trust. */
  readonly caFile: string;
  /** The server's certificate (PEM), signed by the CA, for the names asked for. */
  readonly certFile: string;
  /** The server's private key (PEM, unencrypted). */
  readonly keyFile: string;
  /** The contents of `caFile`, for an ioredis client's `tls: { ca }`. */
  readonly ca: Buffer;
  remove(): void;
}

/** The `skip` option of tests that need `openssl`: a reason outside CI when it is missing, else false. */
export function skipUnlessOpenssl(): string | false {
  if (findOnPath('openssl', process.env.PATH) !== undefined) return false;
  if ((process.env.CI ?? '') !== '') return false;
  return 'openssl is not installed; apt-get install openssl';
}

async function openssl(args: readonly string[]): Promise<void> {
  try {
    await run('openssl', args, { timeout: 30_000 });
  } catch (error) {
    const failed = error as Error & { stderr?: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${failed.message}\n${failed.stderr ?? ''}`, { cause: error });
  }
}

/**
 * A new CA and a server certificate for `names` (subjectAltName entries): by default `127.0.0.1` and
 * `localhost`; `['DNS:localhost']` makes one that a client reaching the server by IP must refuse.
 */
export async function createTestCertificates({
  names = ['IP:127.0.0.1', 'DNS:localhost'],
}: { names?: readonly string[] } = {}): Promise<TestCertificates> {
  if (findOnPath('openssl', process.env.PATH) === undefined) {
    throw new Error('openssl is not on PATH; install it with `sudo apt-get install openssl` (CI does so in .ci/run)');
  }
  const dir = mkdtempSync(join(tmpdir(), 'bullpen-tls-'));
  const file = (name: string) => join(dir, name);
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  try {
    await openssl([
      'req',
      '-x509',
      ...newKey,
      '-keyout',
      file('ca.key'),
      '-out',
      file('ca.pem'),
      '-days',
      DAYS,
      '-subj',
      '/CN=Bullpen test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    await openssl([
      'req',
      ...newKey,
      '-keyout',
      file('server.key'),
      '-out',
      file('server.csr'),
      '-subj',
      '/CN=localhost',
    ]);
    // Redis presents the same certificate when it connects to the other nodes over the cluster bus,
    // hence clientAuth beside serverAuth.
    writeFileSync(
      file('server.ext'),
      [
        'basicConstraints=CA:FALSE',
        'keyUsage=critical,digitalSignature',
        'extendedKeyUsage=serverAuth,clientAuth',
        `subjectAltName=${names.join(',')}`,
      ].join('\n'),
    );
    await openssl([
      'x509',
      '-req',
      '-in',
      file('server.csr'),
      '-CA',
      file('ca.pem'),
      '-CAkey',
      file('ca.key'),
      '-CAcreateserial',
      '-CAserial',
      file('ca.srl'),
      '-out',
      file('server.pem'),
      '-days',
      DAYS,
      '-extfile',
      file('server.ext'),
    ]);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dir,
    caFile: file('ca.pem'),
    certFile: file('server.pem'),
    keyFile: file('server.key'),
    ca: readFileSync(file('ca.pem')),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** redis-server's arguments that serve TLS only, on `port`, with these certificates; clients show none. */
export function redisTlsArgs(certificates: TestCertificates, port: number): string[] {
  return [
    '--port',
    '0',
    '--tls-port',
    String(port),
    '--tls-cert-file',
    certificates.certFile,
    '--tls-key-file',
    certificates.keyFile,
    '--tls-ca-cert-file',
    certificates.caFile,
    '--tls-auth-clients',
    'no',
  ];
}
