# imagefix in an image: the CLI, the webhook server (deploy/) and the fleet audit (docs/examples/).
#
#   pip wheel . -w wheels/          # on the host, with the base's Python minor (the registries are used here)
#   docker build -t imagefix .      # offline from here on: --no-index, only the wheels in wheels/
#
# BASE is any image with python3 and pip at /usr/local/bin, as the official python:X-slim has them; the
# tests build from a base made of the host's own Python (tests/python_base.py). Both stages use exec-form
# RUN/ENTRYPOINT: nothing here needs a shell, and the test base has none.
ARG BASE=python:3.12-slim

FROM ${BASE} AS build
COPY wheels/ /wheels/
RUN ["python3", "-m", "pip", "install", "--no-index", "--find-links=/wheels", "--target=/opt/imagefix", \
     "--no-cache-dir", "--disable-pip-version-check", "--root-user-action=ignore", "kata-imagefix"]

FROM ${BASE}
COPY --from=build /opt/imagefix /opt/imagefix
# the layer cache wants a writable folder; the webhook's Deployment points this at its own volume
ENV PYTHONPATH=/opt/imagefix \
    PYTHONDONTWRITEBYTECODE=1 \
    IMAGEFIX_CACHE_DIR=/tmp/imagefix-cache
USER 65532:65532
ENTRYPOINT ["/opt/imagefix/bin/imagefix"]
CMD ["--help"]
