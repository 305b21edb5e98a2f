"""The image build (infra/container/build-rootfs.sh) end to end, offline, without a daemon.

Building the real static `herd` takes minutes, so these tests give the script a stand-in: a tiny
C program compiled with `gcc -static`, named herd, that answers `--version` and `agent --help`.
Everything after the cargo build (strip, context, root filesystem, OCI layout and archive) is the
script's real path. umoci (Debian), an independent OCI implementation, then unpacks the layout.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import cfn

SCRIPT = cfn.REPO / "infra" / "container" / "build-rootfs.sh"
CONTAINERFILE = cfn.REPO / "infra" / "container" / "Containerfile"
STAND_IN = r"""
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("herd 0.0.0-stand-in uid=%d\n", (int)getuid());
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "agent") == 0 && strcmp(argv[2], "--help") == 0) {
        puts("Usage: herd agent [OPTIONS]");
        return 0;
    }
    return 2;
}
"""


def _compile(tmp: Path, static: bool) -> Path:
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.fail("gcc is needed to build the stand-in binary (apt-get install gcc libc6-dev)")
    src = tmp / "herd.c"
    src.write_text(STAND_IN)
    out = tmp / ("herd" if static else "herd-dynamic")
    subprocess.run([gcc, *(["-static"] if static else []), "-O2", "-o", out, src], check=True)
    return out


def _build(binary: Path, out: Path, tag="herd:test") -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), "--binary", str(binary), "--out", str(out), "--tag", tag],
                          capture_output=True, text=True, env={**os.environ, "SOURCE_DATE_EPOCH": "0"})


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("image")
    result = _build(_compile(tmp, static=True), tmp / "out")
    assert result.returncode == 0, result.stderr
    return tmp / "out"


def _blob(layout: Path, digest: str) -> bytes:
    algo, hexdigest = digest.split(":")
    data = (layout / "blobs" / algo / hexdigest).read_bytes()
    assert hashlib.sha256(data).hexdigest() == hexdigest
    return data


def _image(layout: Path):
    index = json.loads((layout / "index.json").read_text())
    (desc,) = index["manifests"]
    assert desc["annotations"]["org.opencontainers.image.ref.name"] == "herd:test"
    manifest = json.loads(_blob(layout, desc["digest"]))
    config = json.loads(_blob(layout, manifest["config"]["digest"]))
    return manifest, config


def test_config_runs_herd_as_a_non_root_user(built):
    layout = built / "oci"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    manifest, config = _image(layout)
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert config["config"]["User"] == "65532"
    assert config["config"]["Entrypoint"] == ["herd"]
    assert "PATH=/usr/local/bin" in config["config"]["Env"]
    (layer,) = manifest["layers"]
    raw = gzip.decompress(_blob(layout, layer["digest"]))
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(raw).hexdigest()]


def test_containerfile_is_from_scratch_with_user_and_entrypoint():
    lines = [x.strip() for x in CONTAINERFILE.read_text().splitlines() if x.strip() and not x.lstrip().startswith("#")]
    assert lines[0] == "FROM scratch"
    assert "USER 65532" in lines and 'ENTRYPOINT ["herd"]' in lines
    assert any(x.startswith("COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt") for x in lines)


def test_root_filesystem(built):
    root = built / "rootfs"
    assert sorted(p.name for p in root.iterdir()) == ["etc", "tmp", "usr"]
    herd = root / "usr/local/bin/herd"
    assert herd.stat().st_mode & 0o777 == 0o755
    assert oct(os.stat(root / "tmp").st_mode & 0o7777) == oct(0o1777)
    assert "nonroot:x:65532:65532:" in (root / "etc/passwd").read_text()
    certs = (root / "etc/ssl/certs/ca-certificates.crt").read_text()
    assert certs.count("BEGIN CERTIFICATE") > 50
    # Stripped: no symbol table left.
    symbols = subprocess.run(["nm", str(herd)], capture_output=True, text=True)
    assert "no symbols" in symbols.stderr


def _run_in_rootfs(root: Path, *args: str) -> str:
    """Runs the image's herd inside its root filesystem, as uid 65532 (chroot needs root;
    without it, the extracted binary is run directly)."""
    if os.geteuid() == 0:
        chroot = shutil.which("chroot") or "/usr/sbin/chroot"
        cmd = [chroot, "--userspec=65532:65532", str(root), "herd", *args]
    else:
        cmd = [str(root / "usr/local/bin/herd"), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env={"PATH": "/usr/local/bin"}, timeout=30)
    assert result.returncode == 0, (cmd, result.stderr)
    return result.stdout


def test_herd_runs_from_the_root_filesystem(built):
    version = _run_in_rootfs(built / "rootfs", "--version")
    assert version.startswith("herd ")
    if os.geteuid() == 0:
        assert "uid=65532" in version
    assert "Usage: herd agent" in _run_in_rootfs(built / "rootfs", "agent", "--help")


def test_an_independent_oci_tool_unpacks_it(built, tmp_path):
    umoci = shutil.which("umoci")
    if not umoci:
        pytest.fail("umoci missing: infra/check installs it (apt-get install umoci)")
    bundle = tmp_path / "bundle"
    subprocess.run([umoci, "unpack", "--rootless", "--image", f"{built / 'oci'}:herd:test", str(bundle)],
                   check=True, capture_output=True)
    runtime = json.loads((bundle / "config.json").read_text())
    assert runtime["process"]["user"]["uid"] == 65532 and runtime["process"]["user"]["gid"] == 65532
    assert runtime["process"]["args"] == ["herd"]
    out = subprocess.run([str(bundle / "rootfs/usr/local/bin/herd"), "--version"], capture_output=True, text=True)
    assert out.stdout.startswith("herd ")


def test_the_archive_holds_the_layout(built):
    import tarfile

    with tarfile.open(built / "herd-oci.tar") as tar:
        names = set(tar.getnames())
    assert {"oci-layout", "index.json"} <= names
    assert sum(n.startswith("blobs/sha256/") for n in names) == 3


def test_build_is_reproducible(built, tmp_path):
    again = _build(built / "context" / "herd", tmp_path / "again")
    assert again.returncode == 0, again.stderr
    first = json.loads((built / "oci/index.json").read_text())["manifests"][0]["digest"]
    second = json.loads((tmp_path / "again/oci/index.json").read_text())["manifests"][0]["digest"]
    assert first == second


def test_a_dynamic_binary_is_refused(tmp_path):
    result = _build(_compile(tmp_path, static=False), tmp_path / "out")
    assert result.returncode != 0
    assert "dynamically linked" in result.stderr
