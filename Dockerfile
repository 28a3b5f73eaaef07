# wasmvisor as a container's entrypoint (PID 1): the static binary built by .ci/build-static on
# distroless/cc, which carries the glibc a node binary (gaiad, osmosisd, …) needs, CA certificates
# and a non-root user, and nothing else (no shell: a COSMOVISOR_CUSTOM_PREUPGRADE script must be a
# binary). The node binaries are not in the image: they live in $DAEMON_HOME on the volume,
# staged there (`wasmvisor init`, `add-upgrade`, or downloaded by the plan) and swapped by
# wasmvisor.
#
#   .ci/build-static x86_64
#   docker build --build-arg ARCH=x86_64 -t wasmvisor:0.1.0 .
FROM gcr.io/distroless/cc-debian12:nonroot
ARG ARCH=x86_64
COPY target/static/wasmvisor-${ARCH} /usr/local/bin/wasmvisor
COPY target/static/wasmvisor.1 /usr/local/share/man/man1/wasmvisor.1
USER 65532:65532
ENV DAEMON_HOME=/home/nonroot/.node \
    WASMVISOR_METRICS_ADDRESS=0.0.0.0:9464 \
    COSMOVISOR_COLOR_LOGS=false
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/wasmvisor", "run"]
CMD ["start"]
