# BUILD-file macros (loaded by Pants as a prelude; see [GLOBAL] build_file_prelude_globs).


def wavepod_service(
    service,
    port,
    dependencies=(),
    test_dependencies=(),
    not_in_server=(),
    test_overrides=None,
    gpu=False,
):
    """The conventional targets of a service under services/<service>/.

    - `:lib`    its sources (tests live beside them as *_test.py, target `:tests`);
    - `:server` the PEX that `./pants run services/<service>:server` starts;
    - `:image`  the Docker image with that PEX, tagged with the git SHA;
    - with `gpu`: `:server-gpu` and `:image-gpu` (wavepod/<service>-gpu), the same on
      ONNX Runtime's CUDA build.

    `not_in_server` names helper modules (e.g. "testing.py") kept out of `:lib`, and so
    out of the PEX, in their own target `:helpers`. `test_overrides` is python_tests'
    `overrides` (e.g. one test file that starts another service as a process).
    """
    if not_in_server:
        excluded = ["!%s" % name for name in not_in_server]
        tests = ["!*_test.py", "!test_*.py", "!tests.py", "!conftest.py"]
        python_sources(
            name="lib", sources=["*.py", *tests, *excluded], dependencies=list(dependencies)
        )
        python_sources(name="helpers", sources=list(not_in_server))
    else:
        python_sources(name="lib", dependencies=list(dependencies))
    # Tests may start the service as a process (by module name), so they get all of it,
    # and services they talk to (`test_dependencies`, e.g. "services/ingest:lib").
    base = [":lib", *test_dependencies]
    overrides = {}
    for name, fields in (test_overrides or {}).items():
        # An override replaces a field: keep the tests' own dependencies beside its extra.
        extra = fields.get("dependencies")
        overrides[name] = dict(fields, dependencies=base + list(extra)) if extra else fields
    python_tests(name="tests", timeout=300, dependencies=base, overrides=overrides)
    pex_binary(
        name="server",
        entry_point="server.py",
        dependencies=[":lib"],
        # Services read their own files at run time; keep the PEX importable as a zip.
        restartable=True,
    )
    directory, env_prefix = "services/%s" % service, "WAVEPOD_%s_" % service.upper()
    wavepod_image("image", service, directory, "server", env_prefix, port)
    if gpu:
        # The same server on ONNX Runtime's CUDA build: the CPU build is excluded from
        # everything the PEX pulls in (both install the same `onnxruntime` package).
        pex_binary(
            name="server-gpu",
            entry_point="server.py",
            dependencies=[
                ":lib",
                "!!3rdparty/python:reqs#onnxruntime",
                "3rdparty/python:reqs#onnxruntime-gpu",
            ],
            restartable=True,
        )
        # Its production base must also carry CUDA 13 and cuDNN 9 (e.g. an image built
        # on nvidia/cuda's cudnn-runtime with CPython 3.11); without them ONNX Runtime
        # falls back to CPU and the model's config says so.
        wavepod_image("image-gpu", "%s-gpu" % service, directory, "server-gpu", env_prefix, port)


def wavepod_image(name, repository, directory, pex, env_prefix, port):
    """The Docker image wavepod/<repository> of the PEX target `pex` of the BUILD file in
    `directory`, tagged with the git SHA; its server reads <env_prefix>HOST and
    <env_prefix>PORT."""
    docker_image(
        name=name,
        repository="wavepod/%s" % repository,
        image_tags=["{build_args.GIT_SHA}", "latest"],
        dependencies=[":%s" % pex],
        instructions=[
            # Production builds from the official image; CI passes a locally made base.
            # The trainer also needs libgomp1 (LightGBM): its production base must add
            # it (these images have no RUN steps to install it).
            "ARG BASE_IMAGE=python:3.11-slim-bookworm",
            "FROM ${BASE_IMAGE}",
            "ARG GIT_SHA=unversioned",
            "LABEL org.opencontainers.image.title=wavepod-%s" % repository,
            "LABEL org.opencontainers.image.revision=${GIT_SHA}",
            # HOME too: libraries (matplotlib) keep caches under it; / is not writable.
            "ENV PEX_ROOT=/tmp/.pex HOME=/tmp %sHOST=0.0.0.0 %sPORT=%d"
            % (env_prefix, env_prefix, port),
            # Where Pants puts the PEX in the build context (e.g. services.gateway/server.pex).
            "COPY %s/%s.pex /app/server.pex" % (directory.replace("/", "."), pex),
            # No RUN steps: images build on a daemon without a network bridge.
            "USER 65532:65532",
            # Relative data paths (e.g. the default lake) land somewhere writable; mount a
            # volume and point WAVEPOD_<SERVICE>_* settings at it in production.
            "WORKDIR /tmp",
            "EXPOSE %d" % port,
            'ENTRYPOINT ["python3", "/app/server.pex"]',
        ],
    )
