"""Issue 22 item 5: uploaded photos are owner-only (files 0600 in 0700 folders, like the state dir
and the Redis files holding the same bytes) and are not kept for ever: `faces serve` deletes an
upload once it is older than --result-ttl-s (the results pointing at it have expired by then),
when it starts and at intervals after (docs/http.md)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from tests.api_server import photo, start_api
from tests.waiting import wait_until

SHA_OLD, SHA_LEGACY = "a" * 64, "b" * 64


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def kept_upload(folder: Path, image_id: str) -> Path:
    (found,) = [p for p in (folder / "uploads").glob("*/*") if p.stem.startswith(image_id.rsplit("-", 1)[0])]
    return found


def plant(path: Path, *, age_s: float, file_mode: int, dir_mode: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff kept by an older version")
    when = time.time() - age_s
    os.utime(path, (when, when))
    path.chmod(file_mode)
    path.parent.chmod(dir_mode)
    return path


def test_start_deletes_expired_uploads_and_makes_the_rest_owner_only(tmp_path, redis_url):
    """At start, with --result-ttl-s 3600: an upload two hours old is deleted with its folder; one
    a minute old, 0644 in a 0755 folder as older versions kept them, stays and becomes 0600 in
    0700; a folder that is not an upload's (not a sha256) is left alone. A new upload is kept
    0600 in a 0700 folder."""
    uploads = tmp_path / "uploads"
    old = plant(uploads / SHA_OLD / "old.jpg", age_s=2 * 3600, file_mode=0o644, dir_mode=0o755)
    legacy = plant(uploads / SHA_LEGACY / "legacy.jpg", age_s=60, file_mode=0o644, dir_mode=0o755)
    other = plant(uploads / "notes" / "old.jpg", age_s=2 * 3600, file_mode=0o644, dir_mode=0o755)
    api = start_api(redis_url, tmp_path, "--result-ttl-s", "3600")
    try:
        wait_until(lambda: not old.parent.exists(), timeout_s=30, what="the expired upload's folder to be deleted")
        assert legacy.read_bytes() and (mode(legacy), mode(legacy.parent)) == (0o600, 0o700)
        assert other.exists() and (mode(other), mode(other.parent)) == (0o644, 0o755)
        sent = api.http.post(
            "/v1/images", params={"filename": "kept.jpg"}, content=photo(1), headers={"Content-Type": "image/jpeg"}
        )
        assert sent.status_code == 202, sent.text
        kept = kept_upload(tmp_path, sent.json()["image_id"])
        assert (mode(kept), mode(kept.parent)) == (0o600, 0o700)
    finally:
        api.stop()


def test_an_upload_older_than_the_result_ttl_is_deleted_while_the_api_runs(tmp_path, redis_url):
    """With --result-ttl-s 2, an upload is kept owner-only (the --uploads folder the API creates
    too: 0700), then deleted with its folder a few seconds later by the running API."""
    api = start_api(redis_url, tmp_path, "--result-ttl-s", "2")
    try:
        sent = api.http.post(
            "/v1/images", params={"filename": "brief.jpg"}, content=photo(2), headers={"Content-Type": "image/jpeg"}
        )
        assert sent.status_code == 202, sent.text
        kept = kept_upload(tmp_path, sent.json()["image_id"])
        assert (mode(kept), mode(kept.parent), mode(tmp_path / "uploads")) == (0o600, 0o700, 0o700)
        wait_until(lambda: not kept.parent.exists(), timeout_s=30, what="the expired upload to be deleted")
        assert (tmp_path / "uploads").is_dir()
    finally:
        api.stop()


def test_an_upload_submitted_again_while_the_sweep_deletes_it_is_kept(tmp_path, monkeypatch):
    """The sweep judges an upload old; before it deletes it, the same bytes are submitted again
    (keep_upload renews or rewrites the file). The upload must still be there afterwards: the
    job just published reads it for pictures and replay. Before (review), the keeper renewed the
    file's time between the sweep's check and its unlink, and the fresh upload was deleted.
    The interleaving is forced: the keeper runs from inside the sweep's unlink."""
    import threading

    from faces.producer import keep

    upload = plant(tmp_path / "uploads" / SHA_OLD / "old.jpg", age_s=2 * 3600, file_mode=0o600, dir_mode=0o700)
    real_unlink = os.unlink
    keeper = threading.Thread(target=keep.keep_upload, args=(upload, upload.read_bytes()), daemon=True)

    def unlink_after_a_resubmission(path, *args, **kwargs):
        if Path(path) == upload and not keeper.is_alive() and keeper.ident is None:
            keeper.start()
            keeper.join(timeout=1.0)  # with the folder lock the keeper waits for the sweep instead
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(keep.os, "unlink", unlink_after_a_resubmission)
    keep.sweep_uploads(tmp_path / "uploads", max_age_s=3600)
    keeper.join(timeout=30)
    assert not keeper.is_alive()
    assert upload.exists(), "the upload submitted again was deleted by the sweep"
