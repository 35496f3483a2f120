/**
 * `GET /openapi.json`: the API's OpenAPI 3.1 document, built once per app from its settings, when first asked.
 * `GET /docs`: the same document as a page for people, Swagger UI served from the `swagger-ui-dist`
 * package, so it works with no network: its scripts and styles are served under `/docs/`, and the page
 * reads the document from `/docs/openapi.json`, under the page, where a browser that was asked for the
 * key once (HTTP Basic, see ../auth.ts) sends it again by itself.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Router, type Response } from 'express';
import { NotFoundError } from '../../errors.js';
import { echo } from '../errors.js';
import { createOpenApiDocument, type OpenApiOptions } from './document.js';

/** The files of swagger-ui-dist the page uses; nothing else of the package is served. */
const ASSETS: ReadonlySet<string> = new Set([
  'swagger-ui.css',
  'swagger-ui-bundle.js',
  'favicon-32x32.png',
  'favicon-16x16.png',
]);

/** The document's own path, and the copy the page reads. */
const OPENAPI_PATHS = ['/openapi.json', '/docs/openapi.json'] as const;

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Bullpen API</title>
    <link rel="stylesheet" href="/docs/swagger-ui.css" />
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js"></script>
    <script src="/docs/init.js"></script>
  </body>
</html>
`;

/** No validator badge: it would send the document to an outside service. */
const INIT = `window.ui = SwaggerUIBundle({
  url: '/docs/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
});
`;

export function openApiRouter(options: OpenApiOptions): Router {
  // Built on first use: tens of milliseconds that a process need not spend starting.
  let document: string | undefined;
  const assetsDir = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const sendDocument = (res: Response) => {
    document ??= JSON.stringify(createOpenApiDocument(options));
    res.type('application/json').set('Cache-Control', 'no-cache').send(document);
  };

  const router = Router();
  for (const path of OPENAPI_PATHS) router.get(path, (_req, res) => sendDocument(res));
  router.get('/docs', (_req, res) => {
    res.type('html').set('Cache-Control', 'no-cache').send(PAGE);
  });
  router.get('/docs/init.js', (_req, res) => {
    res.type('text/javascript').set('Cache-Control', 'no-cache').send(INIT);
  });
  router.get('/docs/:asset', (req, res, next) => {
    const { asset } = req.params;
    if (!ASSETS.has(asset)) {
      next(new NotFoundError(`No route for ${req.method} ${echo(req.path)}`));
      return;
    }
    res.sendFile(asset, { root: assetsDir, maxAge: '1d' }, (error) => {
      // A client that leaves in the middle of a file needs no answer.
      if (error && !res.headersSent) next(error);
    });
  });
  return router;
}
