# The codeswarm worker (SDK only, no embedded server). Workers need git,
# bubblewrap (the sandbox of every model-run command) and whatever toolchains
# the sub-agents' bash commands use on your repositories. bubblewrap needs
# user namespaces: run the container with --security-opt seccomp=unconfined
# (or a profile allowing unshare/mount), or set tools.sandbox: off.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/codeswarm-worker ./worker && \
    CGO_ENABLED=0 go build -o /out/codeswarm ./starter

FROM golang:1.26
RUN apt-get update && apt-get install -y --no-install-recommends git bubblewrap ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
ENTRYPOINT ["codeswarm-worker"]
