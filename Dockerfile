# The build service's image (`kce serve`): kce on Node.js 24 and repo2docker 2026.4.0 + repo2docker-kce on
# Debian 12's Python 3.11 (BASE_IMAGE = test/cluster/up's KCE_PYTHON_BASE_IMAGE). Built by kce itself, in the
# cluster, from a context that scripts/service-image stages in .service-image/ (builder pods have no network:
# nothing is downloaded here):
#   source ~/.cache/kce/cluster.env && scripts/service-image      # prints the image reference
# Runs as 1000:1000 and works with a read-only root filesystem: it writes only to /tmp and $HOME (emptyDirs).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

# node (+ its LICENSE) under /usr/local
COPY .service-image/node/ /usr/local/
COPY .service-image/wheels/ /tmp/wheels/
# a venv without pip and setuptools (nothing at run time needs them): Debian's pip wheel runs the install
RUN python3 -m venv --without-pip /opt/repo2docker \
 && set -- /usr/share/python-wheels/pip-*.whl \
 && /opt/repo2docker/bin/python "$1/pip" install -q --no-index --no-cache-dir \
      --disable-pip-version-check --find-links /tmp/wheels jupyter-repo2docker repo2docker-kce \
 && rm -rf /tmp/wheels \
 && printf '#!/bin/sh\nexec node --max-semi-space-size=2 /app/dist/cli/main.js "$@"\n' > /usr/local/bin/kce \
 && chmod 755 /usr/local/bin/kce \
 && groupadd -g 1000 kce \
 && useradd -l -u 1000 -g 1000 -d /home/kce -m -s /bin/bash kce
COPY .service-image/app/ /app/

ENV PATH=/opt/repo2docker/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/home/kce \
    NODE_ENV=production
USER 1000:1000
WORKDIR /home/kce
ENTRYPOINT ["/usr/bin/tini", "--", "kce"]
CMD ["serve"]
