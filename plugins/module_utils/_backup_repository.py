# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

"""A project's backup repository on the host. Private to this collection.

Layout of <supamanager_backup_root>/<ref>/ (every directory 0700, every file 0600):

    wal/<chain>/            WAL segments streamed by the backup agent (pg_receivewal); one chain per
                            continuous history of the database; a restore starts a new one
    wal/current             symlink to the chain the agent writes now
    archive/<id>/           one finished backup: backup.json (the manifest), base/ (pg_basebackup, tar),
                            db/ (pg_dumpall --globals-only, pg_dump -Fc per database), storage.tar,
                            functions.tar, settings.tar.enc (encrypted: .env, keys, database config)
    archive/.tmp-<id>/      a backup being written; renamed to <id> only once complete, so a crash never
                            leaves a partial backup that is listed
    deleted.json            written when the project is deleted ({"deleted_at": unix seconds}): the
                            retention of a deleted project counts from it (prune_deleted)

A backup's id is an integer (the official API's shape): its start time in unix seconds, made unique.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil

from ansible_collections.supamanager.supabase.plugins.module_utils._atomic_file import write_atomically

DIR_MODE = 0o700
FILE_MODE = 0o600
MANIFEST = "backup.json"
DELETED = "deleted.json"
REF_DIR_RE = re.compile(r"[a-z][a-z0-9-]{1,38}[a-z0-9]")  # a project ref (roles/project validate.yml)
STAGING_PREFIX = ".tmp-"
ID_RE = re.compile(r"[0-9]{1,12}")
CHAIN_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
WAL_RE = re.compile(r"([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?")
LSN_RE = re.compile(r"([0-9A-F]{1,8})/([0-9A-F]{1,8})")
WAL_SEGMENT_SIZE = 16 * 1024 * 1024
STATUSES = ("COMPLETED", "FAILED")


class BackupError(Exception):
    pass


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def archive_dir(repo):
    return os.path.join(repo, "archive")


def wal_dir(repo):
    return os.path.join(repo, "wal")


def ensure_dir(path):
    if not os.path.isdir(path):
        os.makedirs(path, DIR_MODE)
    os.chmod(path, DIR_MODE)


def check_id(value):
    text = str(value)
    if not ID_RE.fullmatch(text):
        raise BackupError(f"backup id must be a number of 1-12 digits; got {text[:40]!r}")
    return int(text)


def begin(repo, now):
    """Remove what crashed runs left (staging directories), make a staging directory for a new backup.

    One backup per project runs at a time (the daemon serializes, the one-shot container has a fixed
    name), so every staging directory found here is a crashed run's.
    """
    archive = archive_dir(repo)
    for path in (repo, archive, wal_dir(repo)):
        ensure_dir(path)
    removed = []
    for name in sorted(os.listdir(archive)):
        if name.startswith(STAGING_PREFIX):
            shutil.rmtree(os.path.join(archive, name))
            removed.append(name)
    backup_id = int(now)
    while os.path.exists(os.path.join(archive, str(backup_id))):
        backup_id += 1
    staging = os.path.join(archive, STAGING_PREFIX + str(backup_id))
    os.mkdir(staging, DIR_MODE)
    return {"id": backup_id, "staging": staging, "stale_removed": removed, "chain": current_chain(repo)}


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_table(directory):
    """Every file under directory except the manifest: relative path -> {size, sha256}; modes set to 0600."""
    table = {}
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, directory)
            if rel == MANIFEST:
                continue
            os.chmod(path, FILE_MODE)
            table[rel] = {"size": os.path.getsize(path), "sha256": sha256_file(path)}
        for name in dirs:
            os.chmod(os.path.join(root, name), DIR_MODE)
    return table


def lsn_value(text):
    match = LSN_RE.fullmatch(text or "")
    if not match:
        raise BackupError(f"not an LSN: {text!r}")
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


def segment_name(timeline, lsn):
    """The WAL file that holds lsn on timeline (16 MB segments)."""
    segno = lsn // WAL_SEGMENT_SIZE
    per_id = 0x100000000 // WAL_SEGMENT_SIZE
    return f"{timeline:08X}{segno // per_id:08X}{segno % per_id:08X}"


def base_range(staging):
    """Timeline and start/end LSN of the base backup, from pg_basebackup's backup_manifest."""
    path = os.path.join(staging, "base", "backup_manifest")
    try:
        with open(path) as handle:
            ranges = json.load(handle)["WAL-Ranges"]
        first, last = ranges[0], ranges[-1]
        return {
            "timeline": int(last["Timeline"]),
            "start_lsn": first["Start-LSN"],
            "end_lsn": last["End-LSN"],
            "start_wal": segment_name(int(first["Timeline"]), lsn_value(first["Start-LSN"])),
        }
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise BackupError(f"the base backup has no readable backup_manifest ({exc})") from exc


def current_chain(repo):
    link = os.path.join(wal_dir(repo), "current")
    if not os.path.islink(link):
        return None
    target = os.readlink(link)
    return target if CHAIN_RE.fullmatch(target) else None


def read_manifest(path):
    with open(os.path.join(path, MANIFEST)) as handle:
        return json.load(handle)


def commit(repo, staging, info, checks, now):
    """Write the manifest and publish the backup (rename staging -> id). Status from the checks."""
    name = os.path.basename(staging)
    if not name.startswith(STAGING_PREFIX) or os.path.dirname(os.path.abspath(staging)) != os.path.abspath(
        archive_dir(repo)
    ):
        raise BackupError(f"{staging} is not a staging directory of {repo}")
    backup_id = check_id(name[len(STAGING_PREFIX) :])
    files = file_table(staging)
    failed = [c for c in checks if not c.get("ok")]
    manifest = dict(info)
    manifest.update(
        {
            "id": backup_id,
            "time": backup_id,
            "inserted_at": iso(backup_id),
            "finished_at": iso(now),
            "size": sum(f["size"] for f in files.values()),
            "status": "FAILED" if failed else "COMPLETED",
            "reason": "; ".join(c.get("message", c.get("name", "check")) for c in failed) or None,
            "checks": checks,
            "files": files,
        }
    )
    if os.path.isdir(os.path.join(staging, "base")):
        manifest["base"] = base_range(staging)
        try:
            with open(os.path.join(staging, "base", "end_time")) as handle:
                manifest["base_end"] = int(handle.read().strip())
        except (OSError, ValueError) as exc:
            raise BackupError("the base backup has no end time (base/end_time)") from exc
    manifest.setdefault("chain", current_chain(repo))
    try:
        with open(os.path.join(staging, "db", "databases.tsv")) as handle:
            manifest["databases"] = [line.split("\t", 1)[1] for line in handle.read().splitlines() if "\t" in line]
    except OSError:
        manifest["databases"] = []
    write_atomically(os.path.join(staging, MANIFEST), json.dumps(manifest, indent=2, sort_keys=True) + "\n", FILE_MODE)
    final = os.path.join(archive_dir(repo), str(backup_id))
    os.rename(staging, final)
    fd = os.open(archive_dir(repo), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return summary(manifest)


def summary(manifest):
    """What listings show of a backup: never a path inside it, never a secret (there are none in it)."""
    keys = ("id", "time", "inserted_at", "finished_at", "size", "status", "reason", "chain", "databases", "base_end")
    out = {key: manifest.get(key) for key in keys}
    out["checks"] = [{"name": c.get("name"), "ok": bool(c.get("ok"))} for c in manifest.get("checks", [])]
    out["verified_at"] = manifest.get("verified_at")
    return out


def backups(repo):
    """Every published backup (never a staging directory), oldest first."""
    archive = archive_dir(repo)
    if not os.path.isdir(archive):
        return []
    found = []
    for name in os.listdir(archive):
        if not ID_RE.fullmatch(name):
            continue
        try:
            found.append(read_manifest(os.path.join(archive, name)))
        except (OSError, ValueError):
            continue  # not a backup of ours
    return sorted(found, key=lambda m: m["id"])


def find(repo, backup_id):
    backup_id = check_id(backup_id)
    for manifest in backups(repo):
        if manifest["id"] == backup_id:
            return manifest
    raise BackupError(f"no backup {backup_id} of this project")


def verify_files(repo, backup_id):
    """Recompute every file's checksum against the manifest; a list of problems (empty: all match)."""
    path = os.path.join(archive_dir(repo), str(check_id(backup_id)))
    manifest = read_manifest(path)
    problems = []
    for rel, want in sorted(manifest.get("files", {}).items()):
        full = os.path.join(path, rel)
        if not os.path.isfile(full):
            problems.append(f"{rel} is missing")
        elif os.path.getsize(full) != want["size"] or sha256_file(full) != want["sha256"]:
            problems.append(f"{rel} does not match its checksum")
    return problems


def mark(repo, backup_id, checks, now):
    """Record a later verification: FAILED when any check failed, COMPLETED when all passed."""
    path = os.path.join(archive_dir(repo), str(check_id(backup_id)))
    manifest = read_manifest(path)
    failed = [c for c in checks if not c.get("ok")]
    manifest["checks"] = checks
    manifest["status"] = "FAILED" if failed else "COMPLETED"
    manifest["reason"] = "; ".join(c.get("message", c.get("name", "check")) for c in failed) or None
    manifest["verified_at"] = iso(now)
    write_atomically(os.path.join(path, MANIFEST), json.dumps(manifest, indent=2, sort_keys=True) + "\n", FILE_MODE)
    return summary(manifest)


def parse_target_time(value):
    """A recovery target: unix seconds or ISO 8601 with a zone -> unix seconds (int)."""
    text = str(value).strip()
    if re.fullmatch(r"[0-9]{1,12}", text):
        return int(text)
    match = re.fullmatch(
        r"([0-9]{4}-[0-9]{2}-[0-9]{2})[T ]([0-9]{2}:[0-9]{2}:[0-9]{2})(Z|[+-][0-9]{2}:?[0-9]{2})", text
    )
    if not match:
        raise BackupError(f"recovery target time must be unix seconds or ISO 8601 with a zone; got {text[:40]!r}")
    zone = match.group(3).replace("Z", "+00:00")
    if ":" not in zone:
        zone = zone[:3] + ":" + zone[3:]
    stamp = datetime.datetime.fromisoformat(f"{match.group(1)}T{match.group(2)}{zone}")
    return int(stamp.timestamp())


def chain_span(repo, chain):
    """Unix time of the newest WAL file of a chain (the latest point it can reach), or None."""
    path = os.path.join(wal_dir(repo), chain)
    newest = None
    if os.path.isdir(path):
        for name in os.listdir(path):
            if WAL_RE.fullmatch(name):
                mtime = os.path.getmtime(os.path.join(path, name))
                newest = mtime if newest is None else max(newest, mtime)
    return newest


def window(repo):
    """The recovery window: earliest and latest unix second a point-in-time restore can reach."""
    done = [m for m in backups(repo) if m.get("status") == "COMPLETED" and m.get("base_end")]
    if not done:
        return {"earliest": None, "latest": None}
    latest = None
    for chain in {m.get("chain") for m in done if m.get("chain")}:
        end = chain_span(repo, chain)
        if end is not None:
            latest = end if latest is None else max(latest, end)
    latest = max(int(latest or 0), done[-1]["base_end"])
    return {"earliest": done[0]["base_end"], "latest": latest}


def plan(repo, backup_id=None, target_time=None):
    """Pick what a restore replays: a backup by id (to its consistent end), or the newest completed base
    backup that ended before target_time (then its chain's WAL up to that second), or, with neither,
    the newest completed backup and all the WAL of its chain (the latest point)."""
    done = [m for m in backups(repo) if m.get("status") == "COMPLETED" and m.get("base")]
    if backup_id is not None:
        manifest = find(repo, backup_id)
        if manifest.get("status") != "COMPLETED":
            raise BackupError(f"backup {manifest['id']} is {manifest.get('status')} and cannot be restored")
        return dict(restore_source(manifest), target="immediate")
    if not done:
        raise BackupError("this project has no completed backup to restore from")
    if target_time is None:
        manifest = done[-1]
        return dict(restore_source(manifest), target="latest")
    target = parse_target_time(target_time)
    before = [m for m in done if m.get("base_end") is not None and m["base_end"] <= target]
    if not before:
        raise BackupError(
            "{} is before the recovery window (its first backup ended at {})".format(
                iso(target), iso(done[0]["base_end"])
            )
        )
    manifest = before[-1]
    if not manifest.get("chain"):
        raise BackupError(f"backup {manifest['id']} has no WAL chain: only a restore of the backup itself is possible")
    return dict(
        restore_source(manifest),
        **{
            "target": "time",
            "target_time": iso(target),
            "target_unix": target,
            # what recovery_target_time accepts (PostgreSQL reads no "T" or "Z")
            "target_time_pg": datetime.datetime.fromtimestamp(target, datetime.timezone.utc).strftime(
                "%Y-%m-%d %H:%M:%S+00"
            ),
        },
    )


def restore_source(manifest):
    """The backup a restore unpacks, its WAL chain and the first WAL segment its replay reads."""
    base = manifest.get("base") or {}
    return {
        "backup": summary(manifest),
        "id": manifest["id"],
        "chain": manifest.get("chain"),
        "start_wal": base.get("start_wal", ""),
    }


def keep_set(done, keep_daily, keep_weekly):
    """Ids of completed backups kept: the newest of each of the last keep_daily days and keep_weekly weeks."""
    kept, days, weeks = set(), [], []
    for manifest in sorted(done, key=lambda m: m["id"], reverse=True):
        stamp = datetime.datetime.fromtimestamp(manifest["id"], datetime.timezone.utc)
        day, week = stamp.date(), stamp.isocalendar()[:2]
        if day not in days and len(days) < keep_daily:
            days.append(day)
            kept.add(manifest["id"])
        if week not in weeks and len(weeks) < keep_weekly:
            weeks.append(week)
            kept.add(manifest["id"])
    return kept


def prune(repo, keep_daily, keep_weekly, wal_keep_days, now, check_mode=False):
    """Apply the retention: backups beyond it, then WAL no kept backup needs and older than wal_keep_days.

    The newest completed backup is always kept; a failed backup goes when it is older than the
    oldest kept one. WAL of a chain is kept from the start of its oldest kept base backup on. A
    restore point (a backup that carries a name) is kept too, with its own WAL only: it pins no chain.
    """
    everything = backups(repo)
    done = [m for m in everything if m.get("status") == "COMPLETED"]
    kept = keep_set(done, max(keep_daily, 1), keep_weekly)
    points = {m["id"] for m in done if m.get("restore_point")}
    oldest_kept = min(kept) if kept else None
    removed = []
    for manifest in everything:
        is_done = manifest.get("status") == "COMPLETED"
        if (is_done and manifest["id"] not in kept | points) or (
            not is_done and oldest_kept is not None and manifest["id"] < oldest_kept
        ):
            removed.append(manifest["id"])
            if not check_mode:
                shutil.rmtree(os.path.join(archive_dir(repo), str(manifest["id"])))
    # WAL: per chain, the first segment any kept backup needs; chains no kept backup uses go once old.
    needed = {}
    for manifest in done:
        if manifest["id"] in kept and manifest.get("chain") and manifest.get("base"):
            start = manifest["base"]["start_wal"]
            chain = manifest["chain"]
            needed[chain] = min(needed.get(chain, start), start)
    cutoff = now - wal_keep_days * 86400
    current = current_chain(repo)
    wal_removed = 0
    wal_root = wal_dir(repo)
    for chain in sorted(os.listdir(wal_root)) if os.path.isdir(wal_root) else []:
        path = os.path.join(wal_root, chain)
        if not CHAIN_RE.fullmatch(chain) or os.path.islink(path) or not os.path.isdir(path):
            continue
        for name in sorted(os.listdir(path)):
            match = WAL_RE.fullmatch(name)
            if not match:
                continue
            full = os.path.join(path, name)
            if os.path.getmtime(full) >= cutoff:
                continue
            first = needed.get(chain)
            if (first is not None and name[:24] < first) or (first is None and chain != current):
                wal_removed += 1
                if not check_mode:
                    os.unlink(full)
        if chain != current and chain not in needed and not check_mode and not os.listdir(path):
            os.rmdir(path)
    return {"removed": removed, "wal_removed": wal_removed, "kept": sorted(kept)}


def mark_deleted(repo, now):
    """The project was deleted at now: its repository (if it has one) says so; True when written."""
    if not os.path.isdir(repo):
        return False
    write_atomically(os.path.join(repo, DELETED), json.dumps({"deleted_at": int(now)}) + "\n", FILE_MODE)
    return True


def deleted_at(repo):
    """When the project of this repository was deleted (unix seconds), or None (not deleted, unreadable)."""
    try:
        with open(os.path.join(repo, DELETED)) as handle:
            value = json.load(handle).get("deleted_at")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def prune_deleted(backup_root, projects_root, keep_days, now, check_mode=False):
    """Remove the whole repository (backups and WAL) of every project deleted keep_days or more ago.

    A repository goes only while its project's directory (projects_root/<ref>) is gone: a deleted
    project restored since keeps its repository whatever its old mark says. Returns the refs removed.
    """
    removed = []
    cutoff = now - keep_days * 86400
    for ref in sorted(os.listdir(backup_root)) if os.path.isdir(backup_root) else []:
        repo = os.path.join(backup_root, ref)
        if not REF_DIR_RE.fullmatch(ref) or os.path.islink(repo) or not os.path.isdir(repo):
            continue
        when = deleted_at(repo)
        if when is None or when > cutoff or os.path.lexists(os.path.join(projects_root, ref)):
            continue
        removed.append(ref)
        if not check_mode:
            shutil.rmtree(repo)
    return removed


# Settings and secrets: one tar, encrypted with openssl (AES-256-CBC, PBKDF2) under the host's backup
# key; the manifest's checksum catches a changed byte. The clear tar exists only in memory.
SEALED = "settings.tar.enc"
OPENSSL_ENC = ["enc", "-aes-256-cbc", "-pbkdf2", "-iter", "200000", "-md", "sha256"]


def ensure_key(key_file):
    """The host's backup key (64 hex characters, 0600); made once, never shown. True when made now."""
    if os.path.exists(key_file):
        os.chmod(key_file, FILE_MODE)
        return False
    ensure_dir(os.path.dirname(key_file))
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        handle.write(os.urandom(32).hex() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return True


def seal(run_command, openssl, staging, sources, key_file):
    """Pack sources ([(path on the host, name in the archive)]) into staging/settings.tar.enc.

    A source that is a file inside staging (the database config tar the backup container wrote)
    is removed once sealed, so nothing secret stays in clear in the backup.
    """
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for src, name in sources:
            if os.path.exists(src):
                tar.add(src, arcname=name, recursive=True)
    out = os.path.join(staging, SEALED)
    cmd = [openssl, *OPENSSL_ENC, "-salt", "-pass", f"file:{key_file}", "-out", out]
    rc, _out, err = run_command(cmd, data=buffer.getvalue(), binary_data=True)
    if rc != 0:
        raise BackupError(f"openssl could not encrypt the settings: {err.strip()[:300]}")
    os.chmod(out, FILE_MODE)
    inside = os.path.abspath(staging) + os.sep
    for src, _name in sources:
        if os.path.abspath(src).startswith(inside) and os.path.isfile(src):
            os.unlink(src)
    return out


def unseal(run_command, openssl, backup_path, key_file, dest):
    """Decrypt a backup's settings.tar.enc and unpack it into dest (0700, files 0600). Names inside."""
    import io
    import tarfile

    cmd = [openssl, *OPENSSL_ENC, "-d", "-pass", f"file:{key_file}", "-in", os.path.join(backup_path, SEALED)]
    rc, out, err = run_command(cmd, binary_data=True, encoding=None)
    if rc != 0:
        raise BackupError(f"openssl could not decrypt the settings (wrong backup key?): {str(err).strip()[:300]}")
    ensure_dir(dest)
    names = []
    with tarfile.open(fileobj=io.BytesIO(out), mode="r") as tar:
        for member in tar.getmembers():
            norm = os.path.normpath(member.name)
            if os.path.isabs(member.name) or norm == ".." or norm.startswith(".." + os.sep):
                raise BackupError(f"the settings archive names a path outside it: {member.name!r}")
            if not (member.isfile() or member.isdir()):
                continue
            target = os.path.join(dest, norm)
            if member.isdir():
                ensure_dir(target)
                continue
            ensure_dir(os.path.dirname(target))
            data = tar.extractfile(member).read()
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            names.append(norm)
    return sorted(names)


def chain_name(now):
    return datetime.datetime.fromtimestamp(int(now), datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def switch_chain(repo, chain=None, now=None):
    """Point wal/current at chain (a new, empty one when None); returns the previous and the new chain.

    A restore gives the database a new history, and pg_receivewal cannot continue the old chain's
    files with it; the agent writes where wal/current points when it starts.
    """
    root = wal_dir(repo)
    for path in (repo, root):
        ensure_dir(path)
    previous = current_chain(repo)
    if chain is None:
        stamp = int(now)
        chain = chain_name(stamp)
        while os.path.exists(os.path.join(root, chain)):
            stamp += 1
            chain = chain_name(stamp)
    elif not CHAIN_RE.fullmatch(str(chain)):
        raise BackupError(f"not a WAL chain name: {str(chain)[:40]!r}")
    ensure_dir(os.path.join(root, chain))
    tmp = os.path.join(root, ".current.tmp")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(chain, tmp)
    os.replace(tmp, os.path.join(root, "current"))
    return {"previous": previous, "current": chain}
