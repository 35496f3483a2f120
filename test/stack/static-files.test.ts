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
import { loadConfig } from '../../src/config/config.js';
import { CONFIG_VARIABLES } from '../../src/config/env-schema.js';
import { exposureOf } from '../../src/config/exposure.js';

const ROOT = process.cwd();
const repoPath = (...parts: string[]): string => path.join(ROOT, ...parts);

const DASHBOARDS_DIR = repoPath('grafana', 'dashboards');
const MAIN_DASHBOARD = path.join(DASHBOARDS_DIR, 'bullpen-worker-load.json');
const DATASOURCE_FILE = repoPath('grafana', 'provisioning', 'datasources', 'prometheus.yml');
const PROVIDER_FILE = repoPath('grafana', 'provisioning', 'dashboards', 'bullpen.yml');
const PROMETHEUS_FILE = repoPath('prometheus', 'prometheus.yml');
const COMPOSE_FILE = repoPath('docker-compose.yml');

const ALLOWED_PANEL_TYPES = new Set(['timeseries', 'stat']);

/** Grafana's own variables that panels may use, with what promtool gets in their place. */
const BUILTIN_VARIABLES: Readonly<Record<string, string>> = { __rate_interval: '1m', __range: '1h' };

/** The compose service that runs Bullpen, and the port it listens on inside its container. */
const APP_SERVICE = 'app';
const APP_PORT = 3000;

/**
 * Targets that need not filter by `$host`, each with the reason. Every expression filters today;
 * an entry here must say why a panel may show hosts the viewer did not choose.
 */
const HOST_FILTER_EXEMPT: ReadonlyMap<string, string> = new Map<string, string>();

/** Gauges read from the shared ledger: every host exports every worker's, so they need de-duplicating. */
const LEDGER_GAUGE = /^bullpen_(worker_(active_jobs|queued_jobs|concurrency|up)|queue_jobs)$/;

/** The group gauges: every host exports the whole pool's counts per group, so they need de-duplicating too. */
const GROUP_GAUGE = /^bullpen_group_(waiting|inflight|running)$/;

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
  return arr(panel['targets'], `${panelLabel(panel)} targets`).map((t, i) =>
    obj(t, `${panelLabel(panel)} targets[${i}]`),
  );
}

/** Names of the dashboard's templating variables. */
function variableNames(dashboard: Obj): Set<string> {
  const templating = dashboard['templating'] === undefined ? { list: [] } : obj(dashboard['templating'], 'templating');
  return new Set(
    arr(templating['list'], 'templating.list').map((v, i) =>
      str(obj(v, `templating.list[${i}]`)['name'], 'variable name'),
    ),
  );
}

/** `$name`, `${name}` and `${name:format}` references in an expression. */
function variablesIn(expr: string): string[] {
  return [...expr.matchAll(/\$(?:\{(\w+)(?::\w+)?\}|(\w+))/g)].map((match) => match[1] ?? match[2] ?? '');
}

interface Selector {
  readonly metric: string;
  readonly matchers: string;
  /** The expression text before the selector, to check what wraps it. */
  readonly before: string;
}

/** Every `bullpen_*` series selector of an expression, with its label matchers (empty when none). */
function selectorsIn(expr: string): Selector[] {
  return [...expr.matchAll(/\b(bullpen_[a-zA-Z0-9_]+)\s*(?:\{([^}]*)\})?/g)].map((match) => ({
    metric: match[1] ?? '',
    matchers: match[2] ?? '',
    before: expr.slice(0, match.index),
  }));
}

/** Every target of every panel of the main dashboard, with a label for assertion messages. */
function mainDashboardTargets(): { label: string; panel: Obj; expr: string; legend: string }[] {
  const dashboard = obj(readJson(MAIN_DASHBOARD), 'dashboard');
  return allPanels(dashboard).flatMap((panel) =>
    targetsOf(panel).map((target) => ({
      label: `${panelLabel(panel)} target ${String(target['refId'])}`,
      panel,
      expr: str(target['expr'], 'expr'),
      legend: typeof target['legendFormat'] === 'string' ? target['legendFormat'] : '',
    })),
  );
}

function panelByTitle(title: string): Obj {
  const found = allPanels(obj(readJson(MAIN_DASHBOARD), 'dashboard')).filter((panel) => panel['title'] === title);
  assert.equal(found.length, 1, `the dashboard should have exactly one panel titled "${title}"`);
  return found[0] as Obj;
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
    const variables = variableNames(dashboard);
    const placed: { label: string; x: number; y: number; w: number; h: number }[] = [];
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
      const box = {
        label,
        x: grid['x'] as number,
        y: grid['y'] as number,
        w: grid['w'] as number,
        h: grid['h'] as number,
      };
      assert.ok(
        box.x >= 0 && box.y >= 0 && box.w > 0 && box.h > 0,
        `${label}: gridPos should be non-negative with a positive size`,
      );
      assert.ok(box.x + box.w <= 24, `${label}: gridPos exceeds 24 columns`);
      const overlapping = placed.find(
        (o) => box.x < o.x + o.w && o.x < box.x + box.w && box.y < o.y + o.h && o.y < box.y + box.h,
      );
      assert.equal(overlapping, undefined, `${label}: gridPos overlaps ${overlapping?.label ?? ''}`);
      placed.push(box);

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
        for (const name of variablesIn(expr)) {
          assert.ok(
            name in BUILTIN_VARIABLES || variables.has(name),
            `${label} target ${refId}: $${name} is neither one of Grafana's ${Object.keys(BUILTIN_VARIABLES).join(', ')} nor a variable of the dashboard (${expr})`,
          );
        }
        assert.ok(
          !expr.replace(/\$(?:\{\w+(?::\w+)?\}|\w+)/g, '').includes('$'),
          `${label} target ${refId}: a stray $ in ${expr}`,
        );
      }
    }
  }
});

test('dashboard: a multi-select host variable with All, filled from bullpen_worker_up', () => {
  const dashboard = obj(readJson(MAIN_DASHBOARD), 'dashboard');
  const list = arr(obj(dashboard['templating'], 'templating')['list'], 'templating.list').map((v) =>
    obj(v, 'variable'),
  );
  const host = list.find((v) => v['name'] === 'host');
  assert.ok(host !== undefined, 'the dashboard should have a templating variable named host');
  const { uid, type } = provisionedDatasource();
  assert.equal(host['type'], 'query');
  assertDatasource(host['datasource'], uid, type, 'variable host');
  const query = host['query'];
  const queryText =
    typeof query === 'string' ? query : str(obj(query, 'variable host query')['query'], 'variable host query.query');
  assert.equal(queryText.replace(/\s+/g, ' ').trim(), 'label_values(bullpen_worker_up, host)');
  assert.equal(host['multi'], true, 'several hosts can be chosen at once');
  assert.equal(host['includeAll'], true, 'All is offered');
  // .* rather than Grafana's default (a|b|c) of the values known at load time, so that All also
  // covers a host that appears while the dashboard is open.
  assert.equal(host['allValue'], '.*', 'All matches every host, including ones not listed yet');
  assert.equal(host['refresh'], 2, 'the host list is refreshed when the time range changes');
  const current = host['current'] === undefined ? undefined : obj(host['current'], 'variable host current');
  if (current !== undefined) assert.deepEqual(current['value'], ['$__all'], 'All is selected by default');
});

test('dashboard: every series selector filters by $host (or is exempt, with a reason)', () => {
  const targets = mainDashboardTargets();
  for (const [label, reason] of HOST_FILTER_EXEMPT) {
    assert.ok(
      targets.some((t) => t.label === label),
      `exempt target ${label} does not exist`,
    );
    assert.ok(reason.trim().length > 0, `exempt target ${label} needs a reason`);
  }
  for (const { label, expr } of targets) {
    if (HOST_FILTER_EXEMPT.has(label)) continue;
    const selectors = selectorsIn(expr);
    assert.ok(selectors.length > 0, `${label}: no bullpen_ metric in ${expr}`);
    assert.ok(variablesIn(expr).includes('host'), `${label}: does not reference $host: ${expr}`);
    for (const { metric, matchers } of selectors) {
      assert.match(
        matchers,
        /(^|,)\s*host\s*=~\s*"\$host"\s*(,|$)/,
        `${label}: ${metric} is not filtered by host=~"$host" in ${expr}`,
      );
    }
  }
});

test('dashboard: ledger gauges, exported by every host, are de-duplicated by max by (worker, host)', () => {
  let seen = 0;
  for (const { label, expr } of mainDashboardTargets()) {
    for (const { metric, before } of selectorsIn(expr)) {
      if (!LEDGER_GAUGE.test(metric)) continue;
      seen += 1;
      const wrapper = /max\s+by\s*\(([^)]*)\)\s*\(\s*$/.exec(before);
      assert.ok(
        wrapper !== null,
        `${label}: ${metric} should sit directly inside max by (worker, host) (...): ${expr}`,
      );
      const labels = (wrapper[1] ?? '').split(',').map((name) => name.trim());
      assert.ok(
        labels.includes('worker') && labels.includes('host'),
        `${label}: ${metric} is taken max by (${wrapper[1] ?? ''}), not by worker and host: ${expr}`,
      );
    }
  }
  assert.ok(seen > 0, 'some panels show ledger gauges');
});

test('dashboard: waiting and running per group, stacked, each group gauge de-duplicated by max by (group)', () => {
  for (const [title, metric] of [
    ['Waiting jobs per group', 'bullpen_group_waiting'],
    ['Running jobs per group', 'bullpen_group_running'],
  ] as const) {
    const panel = panelByTitle(title);
    assert.equal(panel['type'], 'timeseries');
    const custom = obj(obj(obj(panel['fieldConfig'], 'fieldConfig')['defaults'], 'defaults')['custom'], 'custom');
    assert.equal(obj(custom['stacking'], 'stacking')['mode'], 'normal', `${panelLabel(panel)} is stacked`);
    const [target, ...extra] = targetsOf(panel);
    assert.equal(extra.length, 0);
    assert.equal(str(target?.['expr'], `${title} expr`), `max by (group) (${metric}{host=~"$host"})`);
    assert.equal(target?.['legendFormat'], '{{group}}');
  }
  for (const { label, expr } of mainDashboardTargets()) {
    for (const { metric, before } of selectorsIn(expr)) {
      if (!GROUP_GAUGE.test(metric)) continue;
      assert.match(
        before,
        /max\s+by\s*\(\s*group\s*\)\s*\(\s*$/,
        `${label}: ${metric} should sit directly inside max by (group) (...)`,
      );
    }
  }
});

test('dashboard: per-host panels, jobs moved by reason and workers retired', () => {
  const perHost = (title: string, metrics: readonly string[]) => {
    const panel = panelByTitle(title);
    const targets = targetsOf(panel);
    for (const metric of metrics) {
      const target = targets.find((t) => str(t['expr'], 'expr').includes(metric));
      assert.ok(target !== undefined, `${panelLabel(panel)} should show ${metric}`);
      assert.match(
        str(target['expr'], 'expr'),
        /^sum by \(host\) /,
        `${panelLabel(panel)}: ${metric} should be summed by host`,
      );
      assert.match(
        String(target['legendFormat']),
        /\{\{\s*host\s*\}\}/,
        `${panelLabel(panel)}: the legend should name the host`,
      );
    }
  };
  perHost('Running jobs and capacity per host', ['bullpen_worker_active_jobs', 'bullpen_worker_concurrency']);
  perHost('Completions per host', ['bullpen_jobs_completed_total']);
  // Capacity per host counts live workers only, as the cluster-wide capacity does.
  const capacity = targetsOf(panelByTitle('Running jobs and capacity per host')).find((t) =>
    str(t['expr'], 'expr').includes('bullpen_worker_concurrency'),
  );
  assert.match(
    str(capacity?.['expr'], 'capacity expr'),
    /bullpen_worker_up\{[^}]*\}\) == 1/,
    'capacity per host counts live workers only',
  );

  const moved = panelByTitle('Jobs moved');
  assert.equal(moved['type'], 'timeseries');
  const [movedTarget, ...extraMoved] = targetsOf(moved);
  assert.equal(extraMoved.length, 0);
  assert.equal(
    str(movedTarget?.['expr'], 'Jobs moved expr'),
    'sum by (reason) (rate(bullpen_jobs_moved_total{host=~"$host"}[$__rate_interval]))',
  );
  assert.equal(movedTarget?.['legendFormat'], '{{reason}}');

  const retired = panelByTitle('Workers retired');
  assert.equal(retired['type'], 'stat');
  const [retiredTarget, ...extraRetired] = targetsOf(retired);
  assert.equal(extraRetired.length, 0);
  assert.equal(
    str(retiredTarget?.['expr'], 'Workers retired expr'),
    'sum(increase(bullpen_workers_retired_total{host=~"$host"}[$__range]))',
  );
  assert.equal(retiredTarget?.['instant'], true, 'one number for the whole range: an instant query');
});

function promtoolPath(): string | undefined {
  const result = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  return result.status === 0 ? 'promtool' : undefined;
}

test(
  'dashboard PromQL expressions parse (needs promtool)',
  { skip: promtoolPath() === undefined ? 'promtool not installed' : false },
  () => {
    // Wrap every expression in a recording rule and let promtool parse it.
    const exprs: string[] = [];
    for (const file of dashboardFiles()) {
      for (const panel of allPanels(obj(readJson(file), file))) {
        for (const target of targetsOf(panel)) {
          // What Grafana would put in place of the variables: durations, and the host variable's All value.
          const expr = str(target['expr'], 'expr').replace(
            /\$(?:\{(\w+)(?::\w+)?\}|(\w+))/g,
            (whole, braced: string | undefined, plain: string | undefined) => {
              const name = braced ?? plain ?? '';
              return BUILTIN_VARIABLES[name] ?? (name === 'host' ? '.*' : whole);
            },
          );
          exprs.push(expr);
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
  },
);

// ---------- docker-compose ----------

interface Mount {
  source: string;
  target: string;
  bind: boolean;
}

/** One `ports` entry; `hostPort` is undefined when Docker picks an ephemeral host port. */
interface PortMapping {
  hostPort: number | undefined;
  containerPort: number;
  protocol: string;
}

interface Published extends PortMapping {
  hostPort: number;
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

/**
 * Parses compose `ports` entries, short (`[IP:][HOST:]CONTAINER[/PROTO]`) or long, expanding ranges.
 * An entry without a host port maps to an ephemeral host port: `hostPort` is undefined.
 */
function portMappings(svc: Obj): PortMapping[] {
  if (svc['ports'] === undefined) return [];
  const out: PortMapping[] = [];
  for (const p of arr(svc['ports'], 'ports')) {
    if (typeof p === 'string' || typeof p === 'number') {
      const [spec = '', protocol = 'tcp'] = String(p).split('/');
      const parts = spec.split(':');
      const containerRange = expandRange(parts.at(-1) ?? '');
      const hostSpec = parts.length >= 2 ? (parts.at(-2) ?? '') : '';
      if (hostSpec === '') {
        for (const containerPort of containerRange) out.push({ hostPort: undefined, containerPort, protocol });
        continue;
      }
      expandRange(hostSpec).forEach((hostPort, i) => {
        out.push({ hostPort, containerPort: containerRange[i] ?? containerRange[0] ?? NaN, protocol });
      });
    } else {
      const long = obj(p, 'ports entry');
      const protocol = typeof long['protocol'] === 'string' ? long['protocol'] : 'tcp';
      const containerPort = Number(long['target']);
      const published = long['published'];
      if (published === undefined || published === '') {
        out.push({ hostPort: undefined, containerPort, protocol });
        continue;
      }
      const hostRange = expandRange(
        typeof published === 'number' ? String(published) : typeof published === 'string' ? published : '',
      );
      for (const hostPort of hostRange) out.push({ hostPort, containerPort, protocol });
    }
  }
  return out;
}

/** The entries of `ports` that take a fixed host port. */
function publishedPorts(svc: Obj): Published[] {
  return portMappings(svc).filter((p): p is Published => p.hostPort !== undefined);
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

/** Container ports other services (and Docker) can reach: `ports`, with or without a host port, and `expose`. */
function containerPorts(svc: Obj): number[] {
  const ports = portMappings(svc).map((p) => p.containerPort);
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
      out.set(
        key,
        typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : '',
      );
    }
  }
  return out;
}

/**
 * A compose value with the operator's environment put in, as compose does: `$${VAR}`, `$${VAR:-default}`
 * and `$${VAR-default}`, `$${VAR:?message}` and `$${VAR?message}` (which stop compose with the message when
 * VAR is unset, or empty for `:?`), and `$$` for a `$` of its own.
 */
function interpolate(value: string, env: Readonly<Record<string, string>>): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g,
    (
      whole,
      name: string | undefined,
      colon: string | undefined,
      kind: string | undefined,
      word: string | undefined,
    ) => {
      if (name === undefined) return '$';
      const set = env[name];
      const missing = set === undefined || (colon === ':' && set === '');
      if (!missing) return set;
      if (kind === '?') throw new Error(`compose stops: required variable ${name} is missing a value: ${word ?? ''}`);
      return kind === '-' ? (word ?? '') : '';
    },
  );
}

/** A service's environment as compose gives it to the container, with the operator's `env`. */
function interpolatedEnvironment(svc: Obj, env: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries([...environmentOf(svc)].map(([key, value]) => [key, interpolate(value, env)]));
}

/** What an operator sets before `docker compose up`. */
const OPERATOR_ENV: Readonly<Record<string, string>> = { API_KEY: 'operator-key-0123456789abcdef' };

test('compose: every bind-mounted host path and build context exists in the repo', () => {
  for (const [name, svc] of composeServices()) {
    for (const mount of mountsOf(svc)) {
      if (!mount.bind) continue;
      assert.ok(
        mount.source.startsWith('./'),
        `service ${name}: bind mount ${mount.source} should be repo-relative (./...)`,
      );
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
  assert.ok(!grafanaHostPorts.includes(3000), 'grafana must not take host port 3000, where people expect the API');
});

test('compose: the app scales out (`--scale app=3`): no fixed host port, no fixed name, HOST_ID not pinned', () => {
  const app = service(APP_SERVICE);
  assert.deepEqual(
    publishedPorts(app),
    [],
    'the app must not publish a fixed host port: replicas would fight over it (use "3000" for an ephemeral port, or expose)',
  );
  assert.ok(
    containerPorts(app).includes(APP_PORT),
    `the app's container port ${APP_PORT} is reachable (ports or expose)`,
  );
  assert.equal(app['container_name'], undefined, 'container_name allows only one container of the service');
  // Each replica must be its own host: the config derives HOST_ID from the container's hostname.
  assert.equal(app['hostname'], undefined, 'a fixed hostname would give every replica the same host id');
  assert.ok(
    !environmentOf(app).has('HOST_ID'),
    'HOST_ID must not be pinned in the environment: every replica would claim the same worker ids',
  );
  assert.equal(app['env_file'], undefined, 'no env_file: it could pin HOST_ID out of sight of this test');
});

test('prometheus discovers every app replica through DNS and scrapes its container port at /metrics', () => {
  const config = obj(readYaml(PROMETHEUS_FILE), 'prometheus.yml');
  const jobs = arr(config['scrape_configs'], 'scrape_configs').map((j) => obj(j, 'scrape config'));
  const job = jobs.find((j) => j['job_name'] === 'bullpen');
  assert.ok(job !== undefined, 'scrape job "bullpen" should exist');
  assert.equal(job['metrics_path'] ?? '/metrics', '/metrics');
  // A static "app:3000" would resolve to one replica only, and scrape the others never.
  assert.equal(job['static_configs'], undefined, 'the bullpen job discovers its targets; it lists none statically');

  const sd = arr(job['dns_sd_configs'], 'bullpen dns_sd_configs').map((c) => obj(c, 'dns_sd_config'));
  assert.equal(sd.length, 1, 'one DNS service discovery block');
  const [dns] = sd;
  assert.ok(dns !== undefined);
  assert.deepEqual(dns['names'], [APP_SERVICE], 'Docker DNS answers the service name with one A record per replica');
  assert.equal(dns['type'], 'A', 'type A: compose has no SRV records');
  assert.equal(dns['port'], APP_PORT, `port ${APP_PORT}, the app's container port`);
  assert.ok(composeServices().has(APP_SERVICE), `the discovered name ${APP_SERVICE} should be a compose service`);

  const app = service(APP_SERVICE);
  assert.ok(
    containerPorts(app).includes(APP_PORT),
    `port ${APP_PORT} is not a container port of ${APP_SERVICE} (${containerPorts(app).join(', ')})`,
  );
  const appEnvPort = environmentOf(app).get('PORT');
  if (appEnvPort !== undefined)
    assert.equal(appEnvPort, String(APP_PORT), 'the scraped port should equal the app PORT env');
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
    assert.equal(
      path.posix.normalize(providerPath),
      path.posix.normalize(dashboardsMount.target),
      'provider path vs dashboards mount target',
    );
  }

  const provisioningMount = mountFor('grafana/provisioning');
  assert.ok(provisioningMount !== undefined, 'grafana/provisioning should be bind-mounted into grafana');
  assert.equal(path.posix.normalize(provisioningMount.target), '/etc/grafana/provisioning');
});

test("compose: the app's environment is valid for the config schema and names only known variables", () => {
  const app = service(APP_SERVICE);
  const env = interpolatedEnvironment(app, OPERATOR_ENV);
  for (const name of Object.keys(env)) {
    assert.ok(CONFIG_VARIABLES.includes(name), `app sets ${name}, which the config does not read`);
  }
  const config = loadConfig(env);
  assert.equal(exposureOf(config), 'keyed', 'the app listens on every interface, so it runs with the key');
  assert.equal(config.apiKey, OPERATOR_ENV.API_KEY, "the key is the operator's, from the environment");
  assert.equal(config.host, '0.0.0.0', 'inside a container the app must listen on every interface');
  assert.ok(config.redisUrl?.includes('//redis:'), 'the app talks to the redis service');
  const redisPort = Number(new URL(config.redisUrl ?? '').port || 6379);
  assert.equal(redisPort, 6379);
  assert.ok(
    containerPorts(app).includes(config.port),
    `the app listens on ${config.port}, which compose does not publish`,
  );
  const grace = typeof app['stop_grace_period'] === 'string' ? app['stop_grace_period'] : '10s';
  const graceSeconds = Number(/^(\d+)s$/.exec(grace)?.[1] ?? NaN);
  assert.ok(
    graceSeconds * 1000 > config.shutdownTimeoutMs,
    `stop_grace_period ${grace} must exceed SHUTDOWN_TIMEOUT_MS`,
  );
});

test('compose: without API_KEY in the environment, compose stops with a message that says to set it', () => {
  for (const name of [APP_SERVICE, 'prometheus']) {
    assert.throws(
      () => interpolatedEnvironment(service(name), {}),
      /required variable API_KEY is missing a value: set API_KEY/,
      `${name} needs the key: compose must stop before starting anything`,
    );
    assert.throws(() => interpolatedEnvironment(service(name), { API_KEY: '' }), /set API_KEY/, 'empty is missing');
  }
});

test("compose: Prometheus scrapes with the app's key, from the file its entrypoint writes", () => {
  const config = obj(readYaml(PROMETHEUS_FILE), 'prometheus.yml');
  const jobs = arr(config['scrape_configs'], 'scrape_configs').map((j) => obj(j, 'scrape config'));
  const job = jobs.find((j) => j['job_name'] === 'bullpen');
  assert.ok(job !== undefined);
  const authorization = obj(job['authorization'], 'bullpen authorization');
  assert.equal(authorization['type'] ?? 'Bearer', 'Bearer');
  const keyFile = str(authorization['credentials_file'], 'credentials_file');

  const prometheus = service('prometheus');
  assert.equal(
    interpolatedEnvironment(prometheus, OPERATOR_ENV)['API_KEY'],
    interpolatedEnvironment(service(APP_SERVICE), OPERATOR_ENV)['API_KEY'],
    "Prometheus is given the app's key",
  );
  const entrypoint = arr(prometheus['entrypoint'], 'prometheus entrypoint').map((part) =>
    interpolate(String(part), {}),
  );
  assert.deepEqual(entrypoint.slice(0, 2), ['/bin/sh', '-c']);
  const script = entrypoint[2] ?? '';
  assert.ok(script.includes(`"$API_KEY" > ${keyFile} `), `the entrypoint writes the key to ${keyFile}: ${script}`);
  assert.match(script, /exec \/bin\/prometheus "\$@"$/, "then runs Prometheus with compose's command");
  const dataMount = mountsOf(prometheus).find((mount) => !mount.bind && keyFile.startsWith(`${mount.target}/`));
  assert.ok(dataMount !== undefined, `${keyFile} is on Prometheus's own volume, where it may write`);
  assert.notEqual(environmentOf(service(APP_SERVICE)).get('METRICS_PUBLIC'), 'true', 'the scrape uses the key');
});
