# The operator image: a static binary on a distroless base, run as a non-root user.
# Build with `make docker-build IMG=...` where a container engine is available. The local
# cluster's image is the same, made without one by hack/build-images.sh from `make build`'s binary:
# image_test.go fails when the two differ in Go build, base, user, working directory or entrypoint.
FROM golang:1.26 AS builder
WORKDIR /workspace
COPY go.mod go.sum ./
RUN go mod download
COPY main.go ./
COPY api/ api/
COPY controllers/ controllers/
COPY internal/ internal/
# The version string `manager --version` prints: docker build --build-arg VERSION=$(git describe ...).
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o manager .

FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
