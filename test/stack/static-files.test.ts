// Consistency checks for the observability / deployment files that are not
// TypeScript: Grafana provisioning + dashboards, Prometheus config and
// docker-compose.yml. Paths are resolved from process.cwd() (tests run from the
// repo root), because this file is executed from dist/test/stack/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config/config.js';

const ROOT = process.cwd();
const repoPath = (...parts: string[]): string => path.join(ROOT, ...parts);

const DASHBOARDS_DIR = repoPath('grafana', 'dashboards');
const MAIN_DASHBOARD = path.join(DASHBOARDS_DIR, 'bullpen-worker-load.json');
const DATASOURCE_FILE = repoPath('grafana', 'provisioning', 'datasources', 'prometheus.yml');
const PROVIDER_FILE = repoPath('grafana', 'provisioning', 'dashboards', 'bullpen.yml');
const PROMETHEUS_FILE = repoPath('prometheus', 'prometheus.yml');
const COMPOSE_FILE = repoPath('docker-compose.yml');

const ALLOWED_PANEL_TYPES = new Set(['timeseries', 'stat']);

// ---------- small typed helpers over unknown data ----------

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function obj(value: unknown, what: string): Obj {
  assert.ok(isObj(value), `${what} should be an object`);
  return value;
}

function arr(value: unknown, what: string): unknown[] {
  assert.ok(Array.isArray(value), `${what} should be an array`);
  return value;
}

function str(value: unknown, what: string): string {
  assert.equal(typeof value, 'string', `${what} should be a string`);
  return value as string;
}

function readYaml(file: string): unknown {
  return parseYaml(readFileSync(file, 'utf8'));
}

function readJson(file: string): unknown {
  return JSON.parse(readFileSync(file, 'utf8')) as unknown;
}

// ---------- Grafana ----------

function provisionedDatasource(): { uid: string; type: string; url: string } {
  const doc = obj(readYaml(DATASOURCE_FILE), 'datasource provisioning file');
  const list = arr(doc['datasources'], 'datasources');
  assert.equal(list.length, 1, 'exactly one provisioned datasource expected');
  const ds = obj(list[0], 'datasources[0]');
  return {
    uid: str(ds['uid'], 'datasource uid'),
    type: str(ds['type'], 'datasource type'),
    url: str(ds['url'], 'datasource url'),
  };
}

function dashboardFiles(): string[] {
  return readdirSync(DASHBOARDS_DIR)
    .filter((name) => name.endsWith('.json'))
    .map((name) => path.join(DASHBOARDS_DIR, name));
}

/** Panels of a dashboard, including panels nested in (collapsed) rows. */
function allPanels(dashboard: Obj): Obj[] {
  const out: Obj[] = [];
  const visit = (list: unknown, where: string): void => {
    arr(list, where).forEach((p, i) => {
      const panel = obj(p, `${where}[${i}]`);
      out.push(panel);
      if (panel['panels'] !== undefined) visit(panel['panels'], `${where}[${i}].panels`);
    });
  };
  visit(dashboard['panels'], 'panels');
  return out;
}

function panelLabel(panel: Obj): string {
  return `panel ${String(panel['id'])} "${String(panel['title'])}"`;
}

function targetsOf(panel: Obj): Obj[] {
  return arr(panel['targets'], `${panelLabel(panel)} targets`).map((t, i) => obj(t, `${panelLabel(panel)} targets[${i}]`));
}

function assertDatasource(value: unknown, expectedUid: string, expectedType: string, where: string): void {
  const ds = obj(value, `${where} datasource`);
  assert.equal(ds['uid'], expectedUid, `${where}: datasource uid`);
  assert.equal(ds['type'], expectedType, `${where}: datasource type`);
}

test('provisioned datasource is the default Prometheus pointing at the prometheus service', () => {
  const doc = obj(readYaml(DATASOURCE_FILE), 'datasource provisioning file');
  const ds = obj(arr(doc['datasources'], 'datasources')[0], 'datasources[0]');
  assert.equal(ds['type'], 'prometheus');
  assert.equal(ds['uid'], 'bullpen-prometheus');
  assert.equal(ds['isDefault'], true);
  const url = new URL(str(ds['url'], 'datasource url'));
  const compose = composeServices();
  assert.ok(compose.has(url.hostname), `datasource host ${url.hostname} should be a compose service`);
  const promService = compose.get(url.hostname);
  assert.ok(promService !== undefined);
  assert.ok(
    containerPorts(promService).includes(Number(url.port)),
    `datasource port ${url.port} should be a container port of service ${url.hostname}`,
  );
});

test('worker-load dashboard parses and has the expected identity', () => {
  const dashboard = obj(readJson(MAIN_DASHBOARD), 'dashboard');
  assert.equal(dashboard['title'], 'Bullpen: worker load');
  assert.equal(dashboard['uid'], 'bullpen-worker-load');
  assert.equal(typeof dashboard['schemaVersion'], 'number');
  assert.ok((dashboard['schemaVersion'] as number) >= 39, 'schemaVersion should be 39 or newer');
  assert.ok(allPanels(dashboard).length > 0, 'dashboard should have panels');
});

test('every dashboard: unique panel ids, allowed panel types, gridPos, provisioned datasource everywhere', () => {
  const { uid, type } = provisionedDatasource();
  const files = dashboardFiles();
  assert.ok(files.length > 0, 'grafana/dashboards should contain at least one .json dashboard');
  const dashboardUids = new Set<string>();

  for (const file of files) {
    const name = path.basename(file);
    const dashboard = obj(readJson(file), name);
    const dUid = str(dashboard['uid'], `${name} uid`);
    assert.ok(!dashboardUids.has(dUid), `${name}: dashboard uid ${dUid} is used by another dashboard`);
    dashboardUids.add(dUid);

    const ids = new Set<number>();
    for (const panel of allPanels(dashboard)) {
      const label = `${name} ${panelLabel(panel)}`;
      const id = panel['id'];
      assert.ok(typeof id === 'number' && Number.isInteger(id), `${label}: id should be an integer`);
      assert.ok(!ids.has(id), `${label}: duplicate panel id`);
      ids.add(id);

      assert.ok(ALLOWED_PANEL_TYPES.has(String(panel['type'])), `${label}: type ${String(panel['type'])} not allowed`);

      const grid = obj(panel['gridPos'], `${label} gridPos`);
      for (const key of ['x', 'y', 'w', 'h']) {
        assert.equal(typeof grid[key], 'number', `${label}: gridPos.${key} should be a number`);
      }
      assert.ok((grid['x'] as number) + (grid['w'] as number) <= 24, `${label}: gridPos exceeds 24 columns`);

      assertDatasource(panel['datasource'], uid, type, label);
      const targets = targetsOf(panel);
      assert.ok(targets.length > 0, `${label}: should have at least one target`);
      const refIds = new Set<string>();
      for (const target of targets) {
        const refId = str(target['refId'], `${label} refId`);
        assert.ok(!refIds.has(refId), `${label}: duplicate refId ${refId}`);
        refIds.add(refId);
        assertDatasource(target['datasource'], uid, type, `${label} target ${refId}`);
        const expr = str(target['expr'], `${label} target ${refId} expr`);
        assert.ok(expr.trim().length > 0, `${label} target ${refId}: empty expr`);
        assert.ok(
          !expr.replaceAll('$__rate_interval', '').includes('$'),
          `${label} target ${refId}: only $__rate_interval may be used as a variable (${expr})`,
        );
      }
    }
  }
});

function promtoolPath(): string | undefined {
  const result = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  return result.status === 0 ? 'promtool' : undefined;
}

test('dashboard PromQL expressions parse (needs promtool)', { skip: promtoolPath() === undefined ? 'promtool not installed' : false }, () => {
  // Wrap every expression in a recording rule and let promtool parse it.
  const exprs: string[] = [];
  for (const file of dashboardFiles()) {
    for (const panel of allPanels(obj(readJson(file), file))) {
      for (const target of targetsOf(panel)) {
        exprs.push(str(target['expr'], 'expr').replaceAll('$__rate_interval', '1m'));
      }
    }
  }
  const rules = {
    groups: [{ name: 'dashboard-exprs', rules: exprs.map((expr, i) => ({ record: `dashboard:expr_${i}`, expr })) }],
  };
  const dir = mkdtempSync(path.join(tmpdir(), 'bullpen-promql-'));
  try {
    const file = path.join(dir, 'rules.json'); // JSON is valid YAML
    writeFileSync(file, JSON.stringify(rules));
    const result = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    assert.equal(result.status, 0, `promtool rejected a dashboard expression:\n${result.stdout}\n${result.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------- docker-compose ----------

interface Mount {
  source: string;
  target: string;
  bind: boolean;
}

interface Published {
  hostPort: number;
  containerPort: number;
  protocol: string;
}

function composeServices(): Map<string, Obj> {
  const doc = obj(readYaml(COMPOSE_FILE), 'docker-compose.yml');
  const services = obj(doc['services'], 'services');
  return new Map(Object.entries(services).map(([name, svc]) => [name, obj(svc, `service ${name}`)]));
}

function service(name: string): Obj {
  const svc = composeServices().get(name);
  assert.ok(svc !== undefined, `compose service ${name} should exist`);
  return svc;
}

function mountsOf(svc: Obj): Mount[] {
  if (svc['volumes'] === undefined) return [];
  return arr(svc['volumes'], 'volumes').map((v): Mount => {
    if (typeof v === 'string') {
      // SOURCE:TARGET[:MODE] or just TARGET (anonymous volume)
      const parts = v.split(':');
      if (parts.length === 1) return { source: '', target: parts[0] ?? '', bind: false };
      const source = parts[0] ?? '';
      const bind = source.startsWith('.') || source.startsWith('/') || source.startsWith('~');
      return { source, target: parts[1] ?? '', bind };
    }
    const long = obj(v, 'volume entry');
    const source = typeof long['source'] === 'string' ? long['source'] : '';
    return { source, target: str(long['target'], 'volume target'), bind: long['type'] === 'bind' };
  });
}

/** Parses compose `ports` entries, expanding ranges. Entries without a host port are skipped. */
function publishedPorts(svc: Obj): Published[] {
  if (svc['ports'] === undefined) return [];
  const out: Published[] = [];
  for (const p of arr(svc['ports'], 'ports')) {
    if (typeof p === 'string' || typeof p === 'number') {
      const [spec = '', protocol = 'tcp'] = String(p).split('/');
      const parts = spec.split(':');
      const containerSpec = parts.at(-1) ?? '';
      const hostSpec = parts.length >= 2 ? (parts.at(-2) ?? '') : '';
      const containerRange = expandRange(containerSpec);
      if (hostSpec === '') {
        continue; // container port only: Docker picks an ephemeral host port
      }
      const hostRange = expandRange(hostSpec);
      hostRange.forEach((hostPort, i) => {
        out.push({ hostPort, containerPort: containerRange[i] ?? containerRange[0] ?? NaN, protocol });
      });
    } else {
      const long = obj(p, 'ports entry');
      if (long['published'] === undefined) continue;
      const protocol = typeof long['protocol'] === 'string' ? long['protocol'] : 'tcp';
      const published = long['published'];
      const hostRange = expandRange(typeof published === 'number' ? String(published) : typeof published === 'string' ? published : '');
      const containerPort = Number(long['target']);
      for (const hostPort of hostRange) out.push({ hostPort, containerPort, protocol });
    }
  }
  return out;
}

function expandRange(spec: string): number[] {
  const [from = '', to] = spec.split('-');
  const start = Number(from);
  const end = to === undefined ? start : Number(to);
  assert.ok(Number.isInteger(start) && Number.isInteger(end) && end >= start, `bad port spec "${spec}"`);
  const ports: number[] = [];
  for (let port = start; port <= end; port++) ports.push(port);
  return ports;
}

function containerPorts(svc: Obj): number[] {
  const ports = publishedPorts(svc).map((p) => p.containerPort);
  if (svc['expose'] !== undefined) {
    ports.push(...arr(svc['expose'], 'expose').map((e) => Number(String(e).split('/')[0])));
  }
  return ports;
}

function environmentOf(svc: Obj): Map<string, string> {
  const env = svc['environment'];
  const out = new Map<string, string>();
  if (Array.isArray(env)) {
    for (const entry of env as unknown[]) {
      const [key = '', ...rest] = String(entry).split('=');
      out.set(key, rest.join('='));
    }
  } else if (isObj(env)) {
    for (const [key, value] of Object.entries(env)) {
      out.set(key, typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : '');
    }
  }
  return out;
}

test('compose: every bind-mounted host path and build context exists in the repo', () => {
  for (const [name, svc] of composeServices()) {
    for (const mount of mountsOf(svc)) {
      if (!mount.bind) continue;
      assert.ok(mount.source.startsWith('./'), `service ${name}: bind mount ${mount.source} should be repo-relative (./...)`);
      assert.ok(existsSync(repoPath(mount.source)), `service ${name}: bind-mounted ${mount.source} does not exist`);
    }
    const build = svc['build'];
    if (build !== undefined) {
      const context = typeof build === 'string' ? build : str(obj(build, 'build')['context'] ?? '.', 'build context');
      const dockerfile = isObj(build) && typeof build['dockerfile'] === 'string' ? build['dockerfile'] : 'Dockerfile';
      assert.ok(statSync(repoPath(context)).isDirectory(), `service ${name}: build context ${context} missing`);
      assert.ok(existsSync(repoPath(context, dockerfile)), `service ${name}: ${dockerfile} missing in ${context}`);
    }
  }
});

test('compose: no host port is published twice, and grafana is not on host port 3000', () => {
  const owner = new Map<string, string>();
  for (const [name, svc] of composeServices()) {
    for (const p of publishedPorts(svc)) {
      const key = `${p.hostPort}/${p.protocol}`;
      const previous = owner.get(key);
      assert.equal(previous, undefined, `host port ${key} is published by both ${previous ?? ''} and ${name}`);
      owner.set(key, name);
    }
  }
  const grafanaHostPorts = publishedPorts(service('grafana')).map((p) => p.hostPort);
  assert.ok(grafanaHostPorts.length > 0, 'grafana should publish a host port');
  assert.ok(!grafanaHostPorts.includes(3000), 'grafana must not take host port 3000 (the app uses it)');
});

test('prometheus scrapes the app service on its container port at /metrics', () => {
  const config = obj(readYaml(PROMETHEUS_FILE), 'prometheus.yml');
  const jobs = arr(config['scrape_configs'], 'scrape_configs').map((j) => obj(j, 'scrape config'));
  const job = jobs.find((j) => j['job_name'] === 'bullpen');
  assert.ok(job !== undefined, 'scrape job "bullpen" should exist');
  assert.equal(job['metrics_path'] ?? '/metrics', '/metrics');

  const targets = arr(job['static_configs'], 'static_configs').flatMap((sc) =>
    arr(obj(sc, 'static_config')['targets'], 'targets').map((t) => str(t, 'target')),
  );
  assert.ok(targets.length > 0, 'bullpen job should have a target');

  const app = service('app');
  const appContainerPorts = containerPorts(app);
  const appEnvPort = environmentOf(app).get('PORT');
  for (const target of targets) {
    const url = new URL(`http://${target}`);
    assert.equal(url.hostname, 'app', `scrape target ${target} should address the compose service "app"`);
    const port = Number(url.port);
    assert.ok(appContainerPorts.includes(port), `scrape target port ${port} is not a container port of app (${appContainerPorts.join(', ')})`);
    if (appEnvPort !== undefined) assert.equal(String(port), appEnvPort, 'scrape target port should equal the app PORT env');
  }
});

test('grafana: provisioning and dashboards folders are mounted where Grafana reads them', () => {
  const provider = obj(readYaml(PROVIDER_FILE), 'dashboard provider file');
  const providers = arr(provider['providers'], 'providers').map((p) => obj(p, 'provider'));
  assert.ok(providers.length > 0, 'at least one dashboard provider');

  const mounts = mountsOf(service('grafana'));
  const mountFor = (hostDir: string): Mount | undefined =>
    mounts.find((m) => m.bind && path.resolve(ROOT, m.source) === repoPath(hostDir));

  const dashboardsMount = mountFor('grafana/dashboards');
  assert.ok(dashboardsMount !== undefined, 'grafana/dashboards should be bind-mounted into grafana');
  for (const p of providers) {
    assert.equal(p['type'] ?? 'file', 'file');
    const providerPath = str(obj(p['options'], 'provider options')['path'], 'provider options.path');
    assert.equal(path.posix.normalize(providerPath), path.posix.normalize(dashboardsMount.target), 'provider path vs dashboards mount target');
  }

  const provisioningMount = mountFor('grafana/provisioning');
  assert.ok(provisioningMount !== undefined, 'grafana/provisioning should be bind-mounted into grafana');
  assert.equal(path.posix.normalize(provisioningMount.target), '/etc/grafana/provisioning');
});

test("compose: the app's environment is valid for the config schema and names only known variables", () => {
  const app = service('app');
  const env = Object.fromEntries(environmentOf(app));
  for (const name of Object.keys(env)) {
    assert.ok(CONFIG_VARIABLES.includes(name), `app sets ${name}, which the config does not read`);
  }
  const config = loadConfig(env);
  assert.equal(config.host, '0.0.0.0', 'inside a container the app must listen on every interface');
  assert.ok(config.redisUrl?.includes('//redis:'), 'the app talks to the redis service');
  const redisPort = Number(new URL(config.redisUrl ?? '').port || 6379);
  assert.equal(redisPort, 6379);
  assert.ok(containerPorts(app).includes(config.port), `the app listens on ${config.port}, which compose does not publish`);
  const grace = typeof app['stop_grace_period'] === 'string' ? app['stop_grace_period'] : '10s';
  const graceSeconds = Number(/^(\d+)s$/.exec(grace)?.[1] ?? NaN);
  assert.ok(graceSeconds * 1000 > config.shutdownTimeoutMs, `stop_grace_period ${grace} must exceed SHUTDOWN_TIMEOUT_MS`);
});
