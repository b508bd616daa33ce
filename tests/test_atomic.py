"""Atomic outputs: all or nothing, only what is ours, interrupts and full disks lose nothing."""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gapmap.cli import main
from gapmap.errors import InputError, OutputError
from gapmap.io import SLOW_WRITE_ENV, atomic_dir, atomic_path

from .test_cli import SIDES, files  # noqa: F401 - the fixture is used by name


def tree(path: Path) -> dict[str, str]:
    """Every entry under ``path`` with its kind and, for files, its SHA-256."""
    out = {}
    for p in sorted(Path(path).rglob("*")):
        rel = str(p.relative_to(path))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def staging(parent: Path) -> list[str]:
    return sorted(p.name for p in Path(parent).rglob("*") if ".gapmap-" in p.name)


def previous(out: Path) -> dict[str, str]:
    out.mkdir(parents=True)
    (out / "summary.json").write_text('{"old": true}\n')
    (out / "corridors.csv").write_text("old\n")
    (out / "terrain").mkdir()
    (out / "terrain" / "slope.tif").write_bytes(b"old raster")
    return tree(out)


def test_atomic_dir_replaces_as_one_unit_and_keeps_foreign_files(tmp_path):
    out = tmp_path / "out"
    previous(out)
    (out / "notes.txt").write_text("mine")
    with atomic_dir(out) as stage:
        (stage / "summary.json").write_text("new")
        (stage / "terrain").mkdir()
        (stage / "terrain" / "tri.tif").write_bytes(b"new")
        # Nothing of the new result is visible before the block ends.
        assert (out / "summary.json").read_text() == '{"old": true}\n'
        assert not (out / "terrain" / "tri.tif").exists()
    assert (out / "summary.json").read_text() == "new"
    assert (out / "notes.txt").read_text() == "mine"  # not ours: kept
    assert (out / "terrain" / "tri.tif").read_bytes() == b"new"
    assert staging(tmp_path) == []


def test_atomic_dir_error_leaves_previous_byte_identical(tmp_path):
    out = tmp_path / "out"
    before = previous(out)
    with pytest.raises(RuntimeError, match="boom"):  # a bug stays a bug, not an OutputError
        with atomic_dir(out) as stage:
            (stage / "summary.json").write_text("half")
            raise RuntimeError("boom")
    assert tree(out) == before and staging(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handler removed again


def test_previous_summary_that_is_a_folder_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").mkdir()
    (out / "summary.json" / "inside.txt").write_text("user data")
    before = tree(out)
    with pytest.raises(OutputError, match="summary.json: is a folder where this run writes a file"):
        with atomic_dir(out) as stage:
            (stage / "summary.json").write_text("{}")
    assert tree(out) == before and staging(tmp_path) == []


def test_path_component_that_is_a_file_is_an_output_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="a component of the path is a file"):
        with atomic_dir(tmp_path / "f" / "out"):
            pass
    with pytest.raises(OutputError, match="a component of the path is a file"):
        with atomic_path(tmp_path / "f" / "map.html"):
            pass
    assert (tmp_path / "f").read_text() == "x"


def test_non_regular_targets_are_refused(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    dev = tmp_path / "full"
    os.mknod(dev, stat.S_IFCHR | 0o600, os.makedev(1, 7))  # a private copy of /dev/full
    link = tmp_path / "link.html"
    link.symlink_to(fifo)
    for path in (fifo, dev, link, Path("/dev/full"), Path("/dev/null")):
        before = os.stat(path)
        with pytest.raises(InputError, match="not a regular file"):
            with atomic_path(path) as tmp:
                tmp.write_text("x")
        after = os.stat(path)
        assert (after.st_mode, after.st_ino, after.st_rdev) == \
            (before.st_mode, before.st_ino, before.st_rdev)
    with pytest.raises(InputError, match="is a FIFO, not a folder"):
        with atomic_dir(fifo):
            pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a regular file, not a folder"):
        with atomic_dir(tmp_path / "file"):
            pass
    with pytest.raises(InputError, match="is a folder, not a regular file"):
        with atomic_path(tmp_path):
            pass
    assert staging(tmp_path) == []


def test_symlink_to_a_regular_file_is_followed(tmp_path):
    real = tmp_path / "real.html"
    real.write_text("old")
    link = tmp_path / "link.html"
    link.symlink_to(real)
    with atomic_path(link) as tmp:
        tmp.write_text("new")
    assert link.is_symlink() and real.read_text() == "new"


def test_cli_out_fifo_and_dev_full_exit_2(files, tmp_path):  # noqa: F811
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    res = CliRunner().invoke(main, ["metrics", "--zones", str(files["zones"]), *SIDES,
                                    "--out", str(fifo)])
    assert res.exit_code == 2, res.output
    assert "not a folder" in res.output and stat.S_ISFIFO(os.stat(fifo).st_mode)


def _script(body: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(body)]


def _wait_for_staging(parent: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if staging(parent):
            time.sleep(0.3)
            return
        if proc.poll() is not None:
            raise AssertionError(f"finished early: {proc.communicate()}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("no staging folder appeared")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_interrupted_mid_write_keeps_previous_and_no_staging(files, sig, code):  # noqa: F811
    out = files["dir"] / "out"
    before = previous(out)
    exe = Path(sys.executable).with_name("gapmap")
    env = dict(os.environ, **{SLOW_WRITE_ENV: "60"})
    proc = subprocess.Popen([str(exe), "metrics", "--zones", str(files["zones"]), *SIDES,
                             "--out", str(out)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_staging(files["dir"], proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert tree(out) == before
    assert staging(files["dir"]) == []


def test_sigterm_during_atomic_path_removes_the_temporary_file(tmp_path):
    target = tmp_path / "map.html"
    target.write_text("old map")
    env = dict(os.environ, **{SLOW_WRITE_ENV: "60"})
    proc = subprocess.Popen(_script(f"""
        from gapmap.io import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            tmp.write_text("new map, half written")
    """), env=env, stderr=subprocess.PIPE, text=True)
    _wait_for_staging(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert target.read_text() == "old map" and staging(tmp_path) == []


def test_staging_left_by_sigkill_is_cleaned_by_the_next_run(tmp_path):
    out = tmp_path / "out"
    before = previous(out)
    env = dict(os.environ, **{SLOW_WRITE_ENV: "60"})
    proc = subprocess.Popen(_script(f"""
        from gapmap.io import atomic_dir
        with atomic_dir({str(out)!r}) as stage:
            (stage / "summary.json").write_text("new")
    """), env=env, stderr=subprocess.PIPE, text=True)
    _wait_for_staging(tmp_path, proc)
    proc.kill()
    proc.communicate(timeout=60)
    assert staging(tmp_path) and tree(out) == before  # SIGKILL cannot be caught
    with atomic_dir(out) as stage:
        (stage / "summary.json").write_text("next")
    assert staging(tmp_path) == [] and (out / "summary.json").read_text() == "next"


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 2 MB tmpfs (we run as root here and in CI); failing to mount is a failure."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if res.returncode:
        pytest.fail(f"cannot mount a tmpfs for the full-disk test: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_keeps_previous_result_exit_1(files, small_tmpfs):  # noqa: F811
    out = small_tmpfs / "out"
    before = previous(out)
    filler = small_tmpfs / "filler"
    with open(filler, "wb") as f:  # fill the disk, leave 8 KB
        free = os.statvfs(small_tmpfs).f_bavail * os.statvfs(small_tmpfs).f_frsize
        f.write(b"\0" * max(free - 8192, 0))
    res = CliRunner().invoke(main, ["metrics", "--zones", str(files["zones"]), *SIDES,
                                    "--out", str(out)])
    assert res.exit_code == 1, res.output
    err = [x for x in res.output.splitlines() if x.startswith("gapmap: ")]
    assert err and "internal error" not in res.output and "Traceback" not in res.output
    assert "no space left on device" in err[-1]
    assert tree(out) == before and staging(small_tmpfs) == []


def test_read_only_file_system_keeps_previous_result_exit_1(files, small_tmpfs):  # noqa: F811
    out = small_tmpfs / "out"
    before = previous(out)
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    res = CliRunner().invoke(main, ["metrics", "--zones", str(files["zones"]), *SIDES,
                                    "--out", str(out)])
    assert res.exit_code == 1, res.output
    assert "read-only file system" in res.output and "internal error" not in res.output
    assert tree(out) == before and staging(small_tmpfs) == []
