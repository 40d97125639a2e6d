# syntax=docker/dockerfile:1
# kubipam controller image: build with the full toolchain, run on Node 24 LTS with production
# dependencies only, as a non-root user.
#
#   docker build -t kubipam:0.1.0 .
#   docker run --rm kubipam:0.1.0 --help

ARG NODE_IMAGE=node:24-alpine

# ---- build: compile TypeScript to dist/
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- production dependencies only
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- runtime
FROM ${NODE_IMAGE}
LABEL org.opencontainers.image.title="kubipam" \
      org.opencontainers.image.description="IP address management for Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json LICENSE ./
# The numeric id matches the Deployment's runAsUser (runAsNonRoot needs a numeric USER).
USER 65532:65532
EXPOSE 8080 8081
# V8's small-heap mode: about 20 MB less resident memory for a controller that mostly waits on the
# API server (docs/benchmarks.md, "Memory"). Not allowed in NODE_OPTIONS, hence here.
ENTRYPOINT ["node", "--optimize-for-size", "dist/cli/main.js"]
CMD ["controller"]
