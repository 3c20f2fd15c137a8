"""Getting sources: download (resumable, retried, progress bar), copy, http_get, the GitHub
release/tag look-ups (API base configurable), git_clone."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import urllib.parse
from pathlib import Path

from ...util import download as dl
from ...util.errors import DownloadError, LevitateError, MissingToolError
from ...util.run import run
from .context import Context, HelperError


def _basename(url: str) -> str:
    """The URL's last path segment, decoded; a name that is empty, `.`, `..` or holds a `/` once
    decoded (`x%2F..%2F..%2Fname`) is refused rather than followed out of BUILD_DIR."""
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise HelperError(f"download: cannot name a file after {url}",
                          "give a destination: download(url, dest)")
    return name


def _options(ctx: Context) -> dict:
    """Retries and the minimum speed, as the caller configured them."""
    speed = dict(zip(("speed_limit", "speed_time"), ctx.download_speed)) if ctx.download_speed else {}
    return dict(retries=ctx.download_retries, **speed)


def download_target(ctx: Context, url: str, dest: str | None = None) -> Path:
    """Where download(url, dest) puts the file: BUILD_DIR/<basename>, or `dest` (a directory
    keeps the basename)."""
    target = ctx.build_dir / _basename(url) if dest is None else ctx.write_path(dest)
    if dest is not None and (str(dest).endswith("/") or target.is_dir()):
        target = target / _basename(url)
    return target


def download(ctx: Context, url: str, dest: str | None = None) -> str:
    """Fetch `url` to BUILD_DIR/<basename> (or `dest`); it becomes the last download.

    The bytes collect in the download cache first (`DIR/<url hash>-<name>.part`), so a download
    interrupted in one run (Ctrl-C, a dropped connection) resumes in the next with a Range
    request; the complete file is then moved into place (nothing is reused from the cache
    without being fetched: upstream files can change under the same URL)."""
    url = str(url)
    target = download_target(ctx, url, dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    ctx.log(f"  downloading {url}")
    if ctx.download_cache is None:
        dl.download(url, target, **_options(ctx))
    else:
        key = hashlib.sha256(url.encode()).hexdigest()[:16]
        cached = ctx.download_cache / f"{key}-{target.name}"
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.unlink(missing_ok=True)               # only a .part is ever resumed
        dl.download(url, cached, progress_label=target.name, **_options(ctx))
        try:
            shutil.move(cached, target)
        except OSError as e:
            raise HelperError(f"download: cannot move {target.name} into {target.parent}: {e.strerror}",
                              "free some space there, or choose another --build-dir") from None
    ctx.last_download = target
    return str(target)


def copy_targets(ctx: Context, pattern: str, dest: str | None = None) -> list[tuple[str, Path]]:
    """(source, target) of each file copy(pattern, dest) copies."""
    matches = sorted(glob.glob(str(ctx.path(pattern))))
    if not matches:
        raise HelperError(f"copy: nothing matches {pattern}")
    target_dir = ctx.build_dir if dest is None else ctx.write_path(dest)
    return [(m, target_dir / os.path.basename(m)) for m in matches]


def copy(ctx: Context, pattern: str, dest: str | None = None) -> list[str]:
    """Copy the files matching a glob into BUILD_DIR (or `dest`); the last one becomes the last
    download."""
    pairs = copy_targets(ctx, pattern, dest)
    pairs[0][1].parent.mkdir(parents=True, exist_ok=True)
    out = []
    for m, t in pairs:
        if os.path.isdir(m):
            shutil.copytree(m, t, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(m, t, follow_symlinks=False)
        out.append(str(t))
        ctx.last_download = t
    return out


def http_get(ctx: Context, url: str) -> str:
    """The body of a small HTTP(S) resource as text."""
    return dl.fetch_bytes(str(url), **_options(ctx)).decode("utf-8", "replace")


def _strip_v(tag: str) -> str:
    return tag[1:] if len(tag) > 1 and tag[0] in "vV" and tag[1].isdigit() else tag


def _github(ctx: Context, path: str):
    url = f"{ctx.github_api.rstrip('/')}/{path}"
    data = dl.fetch_bytes(url, **_options(ctx))
    try:
        return json.loads(data)
    except ValueError:
        raise HelperError(f"GitHub API answer from {url} is not JSON") from None


def github_latest_release(ctx: Context, repo: str) -> str:
    """The latest release's tag of `owner/name`, without a leading `v`."""
    data = _github(ctx, f"repos/{repo}/releases/latest")
    tag = data.get("tag_name") if isinstance(data, dict) else None
    if not tag:
        raise HelperError(f"github_latest_release: no release found for {repo}")
    return _strip_v(str(tag))


def github_latest_tag(ctx: Context, repo: str) -> str:
    """The newest tag of `owner/name` (the API lists newest first), without a leading `v`."""
    data = _github(ctx, f"repos/{repo}/tags")
    if not isinstance(data, list) or not data or "name" not in data[0]:
        raise HelperError(f"github_latest_tag: no tags found for {repo}")
    return _strip_v(str(data[0]["name"]))


def parse_version(text: str) -> str:
    """`v1.2.3` -> `1.2.3`."""
    return _strip_v(str(text).strip())


def clone_target(ctx: Context, url: str, dest: str | None = None) -> Path:
    name = os.path.basename(str(url).rstrip("/")).removesuffix(".git") or "repo"
    return ctx.build_dir / name if dest is None else ctx.write_path(dest)


def git_clone(ctx: Context, url: str, dest: str | None = None) -> str:
    """A shallow clone into BUILD_DIR/<repository name> (or `dest`); returns its path."""
    target = clone_target(ctx, url, dest)
    ctx.log(f"  cloning {url}")
    try:
        run(["git", "clone", "--depth", "1", url, target], env=ctx.run_env(), what=f"git clone {url}",
            hint="check the URL and your network", missing="install git first")
    except LevitateError as exc:
        if isinstance(exc, MissingToolError):
            raise
        raise DownloadError(exc.message, exc.hint) from None       # a failed clone is a failed download
    return str(target)


def register(engine, ctx: Context) -> None:
    engine.register_fn("download", lambda url, dest=None: download(ctx, url, dest))
    engine.register_fn("copy", lambda pattern, dest=None: copy(ctx, pattern, dest))
    engine.register_fn("http_get", lambda url: http_get(ctx, url))
    engine.register_fn("github_latest_release", lambda repo: github_latest_release(ctx, repo))
    engine.register_fn("github_latest_tag", lambda repo: github_latest_tag(ctx, repo))
    engine.register_fn("parse_version", parse_version)
    engine.register_fn("git_clone", lambda url, dest=None: git_clone(ctx, url, dest))
