# The codeswarm worker (SDK only, no embedded server), with what sub-agents
# need on the host they run on: git for worktrees and merges, bubblewrap for
# the sandbox every model-chosen command runs in, and the Go toolchain (the
# golang base image) for `go build` / `go test` in the sub-agents' bash calls.
# Add the toolchains your repositories need in an image built FROM this one.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/codeswarm-worker ./worker && \
    CGO_ENABLED=0 go build -o /out/codeswarm ./starter

FROM golang:1.26
RUN apt-get update && \
    apt-get install -y --no-install-recommends git bubblewrap ca-certificates && \
    rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
ENTRYPOINT ["codeswarm-worker"]
