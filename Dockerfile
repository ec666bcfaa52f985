# Multi-stage, multi-arch (docker buildx build --platform linux/amd64,linux/arm64 .).
# Not built in our CI: no container engine runs on the build machines (see README).
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY webhook/ webhook/
COPY certs/ certs/
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/workspace-webhook ./cmd/workspace-webhook

# Static binary on distroless: no shell, no package manager, non-root (uid 65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/workspace-webhook /workspace-webhook
USER 65532:65532
ENTRYPOINT ["/workspace-webhook"]
