# logmesh from scratch: no base image to pull, just the static binary that
# `make build` writes (CGO_ENABLED=0). Build with `make docker`.
FROM scratch
COPY bin/logmesh /logmesh
VOLUME /data
# API (HTTP), gossip (TCP and UDP), syslog (TCP and UDP)
EXPOSE 7070 7946 7946/udp 5514 5514/udp
ENTRYPOINT ["/logmesh"]
CMD ["agent", "--data-dir", "/data", "--gossip-addr", ":7946"]
