#!/usr/bin/env python3
"""Build a FROM-scratch image from a Containerfile without a daemon, a registry or network.

Reads the Containerfile's instructions (the subset a scratch image needs: FROM scratch, COPY
[--chmod=MODE] [--chown=UID:GID], ENV, USER, WORKDIR, ENTRYPOINT, CMD, LABEL; anything else is
refused), takes the files from the build context, and writes:

  --rootfs DIR   the image's root filesystem (to inspect, or to run with chroot)
  --layout DIR   an OCI image layout (oci-layout, index.json, blobs/sha256/...): one gzip layer,
                 the image config (User, Entrypoint, Env, ...) and the manifest
  --archive FILE the same layout as one tar (an "oci-archive", what skopeo and podman load)

The layer is reproducible: entries sorted, owned by root unless --chown says otherwise, every
timestamp SOURCE_DATE_EPOCH (default 0), gzip without a name or time. Only the Python standard
library is used.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import shlex
import shutil
import stat
import struct
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"


class BuildError(Exception):
    pass


@dataclass
class Entry:
    path: str  # absolute, POSIX, no trailing slash
    mode: int  # permission bits (with sticky etc.)
    uid: int = 0
    gid: int = 0
    data: bytes | None = None  # None: a directory


@dataclass
class Image:
    entries: dict[str, Entry] = field(default_factory=dict)
    env: list[str] = field(default_factory=list)
    user: str | None = None
    workdir: str | None = None
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)

    def add(self, entry: Entry) -> None:
        parts = PurePosixPath(entry.path).parts[1:]
        for i in range(1, len(parts)):
            parent = "/" + "/".join(parts[:i])
            if parent not in self.entries:
                self.entries[parent] = Entry(parent, 0o755)
            elif self.entries[parent].data is not None:
                raise BuildError(f"{parent} is a file, cannot hold {entry.path}")
        self.entries[entry.path] = entry


def instructions(text: str):
    """(keyword, rest) per instruction: comments dropped, continuation lines joined."""
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, rest = logical.partition(" ")
        yield keyword.upper(), rest.strip()
        logical = ""
    if logical:
        raise BuildError(f"unfinished instruction: {logical}")


def json_or_shell(rest: str) -> list[str]:
    if rest.startswith("["):
        value = json.loads(rest)
        if not all(isinstance(v, str) for v in value):
            raise BuildError(f"not a list of strings: {rest}")
        return value
    return ["/bin/sh", "-c", rest]


def copy(image: Image, context: Path, args: list[str]) -> None:
    chmod = None
    uid = gid = 0
    while args and args[0].startswith("--"):
        flag, _, value = args.pop(0).partition("=")
        if flag == "--chmod":
            chmod = int(value, 8)
        elif flag == "--chown":
            u, _, g = value.partition(":")
            uid, gid = int(u), int(g or u)
        else:
            raise BuildError(f"COPY {flag} is not supported")
    if len(args) != 2:
        raise BuildError(f"COPY takes one source and one destination here: {args}")
    src, dest = context / args[0], args[1]
    if not dest.startswith("/"):
        raise BuildError(f"COPY destination must be absolute: {dest}")
    if not src.resolve().is_relative_to(context.resolve()):
        raise BuildError(f"COPY source outside the context: {args[0]}")
    dest = dest.rstrip("/") or "/"
    if src.is_dir():
        image.add(Entry(dest, chmod if chmod is not None else 0o755, uid, gid))
        for path in sorted(src.rglob("*")):
            target = dest + "/" + path.relative_to(src).as_posix()
            if path.is_dir():
                image.add(Entry(target, chmod if chmod is not None else 0o755, uid, gid))
            else:
                mode = chmod if chmod is not None else stat.S_IMODE(path.stat().st_mode)
                image.add(Entry(target, mode, uid, gid, path.read_bytes()))
    elif src.is_file():
        if args[1].endswith("/"):
            dest = dest + "/" + src.name
        mode = chmod if chmod is not None else stat.S_IMODE(src.stat().st_mode)
        image.add(Entry(dest, mode, uid, gid, src.read_bytes()))
    else:
        raise BuildError(f"COPY source missing from the context: {args[0]}")


def parse(containerfile: Path, context: Path) -> Image:
    image = Image()
    seen_from = False
    for keyword, rest in instructions(containerfile.read_text()):
        if keyword == "FROM":
            if rest != "scratch" or seen_from:
                raise BuildError("only a single-stage FROM scratch is supported (nothing is pulled)")
            seen_from = True
            continue
        if not seen_from:
            raise BuildError(f"{keyword} before FROM")
        if keyword == "COPY":
            copy(image, context, shlex.split(rest))
        elif keyword == "ENV":
            for item in shlex.split(rest):
                if "=" not in item:
                    raise BuildError(f"ENV takes KEY=VALUE pairs: {item}")
                key = item.split("=", 1)[0]
                image.env = [e for e in image.env if not e.startswith(key + "=")] + [item]
        elif keyword == "USER":
            image.user = rest
        elif keyword == "WORKDIR":
            image.workdir = rest
        elif keyword == "ENTRYPOINT":
            image.entrypoint = json_or_shell(rest)
        elif keyword == "CMD":
            image.cmd = json_or_shell(rest)
        elif keyword == "LABEL":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                image.labels[key] = value
        else:
            raise BuildError(f"{keyword} is not supported in a daemonless scratch build")
        image.history.append({"created_by": f"{keyword} {rest}", **({"empty_layer": True} if keyword != "COPY" else {})})
    if not seen_from:
        raise BuildError("no FROM scratch")
    return image


def elf_is_static(data: bytes) -> bool:
    """True for an x86-64 ELF executable without a program interpreter (PT_INTERP)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise BuildError("not a 64-bit little-endian ELF file")
    (machine,) = struct.unpack_from("<H", data, 18)
    if machine != 62:
        raise BuildError(f"not an x86-64 binary (e_machine {machine})")
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    for i in range(phnum):
        (p_type,) = struct.unpack_from("<I", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


def layer_tar(image: Image, mtime: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(image.entries):
            e = image.entries[path]
            info = tarfile.TarInfo(path.lstrip("/") + ("/" if e.data is None else ""))
            info.mtime, info.uid, info.gid = mtime, e.uid, e.gid
            info.uname = info.gname = "root" if e.uid == 0 else ""
            info.mode = e.mode
            if e.data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
    return buf.getvalue()


def write_rootfs(image: Image, root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    is_root = os.geteuid() == 0
    for path in sorted(image.entries):
        e = image.entries[path]
        target = root / path.lstrip("/")
        if e.data is None:
            target.mkdir(exist_ok=True)
        else:
            target.write_bytes(e.data)
        os.chmod(target, e.mode)
        if is_root:
            os.chown(target, e.uid, e.gid)


def blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest, len(data)


def write_layout(image: Image, layout: Path, tag: str, mtime: int) -> dict:
    if layout.exists():
        shutil.rmtree(layout)
    layout.mkdir(parents=True)
    raw = layer_tar(image, mtime)
    gz = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0, compresslevel=9) as f:
        f.write(raw)
    layer_digest, layer_size = blob(layout, gz.getvalue())
    created = datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc)
    config_body: dict = {"Env": image.env}
    if image.user is not None:
        config_body["User"] = image.user
    if image.workdir is not None:
        config_body["WorkingDir"] = image.workdir
    if image.entrypoint is not None:
        config_body["Entrypoint"] = image.entrypoint
    if image.cmd is not None:
        config_body["Cmd"] = image.cmd
    if image.labels:
        config_body["Labels"] = image.labels
    config = {
        "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "architecture": "amd64",
        "os": "linux",
        "config": config_body,
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
        "history": image.history,
    }
    config_digest, config_size = blob(layout, json.dumps(config, indent=2, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": MEDIA_LAYER, "digest": layer_digest, "size": layer_size}],
    }
    manifest_digest, manifest_size = blob(layout, json.dumps(manifest, indent=2, sort_keys=True).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": manifest_digest,
            "size": manifest_size,
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    }
    (layout / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return {"manifest": manifest_digest, "config": config, "layer": layer_digest}


def write_archive(layout: Path, archive: Path, mtime: int) -> None:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(layout.rglob("*")):
            info = tar.gettarinfo(path, path.relative_to(layout).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "root", "root"
            if path.is_file():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--containerfile", type=Path, required=True)
    ap.add_argument("--context", type=Path, required=True)
    ap.add_argument("--tag", default="herd:latest", help="the layout's ref name")
    ap.add_argument("--static", default="/usr/local/bin/herd",
                    help="a path in the image that must be a static x86-64 executable ('' to skip)")
    ap.add_argument("--rootfs", type=Path)
    ap.add_argument("--layout", type=Path)
    ap.add_argument("--archive", type=Path)
    args = ap.parse_args(argv)
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    try:
        image = parse(args.containerfile, args.context)
        if args.static:
            entry = image.entries.get(args.static)
            if entry is None or entry.data is None:
                raise BuildError(f"{args.static} is not in the image")
            if not elf_is_static(entry.data):
                raise BuildError(f"{args.static} is dynamically linked: build it with "
                                 "RUSTFLAGS='-C target-feature=+crt-static' (a scratch image has no libc)")
        if args.rootfs:
            write_rootfs(image, args.rootfs)
        if args.layout:
            result = write_layout(image, args.layout, args.tag, mtime)
            if args.archive:
                write_archive(args.layout, args.archive, mtime)
            print(json.dumps({"tag": args.tag, "manifest": result["manifest"],
                              "user": result["config"]["config"].get("User"),
                              "entrypoint": result["config"]["config"].get("Entrypoint")}))
    except BuildError as e:
        print(f"oci_image: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
