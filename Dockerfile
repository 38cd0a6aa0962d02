# syntax=docker/dockerfile:1
# pipekit-log-collector image: the `bun build --compile` executable on distroless `cc` (glibc).
#
#   docker build --build-arg GIT_COMMIT=$(git rev-parse --short=12 HEAD) -t pipekit-log-collector .
#   docker buildx build --platform linux/amd64,linux/arm64 ...   (cross-compiled, no emulation)
#
# The build stage runs on the build machine's platform and cross-compiles for the image's
# platform with `--target` (Bun fetches that runtime from the npm registry). The runtime stage
# holds only the executable: no shell, no package manager, nothing else to patch.

ARG BUN_VERSION=1.4.5

FROM --platform=$BUILDPLATFORM oven/bun:${BUN_VERSION} AS build
WORKDIR /src
# Runtime dependencies only; the `bun` npm package's postinstall would fetch a second Bun.
COPY package.json package-lock.json ./
RUN bun install --production --ignore-scripts --frozen-lockfile
COPY tsconfig.json ./
COPY scripts/build.ts ./scripts/build.ts
COPY src ./src
ARG TARGETARCH
# amd64 images use the x64 build with AVX2; pass X64_VARIANT=linux-x64-baseline for older CPUs.
ARG X64_VARIANT=linux-x64
ARG GIT_COMMIT=unknown
ENV PIPEKIT_BUILD_COMMIT=${GIT_COMMIT}
RUN case "${TARGETARCH:-amd64}" in \
      amd64) variant="${X64_VARIANT}" ;; \
      arm64) variant=linux-arm64 ;; \
      *) echo "unsupported TARGETARCH ${TARGETARCH}" >&2; exit 1 ;; \
    esac \
 && bun scripts/build.ts --target "$variant" --outdir /out \
 && mv "/out/pipekit-log-collector-$variant" /out/pipekit-log-collector \
 && case "$(uname -m)/${TARGETARCH:-amd64}" in \
      x86_64/amd64|aarch64/arm64) /out/pipekit-log-collector --version ;; \
    esac

FROM gcr.io/distroless/cc-debian12 AS runtime
ARG VERSION=0.1.0
ARG GIT_COMMIT=unknown
LABEL org.opencontainers.image.title="pipekit-log-collector" \
      org.opencontainers.image.description="Node log collector for Argo Workflows under Pipekit: tails container logs and delivers them to the Pipekit messenger through a crash-safe on-disk ring." \
      org.opencontainers.image.vendor="Pipekit" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.source="https://github.com/pipekit/pipekit-log-collector" \
      org.opencontainers.image.licenses="UNLICENSED" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12"
COPY --from=build /out/pipekit-log-collector /usr/local/bin/pipekit-log-collector
# uid 0 on purpose: container runtimes write log files 0640 root:root. The DaemonSet drops every
# capability (no CAP_DAC_OVERRIDE, no CAP_DAC_READ_SEARCH), so root here can read what root owns
# and nothing more; the root filesystem is read-only and writes go to the data dir volume.
USER 0:0
EXPOSE 8686
ENTRYPOINT ["/usr/local/bin/pipekit-log-collector"]
CMD ["run"]
