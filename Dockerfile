# The Sluice node image: sluice-agent, the sluice CLI and the CNI binaries that
# the chart's init container installs on each node (helm/sluice).
#
#   bash scripts/build-image              # builds it here (makes debian:trixie-slim when no registry answers)
#   docker build --build-arg BASE=debian:trixie-slim -t sluice:dev .
#
# Stage "build" compiles what scripts/setup compiles on a developer machine:
# the native addon (node-gyp, against Debian's nodejs headers and the system
# libbpf), the BPF objects (clang), TypeScript, the CNI bundle (esbuild) and the
# CNI front end (cc; linked statically: the chart copies it onto nodes whose libc
# may be older than trixie's). The runtime stage is Debian's nodejs, libbpf1 and
# iproute2 plus those outputs and the production node modules, laid out under
# /opt/sluice as in the repository, because the code finds build/bpf/lxc.o,
# native/build/Release/sluice_bpf.node and the CNI files relative to itself.
ARG BASE=debian:trixie-slim

FROM ${BASE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config make g++ python3 \
      nodejs libnode-dev npm \
 && rm -rf /var/lib/apt/lists/*
# Trust anchors the builder's machine added locally (its /usr/local/share/ca-certificates, e.g.
# a proxy's CA that npm's registry answers through), given by scripts/build-image. Only this
# stage trusts them: the runtime stage below is built from BASE again and carries none.
ARG EXTRA_CA_CERTS=""
RUN if [ -n "$EXTRA_CA_CERTS" ]; then \
      printf '%s\n' "$EXTRA_CA_CERTS" >/usr/local/share/ca-certificates/build-extra.crt && update-ca-certificates >/dev/null; \
    fi
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error --cafile=/etc/ssl/certs/ca-certificates.crt
COPY native native
RUN npx node-gyp rebuild --silent --nodedir=/usr -C native
COPY bpf bpf
COPY scripts scripts
RUN bash scripts/build-bpf
COPY tsconfig.json ./
COPY src src
# Only src/ is compiled here (tests and benchmarks stay out of the image);
# rootDir stays "." so the output is dist/src/…, the layout the code expects.
RUN printf '{"extends":"./tsconfig.json","include":["src/**/*.ts"]}\n' >tsconfig.image.json \
 && npx tsc -p tsconfig.image.json \
 && node scripts/build-cni-bundle.mjs \
 && SHIM_LDFLAGS=-static bash scripts/build-cni-shim \
 && npm prune --omit=dev --no-audit --no-fund --loglevel=error

FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs libbpf1 iproute2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/sluice
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/native/build/Release/sluice_bpf.node native/build/Release/
COPY --from=build /src/build/bpf build/bpf
COPY --from=build /src/build/cni-shim/sluice-cni build/cni-shim/
COPY --from=build /src/dist/src dist/src
COPY --from=build /src/dist/bundle dist/bundle
# The flow API's protobuf schema, loaded by the agent at start (src/flow/wire/schema.ts).
COPY proto proto
# sluice-agent, sluice (the CLI) and sluice-cni (the plugin, and `sluice-cni install`).
RUN printf '#!/bin/sh\nexec /usr/bin/node /opt/sluice/%s "$@"\n' dist/src/agent/main.js >/usr/local/bin/sluice-agent \
 && printf '#!/bin/sh\nexec /usr/bin/node /opt/sluice/%s "$@"\n' dist/src/cli/main.js >/usr/local/bin/sluice \
 && printf '#!/bin/sh\nexec /usr/bin/node /opt/sluice/%s "$@"\n' dist/bundle/cni/sluice-cni.cjs >/usr/local/bin/sluice-cni \
 && chmod 755 /usr/local/bin/sluice-agent /usr/local/bin/sluice /usr/local/bin/sluice-cni \
 && sluice-agent --help >/dev/null
ENTRYPOINT ["/usr/local/bin/sluice-agent"]
