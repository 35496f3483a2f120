/**
 * The queue dashboard in a real browser. The real service (a primary and two worker processes, a real
 * redis-server) runs with an API key; a headless Chromium opens /admin/queues. Without credentials
 * the browser is challenged for HTTP Basic in realm "bullpen" and, when the login is cancelled, shows
 * the JSON 401. Given the key as the Basic password, as a person types it at the prompt, the page's
 * scripts, styles and API calls all pass, and the rendered page lists the queue of each worker and
 * the scheduled and held queues, which only bull-board's API could have told it; a screenshot is a real PNG.
 * Neither the dashboard nor the API docs at /docs asks for anything outside the service: every
 * request the two pages make is recorded, and each goes to the service on loopback.
 *
 * Needs `chromium` on PATH (CI installs it with apt-get). Without it the test is skipped, saying how
 * to install it, except in CI (`CI` set), where it fails instead.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  launchChromium,
  requireChromium,
  skipUnlessChromium,
  type Browser,
  type BrowserPage,
} from '../support/chromium.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { startService, type Service } from '../support/service.js';
import { waitFor } from '../support/wait.js';
import { queueNameFor, DELAYED_QUEUE, HELD_QUEUE } from '../../src/contracts/names.js';

const KEY = 'a-long-enough-test-key-0123456789';
const WORKERS = 2;
const HOST_ID = 'test';
const QUEUES = [...Array.from({ length: WORKERS }, (_, index) => `${HOST_ID}-${index}`), DELAYED_QUEUE, HELD_QUEUE].map(
  queueNameFor,
);
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** How long the page may take to render its queues: generous, the machine may be busy. */
const RENDER_TIMEOUT_MS = 60_000;

let redis: TestRedis | undefined;
let service: Service | undefined;
let browser: Browser | undefined;

/** The page's markup once `ready` holds for it; on time-out, what the page showed instead. */
async function renderedHtml(page: BrowserPage, ready: (html: string) => boolean, what: string): Promise<string> {
  let last = '';
  try {
    return await waitFor(
      async () => {
        last = await page.evaluate<string>('document.documentElement.outerHTML');
        return ready(last) ? last : undefined;
      },
      { timeoutMs: RENDER_TIMEOUT_MS, intervalMs: 250, what },
    );
  } catch (error) {
    const shown = await page.evaluate<string>('document.body ? document.body.innerText : ""').catch(() => '');
    throw new Error(
      `${(error as Error).message}; the page showed: ${JSON.stringify(shown.slice(0, 600))}; ` +
        `challenges: ${JSON.stringify(page.challenges)}; blocked: ${JSON.stringify(page.blocked)}; ` +
        `markup: ${JSON.stringify(last.slice(0, 300))}`,
      { cause: error },
    );
  }
}

/** Waits until the page has loaded everything it names and its fonts are settled. */
async function settled(page: BrowserPage): Promise<void> {
  await waitFor(
    () =>
      page.evaluate<boolean>(
        "document.readyState === 'complete' && document.fonts.status === 'loaded' && performance.getEntriesByType('resource').every((entry) => entry.responseEnd > 0)",
      ),
    { timeoutMs: RENDER_TIMEOUT_MS, intervalMs: 250, what: 'the page to finish loading' },
  );
}

/** The requests of a page that did not go to the service at `origin`. */
function offService(page: BrowserPage, origin: string): string[] {
  return page.requests.filter((url) => new URL(url).origin !== origin);
}

describe('the queue dashboard in a real browser', { timeout: 180_000, skip: skipUnlessChromium() }, () => {
  before(async () => {
    requireChromium(); // before starting anything: fail at once, and say how to install it
    redis = await startRedis();
    service = await startService({
      redisUrl: redis.url,
      workers: WORKERS,
      env: { HOST_ID, API_KEY: KEY },
    });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await service?.stop();
    await redis?.stop();
  });

  test('without credentials the browser is challenged for Basic in realm bullpen; cancelled, it shows the JSON 401', async () => {
    assert.ok(browser && service);
    const page = await browser.newPage('cancel');
    await page.goto(`${service.url}/admin/queues`);
    const html = await renderedHtml(page, (text) => text.includes('UNAUTHORIZED'), 'the 401 body');
    assert.match(html, /HTTP Basic with the key as the password/);
    assert.ok(page.challenges.length > 0, 'the browser was challenged');
    assert.equal(page.challenges[0]?.scheme.toLowerCase(), 'basic');
    assert.equal(page.challenges[0]?.realm, 'bullpen');
    assert.doesNotMatch(html, /tasks\./, 'no queue was shown');
  });

  test('with the key as the Basic password the page renders every worker queue; a screenshot is a PNG', async () => {
    assert.ok(browser && service);
    const page = await browser.newPage({ username: 'operator', password: KEY });
    await page.goto(`${service.url}/admin/queues`);
    const html = await renderedHtml(
      page,
      (text) => QUEUES.every((queue) => text.includes(queue)),
      `the queues ${QUEUES.join(', ')} on the page`,
    );
    // The names come from bull-board's API, which the page called with the browser's credentials.
    for (const queue of QUEUES) assert.ok(html.includes(queue), queue);
    assert.doesNotMatch(html, /UNAUTHORIZED/);
    assert.equal(page.challenges[0]?.realm, 'bullpen', 'the key went in through the Basic challenge');

    const png = await page.screenshot();
    assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE, 'PNG signature');
    assert.equal(png.subarray(12, 16).toString('latin1'), 'IHDR');
    const width = png.readUInt32BE(16);
    const height = png.readUInt32BE(20);
    assert.ok(width >= 800 && height >= 600, `a full page, not a sliver: ${width}×${height}`);
    // A blank or single-colour page compresses to a few kilobytes; a rendered dashboard does not.
    assert.ok(png.length > 10_000 && png.length < 20_000_000, `${png.length} bytes`);
  });

  test('the dashboard and the /docs page ask for nothing outside the service: every request stays on loopback', async () => {
    assert.ok(browser && service);
    const origin = new URL(service.url).origin;
    assert.match(origin, /^http:\/\/127\.0\.0\.1:\d+$/, 'the service is bound to loopback');

    const dashboard = await browser.newPage({ username: 'operator', password: KEY });
    await dashboard.goto(`${service.url}/admin/queues`);
    await renderedHtml(dashboard, (text) => QUEUES.every((queue) => text.includes(queue)), 'the queues on the page');
    await settled(dashboard);
    assert.ok(
      dashboard.requests.some((url) => url.includes('/admin/queues/static/')) &&
        dashboard.requests.some((url) => url.includes('/admin/queues/api/')),
      `the page's own files and API calls were recorded: ${JSON.stringify(dashboard.requests)}`,
    );
    assert.deepEqual(offService(dashboard, origin), [], 'the dashboard asked for nothing elsewhere');
    assert.deepEqual(dashboard.blocked, []);

    const docs = await browser.newPage({ username: 'operator', password: KEY });
    await docs.goto(`${service.url}/docs`);
    // Operations render only once Swagger UI has read the document.
    await renderedHtml(docs, (text) => text.includes('opblock') && text.includes('/enqueue-task'), 'the operations');
    await settled(docs);
    assert.ok(
      ['/docs/swagger-ui-bundle.js', '/docs/swagger-ui.css', '/docs/openapi.json'].every((path) =>
        docs.requests.includes(`${origin}${path}`),
      ),
      `the page's scripts, styles and document were recorded: ${JSON.stringify(docs.requests)}`,
    );
    assert.deepEqual(offService(docs, origin), [], '/docs asked for nothing elsewhere');
    assert.deepEqual(docs.blocked, []);
  });
});
