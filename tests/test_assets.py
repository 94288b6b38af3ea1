"""The asset store: a folder by default, an S3-compatible bucket shared by replicas when one is set. The bucket is
moto's S3 server, started here on 127.0.0.1: no network, no account."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import BOB, CHANNEL, Bot, make_bot
from moto.server import ThreadedMotoServer
from process_kit import USERS, Deployment, free_port, wait
from provider_fakes import FakeOpenAI, make_clip
from sqlmodel import select
from test_slack_loop import ready_round, variation_messages

from bot import checkup
from bot.assets import LocalAssetStore, clip_key, open_asset_store
from bot.bucket import S3AssetStore
from bot.config import load_settings
from bot.errors import AssetError, AssetMissing
from devkit.slack_api import FakeSlack
from storage.models import Generation

PREFIX = "team-a/"


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def _test_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """boto3's own chain finds these; a developer's ~/.aws and an instance role are never consulted."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def s3(url: str) -> Any:
    return boto3.client("s3", endpoint_url=url)


@pytest.fixture
def bucket(s3_url: str) -> str:
    name = f"sora-{uuid.uuid4().hex[:12]}"
    s3(s3_url).create_bucket(Bucket=name)
    return name


def objects(url: str, bucket: str) -> dict[str, bytes]:
    client = s3(url)
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def store(url: str, bucket: str, cache: Path) -> S3AssetStore:
    return S3AssetStore(bucket=bucket, prefix=PREFIX, endpoint_url=url, cache_dir=cache)


def stored(assets: S3AssetStore | LocalAssetStore, key: str, content: bytes) -> Path:
    source = assets.scratch(Path(key).name)
    source.write_bytes(content)
    return assets.put(key, source)


# --- the bucket, one store at a time and two side by side -----------------------------------------


def test_a_stored_file_is_in_the_bucket_under_the_prefix_and_its_copy_stays_in_the_cache(
    s3_url: str, bucket: str, tmp_path: Path
) -> None:
    assets = store(s3_url, bucket, tmp_path / "cache")
    local = stored(assets, "round-1/variation-1.mp4", b"clip one")
    assert objects(s3_url, bucket) == {f"{PREFIX}round-1/variation-1.mp4": b"clip one"}
    assert local == tmp_path / "cache" / "round-1" / "variation-1.mp4" and local.read_bytes() == b"clip one"
    assert assets.fetch("round-1/variation-1.mp4") == local
    assert not list((tmp_path / "cache" / ".scratch").iterdir()), "the scratch file was moved, not copied"


def test_a_second_replica_with_an_empty_cache_downloads_what_the_first_stored(
    s3_url: str, bucket: str, tmp_path: Path
) -> None:
    first, second = store(s3_url, bucket, tmp_path / "one"), store(s3_url, bucket, tmp_path / "two")
    stored(first, "round-2/variation-3.mp4", b"made on replica one")
    assert second.exists("round-2/variation-3.mp4") and not second.exists("round-2/variation-4.mp4")
    copy = second.fetch("round-2/variation-3.mp4")
    assert copy.is_relative_to(tmp_path / "two") and copy.read_bytes() == b"made on replica one"
    assert [p.name for p in copy.parent.iterdir()] == ["variation-3.mp4"], "no partial download is left"
    second.delete("round-2/variation-3.mp4")
    assert not first.exists("round-2/variation-3.mp4") and not copy.exists()
    first.close()
    assert not (tmp_path / "one").exists(), "a replica's cache goes with it"


def test_a_missing_object_and_a_key_outside_the_store_are_missing_and_leave_nothing_behind(
    s3_url: str, bucket: str, tmp_path: Path
) -> None:
    assets = store(s3_url, bucket, tmp_path / "cache")
    with pytest.raises(AssetMissing):
        assets.fetch("round-9/variation-1.mp4")
    for bad in ("../outside.mp4", "round-1/../../x", "", "a//b"):
        with pytest.raises(AssetMissing):
            assets.fetch(bad)
    assert not (tmp_path / "cache" / "round-9" / "variation-1.mp4").exists()
    assert [p.name for p in (tmp_path / "cache" / "round-9").iterdir()] == []


def test_a_row_from_before_keys_is_read_from_the_local_path_it_names(
    s3_url: str, bucket: str, tmp_path: Path
) -> None:
    legacy = tmp_path / "old-assets" / "generation-7.mp4"
    legacy.parent.mkdir()
    legacy.write_bytes(b"an old clip")
    for assets in (store(s3_url, bucket, tmp_path / "cache"), LocalAssetStore(tmp_path / "assets")):
        assert assets.fetch(str(legacy)) == legacy and assets.exists(str(legacy))
        with pytest.raises(AssetMissing):
            assets.fetch(str(tmp_path / "old-assets" / "gone.mp4"))
    assert objects(s3_url, bucket) == {}


def test_an_unreachable_bucket_is_an_asset_error_that_the_callers_retry(tmp_path: Path) -> None:
    assets = store(f"http://127.0.0.1:{free_port()}", "sora-nowhere", tmp_path / "cache")
    with pytest.raises(AssetError) as raised:
        stored(assets, "round-1/variation-1.mp4", b"x")
    assert not isinstance(raised.value, AssetMissing) and isinstance(raised.value, OSError)
    assert "could not store round-1/variation-1.mp4 in bucket s3://sora-nowhere/team-a/" in str(raised.value)


def test_the_folder_store_moves_files_into_place_under_their_keys(tmp_path: Path) -> None:
    assets = LocalAssetStore(tmp_path / "assets")
    local = stored(assets, "round-1/variation-2.mp4", b"clip")
    assert local == tmp_path / "assets" / "round-1" / "variation-2.mp4" and local.read_bytes() == b"clip"
    assert assets.fetch("round-1/variation-2.mp4") == local and assets.exists("round-1/variation-2.mp4")
    with pytest.raises(AssetMissing):
        assets.fetch("../round-1/variation-2.mp4")
    assets.delete("round-1/variation-2.mp4")
    assert not assets.exists("round-1/variation-2.mp4")


# --- the settings and doctor ------------------------------------------------------------------------


def test_a_bucket_setting_chooses_the_bucket_and_no_setting_the_data_folder(tmp_path: Path) -> None:
    folder = open_asset_store(load_settings({"SORA_BOT_DATA_DIR": str(tmp_path)}))
    assert isinstance(folder, LocalAssetStore) and folder.root == tmp_path / "assets"
    settings = load_settings(
        {
            "SORA_BOT_DATA_DIR": str(tmp_path),
            "SORA_BOT_ASSET_BUCKET": "sora-assets",
            "SORA_BOT_ASSET_PREFIX": "/team-a/clips/",
            "SORA_BOT_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        }
    )
    bucket = open_asset_store(settings)
    assert isinstance(bucket, S3AssetStore)
    assert bucket.where == "bucket s3://sora-assets/team-a/clips/ at http://127.0.0.1:9000"
    bucket.close()


def test_malformed_bucket_settings_are_reported_with_what_to_set(tmp_path: Path) -> None:
    from bot.config import load_settings_reporting

    _, problems = load_settings_reporting(
        {
            "SORA_BOT_ASSET_BUCKET": "Not_A_Bucket",
            "SORA_BOT_ASSET_PREFIX": "team/../x",
            "SORA_BOT_S3_ENDPOINT_URL": "minio:9000",
        }
    )
    text = "\n".join(problems)
    assert "SORA_BOT_ASSET_BUCKET is invalid" in text and "SORA_BOT_ASSET_PREFIX is invalid" in text
    assert "SORA_BOT_S3_ENDPOINT_URL is invalid: must be an http(s) URL" in text


def test_doctor_stores_and_deletes_a_probe_in_the_bucket_and_names_a_missing_one(
    s3_url: str, bucket: str, tmp_path: Path
) -> None:
    env = {"SORA_BOT_DATA_DIR": str(tmp_path), "SORA_BOT_S3_ENDPOINT_URL": s3_url}
    good = checkup.assets(load_settings({**env, "SORA_BOT_ASSET_BUCKET": bucket}))
    assert good.ok and good.detail == f"bucket s3://{bucket}/ at {s3_url}, writable"
    assert objects(s3_url, bucket) == {}, "the probe is deleted"
    missing = checkup.assets(load_settings({**env, "SORA_BOT_ASSET_BUCKET": "sora-no-such-bucket"}))
    assert (
        not missing.ok
        and "NoSuchBucket" in missing.detail
        and "check SORA_BOT_ASSET_BUCKET" in missing.detail
    )
    folder = checkup.assets(load_settings({"SORA_BOT_DATA_DIR": str(tmp_path / "data")}))
    assert folder.ok and folder.detail == f"folder {tmp_path / 'data' / 'assets'}, writable"


# --- a whole round through the real app, on two replicas sharing the bucket -----------------------


def bucket_bot(fake: FakeSlack, tmp_path: Path, *, url: str, bucket: str, name: str, database: str) -> Bot:
    env = {
        "SORA_BOT_ASSET_BUCKET": bucket,
        "SORA_BOT_ASSET_PREFIX": PREFIX,
        "SORA_BOT_S3_ENDPOINT_URL": url,
        "DATABASE_URL": database,
    }
    return make_bot(fake, tmp_path / name, env=env)


def cache_of(bot: Bot) -> Path:
    assets = bot.services.assets
    assert isinstance(assets, S3AssetStore)
    return assets.cache_dir


def test_a_round_lands_in_the_bucket_and_another_replica_recuts_a_clip_it_never_had(
    fake_slack: FakeSlack, s3_url: str, bucket: str, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    one = bucket_bot(fake_slack, tmp_path, url=s3_url, bucket=bucket, name="one", database=database)
    try:
        parent, _ = ready_round(one)
        with one.services.store.read() as repo:
            made = list(repo.session.exec(select(Generation).order_by(Generation.number)).all())
        assert [g.asset_path for g in made] == [clip_key(made[0].round_id, n) for n in (1, 2, 3)]
        in_bucket = objects(s3_url, bucket)
        clips = {k: v for k, v in in_bucket.items() if k.endswith(".mp4")}
        assert sorted(clips) == [f"{PREFIX}{g.asset_path}" for g in made]
        assert f"{PREFIX}round-{made[0].round_id}/contact-sheet.png" in in_bucket
        # Slack got the very bytes in the bucket, uploaded from the copy the poll left in this replica's cache.
        uploaded = {f.title: f.content for f in fake_slack.files()}
        for g in made:
            assert uploaded[f"Variation #{g.number}"] == clips[f"{PREFIX}{g.asset_path}"]
            assert (cache_of(one) / str(g.asset_path)).read_bytes() == clips[f"{PREFIX}{g.asset_path}"]
        assert not (one.data_dir / "assets").exists(), "nothing went to the local folder"
    finally:
        one.server.stop()
        one.runtime.close()
    assert not cache_of(one).exists()

    two = bucket_bot(fake_slack, tmp_path, url=s3_url, bucket=bucket, name="two", database=database)
    try:
        two.clock.advance(seconds=(one.clock.now() - two.clock.now()).total_seconds() + 60)
        assert not cache_of(two).exists() or not any(cache_of(two).rglob("*.mp4"))
        two.sim.reply(BOB, CHANNEL, parent.ts, "recut #1 0.5-1.5")
        two.sweep_until_idle()
        with two.services.store.read() as repo:
            recut = repo.session.exec(select(Generation).where(Generation.kind == "recut")).one()
        assert recut.status == "completed" and recut.asset_path == clip_key(recut.round_id, 4)
        assert recut.source_paths == [made[0].asset_path], "the row names the key, not a replica's copy"
        assert (cache_of(two) / str(made[0].asset_path)).exists(), "the source came down from the bucket"
        in_bucket = objects(s3_url, bucket)
        assert any(k.startswith(f"{PREFIX}edits/clips/") for k in in_bucket), "the edit itself is shared"
        upload = next(f for f in fake_slack.files() if f.title == "Variation #4")
        assert upload.content == in_bucket[f"{PREFIX}{recut.asset_path}"]
        assert 4 in variation_messages(two, parent)
    finally:
        two.server.stop()
        two.runtime.close()


def test_without_a_bucket_clips_are_files_in_the_data_folder_under_their_keys(sora: Bot) -> None:
    ready_round(sora)
    assets = sora.services.assets
    assert isinstance(assets, LocalAssetStore) and assets.root == sora.data_dir / "assets"
    with sora.services.store.read() as repo:
        made = list(repo.session.exec(select(Generation)).all())
    for g in made:
        assert g.asset_path == clip_key(g.round_id, g.number)
        assert (sora.data_dir / "assets" / g.asset_path).read_bytes()[4:8] == b"ftyp"


@pytest.mark.faults
def test_serve_replicas_with_folders_of_their_own_post_and_recut_every_clip_through_one_bucket(
    tmp_path: Path, postgres_url: str, s3_url: str, bucket: str
) -> None:
    """Real processes, no shared volume: whichever replica polls a job, posts a clip or makes a recut, it finds
    the file another replica stored."""
    import process_kit

    clip = make_clip(tmp_path / "clip")
    with (
        FakeSlack(users=USERS, channels={process_kit.CHANNEL: "bucket"}) as slack,
        FakeOpenAI(clip=clip, polls_to_complete=1) as videos,
    ):
        team = Deployment(slack=slack, videos=videos, database_url=postgres_url, data_dir=tmp_path / "unused")
        for i in range(2):
            replica = team.add_replica(tmp_path)
            replica.env.update(
                SORA_BOT_DATA_DIR=str(tmp_path / f"replica-{i}"),
                SORA_BOT_ASSET_BUCKET=bucket,
                SORA_BOT_S3_ENDPOINT_URL=s3_url,
            )
        try:
            for replica in team.replicas:
                replica.start()
            for i in range(4):
                team.generate(idea=f"a paper boat {i} drifts down a rainy gutter, close-up", replica=i % 2)
            wait(lambda: len(team.parents()) == 4, "four rounds")
            team.wait_settled(timeout=120)
            team.check_exactly_once()
            for n, parent in enumerate(team.parents()):
                team.sim((n + 1) % 2).reply(
                    process_kit.OWNER, process_kit.CHANNEL, parent.ts, "recut #2 0.2-0.8"
                )
            wait(lambda: len(team.rows(Generation)) == 16, "four recuts asked for")
            team.wait_settled(timeout=120)
            made = team.rows(Generation)
        finally:
            team.stop()
        posted = [f.filename for f in slack.files() if f.completed and f.filename.endswith(".mp4")]
    assert [g.error for g in made if g.status != "completed"] == []
    clips = {k for k in objects(s3_url, bucket) if k.startswith("round-") and k.endswith(".mp4")}
    assert clips == {str(g.asset_path) for g in made} and len(clips) == 16
    assert len(posted) == len(set(posted)) == 16
    for i in range(2):
        assert not (tmp_path / f"replica-{i}" / "assets").exists(), "no replica used a folder of its own"
