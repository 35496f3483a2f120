# syntax=docker/dockerfile:1

# ---- build: install all deps and compile TypeScript into dist/ ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# ---- runtime: production deps + compiled output only ----
FROM node:20-bookworm-slim AS runtime
# Every interface: the service refuses to start here without API_KEY, unless ALLOW_UNAUTHENTICATED=true
# says that serving everyone without a key is meant. /healthz stays open for the HEALTHCHECK below.
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000
WORKDIR /app
# /app belongs to "node" so the app may create files under it (e.g. .data/);
# node_modules and dist stay root-owned and read-only for the app.
RUN chown node:node /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Run node directly (not npm) so SIGTERM from `docker stop` reaches the cluster primary.
CMD ["node", "dist/src/main.js"]
