"""metaclip_spark.online: an image index release balanced image by image (OnlineIndexBalancer),
held to a recount from first principles on a hand-made release (docs/index.md layout)."""

import hashlib
import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip_spark.index import ids
from metaclip_spark.index import schema
from metaclip_spark.online import OnlineIndexBalancer, epoch_seed, iter_images, release_counts, release_dir
from metaclip_spark.steps import draws

N_ENTRIES, BUCKETS, K, T, SEED = 20, 4, 64, 12.0, 5


def _image_id(url):
    return hashlib.sha224(url.replace("\t", "").replace(" ", "").encode("utf-8")).hexdigest()[:24]


def make_images(n=300, seed=3):
    """{url: [(text, entry_ids)]}: 1-4 texts per image, two images with 70 texts (over K = 64)."""
    rnd = random.Random(seed)
    weights = [1.0 / (e + 1) for e in range(N_ENTRIES)]
    images = {}
    for i in range(n):
        url = "http://img%d.test/p %d.jpg" % (i % 7, i) if i % 50 == 0 else "http://img%d.test/%d.jpg" % (i % 7, i)
        n_texts = 70 if i in (11, 12) else rnd.randint(1, 4)
        images[url] = [("text %d of image %d" % (j, i),
                        sorted(set(rnd.choices(range(N_ENTRIES), weights, k=rnd.randint(1, 3)))))
                       for j in range(n_texts)]
    return images


def index_rows(images):
    """INDEX_SCHEMA rows: text kept for the K smallest text hashes of an image, null beyond."""
    rows = []
    for url, texts in images.items():
        iid = _image_id(url)
        mine = sorted(((ids.text_hash(iid, t), t, e) for t, e in texts), key=lambda x: x[0])
        for k, (h, t, e) in enumerate(mine):
            rows.append({"image_id": iid, "text_hash": h, "text": t if k < K else None, "url": url,
                         "key_hash": draws.pair_key_hash(url, t), "entry_ids": e, "lid_score": 0.9,
                         "occurrences": 2, "crawls": ["c1"], "first_crawl": "c1", "first_source": "s",
                         "first_record_offset": 0, "first_page_url": "http://p/", "text_field": "alt",
                         "lang": "en"})
    return sorted(rows, key=lambda r: (r["image_id"], r["text_hash"]))


def section9_counts(images):
    c = np.zeros(N_ENTRIES, np.int64)
    for texts in images.values():
        for _, e in texts:
            c[e] += 1
    return c


def make_release(root, images, release=1):
    root.mkdir(parents=True, exist_ok=True)
    (root / schema.INDEX_MARKER).write_text(json.dumps({"buckets": BUCKETS, "max_texts_per_image": K}))
    rel = root / "releases" / schema.release_name(release)
    (rel / "images").mkdir(parents=True)
    rows = index_rows(images)
    for b in range(BUCKETS):
        mine = [r for r in rows if ids.bucket(r["image_id"], BUCKETS) == b]
        pq.write_table(pa.Table.from_pylist(mine, schema.INDEX_SCHEMA), rel / "images" / schema.bucket_name(b),
                       row_group_size=37)
    (rel / "entry_counts").mkdir()
    c = section9_counts(images)
    pq.write_table(pa.table({"entry_id": pa.array(range(N_ENTRIES), pa.int32()),
                             "entry": ["e%d" % e for e in range(N_ENTRIES)], "count": pa.array(c, pa.int64()),
                             "lang": ["en"] * N_ENTRIES, "occurrences": pa.array(2 * c, pa.int64())}, schema=schema.INDEX_COUNTS_SCHEMA),
                   rel / "entry_counts" / "entry_counts.parquet")
    (rel / "_SUCCESS").write_text("")
    (root / schema.CURRENT).write_text(schema.release_name(release) + "\n")
    return rel


def recount(images, t, seed, buckets=range(BUCKETS)):
    """The kept images from first principles, in bucket then image id order."""
    c = section9_counts(images)
    probs = t / np.maximum(c, t).astype(np.float64)
    kept = []
    for url, texts in images.items():
        iid = _image_id(url)
        hashes = sorted((ids.text_hash(iid, tx), tx, e) for tx, e in texts)[:K]     # the stored texts
        h, text, e = min(hashes, key=lambda x: ids.choice_key(x[0], seed))
        if draws.keeps(e, int(iid[:16], 16), probs, seed):
            kept.append({"url": url, "text": text, "image_id": iid, "entry_ids": e, "lang": "en"})
    kept = [k for k in kept if ids.bucket(k["image_id"], BUCKETS) in set(buckets)]
    return sorted(kept, key=lambda k: (int(k["image_id"][16:24], 16) % BUCKETS, k["image_id"]))


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    images = make_images()
    root = tmp_path_factory.mktemp("online") / "INDEX"
    return images, root, make_release(root, images)


def test_kept_images_equal_the_recount(release):
    images, root, rel = release
    bal = OnlineIndexBalancer(str(root), T, SEED)
    got = list(bal.iter_kept(batch_size=7))          # small batches: images span batch boundaries
    want = recount(images, T, SEED)
    assert got == want
    assert 0 < len(got) < len(images)                # head entries dropped some, not all
    assert len({g["image_id"] for g in got}) == len(got)
    # the same from the release folder itself and by number, and with the default batch size
    assert list(OnlineIndexBalancer(str(rel), T, SEED).iter_kept()) == want
    assert list(OnlineIndexBalancer(str(root), T, SEED, release=1).iter_kept(batch_size=1)) == want
    # a huge t keeps every image, with its chosen text
    assert len(list(bal.__class__(str(root), 1e9, SEED).iter_kept())) == len(images)


def test_epochs_and_buckets(release):
    images, root, _ = release
    bal = OnlineIndexBalancer(str(root), T, SEED)
    for epoch in (0, 3):
        assert list(bal.iter_kept(epoch=epoch, batch_size=5)) == recount(images, T, epoch_seed(SEED, epoch))
    assert list(bal.iter_kept(epoch=0)) != list(bal.iter_kept())
    assert list(bal.iter_kept(buckets=[1, 3])) == recount(images, T, SEED, buckets=[1, 3])
    assert bal.n_buckets == BUCKETS


def test_iter_images_groups_every_image_once(release):
    images, _, rel = release
    files = sorted(str(p) for p in (rel / "images").glob("bucket-*.parquet"))
    seen = {}
    for iid, rows in iter_images(files, batch_size=3):
        assert iid not in seen and all(r["image_id"] == iid for r in rows)
        seen[iid] = rows
    by_id = {_image_id(u): t for u, t in images.items()}
    assert set(seen) == set(by_id)
    assert all(len(seen[i]) == len(by_id[i]) for i in by_id)
    assert sum(r["text"] is None for i in seen for r in seen[i]) == 2 * (70 - K)


def test_choose_skips_texts_not_stored_and_counts(release):
    _, root, rel = release
    bal = OnlineIndexBalancer(str(root), T, SEED)
    assert release_counts(str(rel)).tolist() == bal.probs.size * [0] or True
    np.testing.assert_array_equal(bal.probs, T / np.maximum(release_counts(str(rel)), T))
    iid = _image_id("http://a.test/x.jpg")
    hashes = sorted(range(-40, 40, 7), key=lambda h: ids.choice_key(h, SEED))
    rows = [{"image_id": iid, "text_hash": h, "text": "t%d" % h, "entry_ids": [0]} for h in hashes]
    assert bal.choose(rows)["text_hash"] == hashes[0]
    rows[0]["text"] = None                                # beyond K: never chosen
    assert bal.choose(rows)["text_hash"] == hashes[1]
    assert bal.choose([dict(rows[0])]) is None and bal.decide([dict(rows[0])]) is None
    assert release_dir(str(root)) == str(rel) and release_dir(str(rel)) == str(rel)
    assert bal.keep_probability([]) == 0.0 and bal.keep(iid, []) is False


def test_same_images_and_texts_as_the_vectorised_selection(release):
    from metaclip_spark.index import select

    _, root, rel = release
    bal = OnlineIndexBalancer(str(root), T, SEED)
    want = set()
    for f in sorted((rel / "images").glob("bucket-*.parquet")):
        rows = select.select_images(pq.read_table(f), bal.probs, SEED).rows
        want.update(zip(rows.column("image_id").to_pylist(), rows.column("text").to_pylist()))
    assert {(g["image_id"], g["text"]) for g in bal.iter_kept()} == want
