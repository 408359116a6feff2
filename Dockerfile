# syntax=docker/dockerfile:1
# The gpufed operator image: one image, two modes, chosen by the first argument.
#
#   docker build -t gpufed:dev .
#   docker run --rm gpufed:dev --help
#   docker run --rm --read-only -p 9464:9464 -v $PWD/alice-agent.kubeconfig:/etc/gpufed/registry.kubeconfig:ro \
#     gpufed:dev agent --provider alice --registry-kubeconfig /etc/gpufed/registry.kubeconfig --metrics-addr 0.0.0.0:9464
#   docker run --rm --read-only -p 9465:9465 gpufed:dev registry --metrics-addr 0.0.0.0:9465
#
# The gpufed CLI is in the image too: docker run --rm --entrypoint node gpufed:dev /app/dist/cli/src/gpufed.js --help
# (all but `gpufed dev`, which needs the repo's fleets, crds/ and test support files).
#
# Node is the LTS in .node-version, the exact version in both stages (test/unit/dockerfile.test.ts
# checks the tags against it). Not pinned by digest: bump the tag with .node-version.

FROM node:26.10.0-bookworm-slim AS build
WORKDIR /app
# Dependencies first, so a source change does not re-install them.
# Not `npm ci`: package-lock.json lacks other platforms' optional binaries (the registry mirror the
# lockfile was made with answers 404 for them, see the Makefile), and `npm ci` rejects such a lock
# as out of sync before installing anything, with --omit=optional or --omit=dev too. `npm install`
# honours the lockfile's versions; the cmp makes the build fail, as `npm ci` would, if npm had to
# change the lock (package.json and package-lock.json disagree). --ignore-scripts: the package's own
# `prepare` would run tsc before the sources are here, and no dependency the build needs has an
# install script (the one that does, @parcel/watcher, is a dev tool's optional file watcher).
COPY package.json package-lock.json ./
RUN cp package-lock.json /tmp/package-lock.json \
 && npm install --ignore-scripts --no-audit --no-fund \
 && cmp package-lock.json /tmp/package-lock.json
# What tsconfig.build.json compiles (the unit test checks this list against it).
COPY tsconfig.json tsconfig.build.json ./
COPY operator/src ./operator/src
COPY cli/src ./cli/src
COPY tools/*.ts ./tools/
COPY bench ./bench
COPY test/support/dcgm-exporter.ts test/support/dcgm-render.ts ./test/support/
RUN npx tsc -p tsconfig.build.json
# Production dependencies only, from the same lockfile, in a tree of their own for the runtime stage.
RUN mkdir /prod && cp package.json package-lock.json /prod/ \
 && cd /prod && npm install --omit=dev --ignore-scripts --no-audit --no-fund \
 && cmp package-lock.json /app/package-lock.json

FROM node:26.10.0-bookworm-slim
LABEL org.opencontainers.image.title="gpufed" \
      org.opencontainers.image.description="A Kubernetes operator that federates home GPU clusters into one market, settled on a Cosmos SDK chain (agent and registry modes)." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.base.name="docker.io/library/node:26.10.0-bookworm-slim"
ENV NODE_ENV=production
WORKDIR /app
# package.json: the operator reads its version from it and finds its root by it (operator/src/version.ts).
COPY --from=build /prod/package.json /prod/package-lock.json ./
COPY --from=build /prod/node_modules ./node_modules
# The operator, and the CLI beside it; operator/src imports nothing from cli/src.
COPY --from=build /app/dist/operator ./dist/operator
COPY --from=build /app/dist/cli ./dist/cli
# Root owns every file and nobody may change them; the process writes nothing to disk, so the root
# filesystem can be mounted read-only. Numeric, so runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001
# The agent serves /metrics, /healthz and /readyz on 9464, the registry on 9465 and the fence
# guard on 9466; each binds 127.0.0.1 unless --metrics-addr says otherwise (0.0.0.0:9464 in a pod).
EXPOSE 9464 9465 9466
ENTRYPOINT ["node", "/app/dist/operator/src/main.js"]
CMD ["--help"]
