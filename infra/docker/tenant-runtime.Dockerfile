# syntax=docker/dockerfile:1
# Tenant runtime: the per-tenant data API behind the ALB's *.<tenant domain> rule.
#
#   docker build -f infra/docker/tenant-runtime.Dockerfile -t silo-tenant-runtime .
#
# Not built in this repository's CI (no Docker engine there): test/runtime-bundle.test.ts builds the
# bundle this image copies and runs it with no node_modules; see docs/deploy.md.

ARG NODE_VERSION=20

# ---- CA bundle for Amazon RDS (tenant and control databases use sslmode=verify-full) ------------
FROM debian:bookworm-slim AS certs
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && curl -fsSL -o /rds-global-bundle.pem https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem \
 && grep -q "BEGIN CERTIFICATE" /rds-global-bundle.pem

# ---- build: bundle the runtime (npm run build:runtime, scripts/build-runtime.mjs) ----------------
# esbuild follows tenant-runtime/main.ts's imports into one file: the image needs no node_modules,
# so it carries only what the runtime imports (no NestJS, TypeORM or cdktf). The runtime's sources
# are tenant-runtime/, common/ and provisioning/ (test/runtime-bundle.test.ts fails if the bundle
# reaches any other folder, so a new one shows up there before it breaks this build).
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would run the TypeScript build before the sources are here; esbuild's
# binary comes from its platform package (an optional dependency), not from an install script.
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY common ./common
COPY tenant-runtime ./tenant-runtime
COPY provisioning ./provisioning
COPY scripts/build-runtime.mjs ./scripts/
RUN npm run build:runtime

# ---- runtime ----------------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    RUNTIME_PORT=4000 \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/rds-global-bundle.pem
WORKDIR /app
COPY --from=certs /rds-global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem
# The bundle, its source map (stack traces name our .ts files) and the bundled packages' licence notices.
COPY --from=build /app/dist/runtime/main.js /app/dist/runtime/main.js.map /app/dist/runtime/main.js.LEGAL.txt ./
USER node
EXPOSE 4000 6432
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.RUNTIME_PORT||4000)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "--enable-source-maps", "main.js"]
