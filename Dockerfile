# syntax=docker/dockerfile:1
# The sluice binary on a small Debian base. docker-compose.yml builds it;
# alone: docker build -t sluice . && docker run --rm -p 8080:8080 sluice up

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/sluice ./cmd/sluice

FROM debian:bookworm-slim
RUN apt-get update \
	&& apt-get install -y --no-install-recommends ca-certificates curl \
	&& rm -rf /var/lib/apt/lists/* \
	&& useradd --system --uid 10001 --user-group --home-dir /var/lib/sluice --create-home sluice
COPY --from=build /out/sluice /usr/local/bin/sluice
USER sluice
WORKDIR /var/lib/sluice
ENV HOME=/var/lib/sluice
VOLUME /var/lib/sluice
# HTTP (ingest, serving, admin, metrics) and Arrow Flight.
EXPOSE 8080 8815
ENTRYPOINT ["sluice"]
CMD ["up", "--data-dir", "/var/lib/sluice"]
