# lachan in a container: the school gateway (`serve`, the default) or the district
# collector (`central serve`, see deploy/compose.yaml). Build: docker build -t lachan .
# The base image is pinned to an exact Node 20 release; bump it on purpose, not by accident.

FROM node:20.20.2-bookworm-slim AS build
WORKDIR /src
# better-sqlite3 is native: a toolchain for when no prebuilt binary fits.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# `prepare` builds dist/, which needs the sources: scripts wait until they are copied.
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3
COPY tsconfig.json ./
COPY src ./src
COPY bench ./bench
COPY tools ./tools
RUN npm run build && npm prune --omit=dev

FROM node:20.20.2-bookworm-slim AS runtime
ENV NODE_ENV=production
# glibc's mmap threshold fixed at its default: RSS stays level over rules reloads (src/cli/v8-flags.ts).
ENV MALLOC_MMAP_THRESHOLD_=131072
ENV MALLOC_TRIM_THRESHOLD_=33554432
# A system user of its own, no login, no home: the proxy needs no privilege (ports above 1024).
RUN groupadd --system --gid 10001 lachan \
 && useradd --system --uid 10001 --gid lachan --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin lachan \
 && mkdir -p /var/lib/lachan /etc/lachan/certs \
 && chown lachan:lachan /var/lib/lachan /etc/lachan/certs
WORKDIR /opt/lachan
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY rules ./rules
USER lachan
VOLUME ["/var/lib/lachan", "/etc/lachan/certs"]
EXPOSE 3128 3080 3443
# /healthz is served on the loopback admin port (--admin-port 3129), inside the container.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:3129/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The V8 flags: see src/cli/v8-flags.ts (GC tuned for bursts after idle spells).
ENTRYPOINT ["node", "--no-memory-reducer", "--min-semi-space-size=16", "--heap-growing-percent=300", "--no-flush-bytecode", "/opt/lachan/dist/src/cli/main.js"]
CMD ["serve", "--host", "::", "--port", "3128", "--transparent-http", "3080", "--transparent-https", "3443", "--rules", "/opt/lachan/rules", "--data", "/var/lib/lachan", "--certs", "/etc/lachan/certs", "--admin-port", "3129"]
