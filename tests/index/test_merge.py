"""index/merge.py and index/keys.py without a JVM: merge_bucket against a plain-Python recount,
numeric keys against string order, per-file aggregation against aggregate_occurrences."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metaclip_spark.index import ids, keys
from metaclip_spark.index.merge import add_ids, aggregate_file, aggregate_occurrences, crawl_labels, merge_bucket
from metaclip_spark.index.schema import INDEX_SCHEMA
from metaclip_spark.steps.draws import key_hashes


def pool(urls, texts, entry_ids=None, sources=None, offsets=None):
    n = len(urls)
    entry_ids = entry_ids or [[len(t) % 7, 10 + len(t) % 3] for t in texts]
    return pa.table({
        "url": urls, "text": texts, "entry_ids": pa.array(entry_ids, pa.list_(pa.int32())),
        "page_url": ["http://p/%d" % k for k in range(n)], "lid_score": pa.array([0.9] * n, pa.float32()),
        "source": sources or ["crawl-data/CC-MAIN-2024-10/w%d.warc.gz" % (k % 3) for k in range(n)],
        "record_id": ["r%d" % k for k in range(n)],
        "record_offset": pa.array(offsets if offsets is not None else list(range(n)), pa.int64()),
        "key_hash": pa.array(key_hashes(urls, texts))})


def random_pool(seed, n=500, images=40):
    rng = np.random.default_rng(seed)
    img, txt = rng.integers(0, images, n), rng.integers(0, 5, n)
    return pool(["http://i/%d.jpg" % i for i in img], ["t%d-%d" % (t, i) for t, i in zip(txt, img)],
                sources=["crawl-data/CC-MAIN-2024-%02d/w.warc.gz" % (10 + seed)] * n,
                offsets=rng.integers(0, 10**6, n).tolist())


def python_merge(rows_lists):
    """Plain-Python reference: {(image_id, text_hash): [occurrences, crawls, first provenance]}."""
    out = {}
    for rows in rows_lists:
        for r in rows:
            key = (r["image_id"], r["text_hash"])
            first = (r["crawl"], r["source"], r["record_offset"], r["url"])
            o = out.setdefault(key, [0, set(), first])
            o[0] += 1
            o[1].add(r["crawl"])
            o[2] = min(o[2], first)
    return out


def check_against(merged, ref):
    got = {(r["image_id"], r["text_hash"]): [r["occurrences"], set(r["crawls"]),
                                             (r["first_crawl"], r["first_source"], r["first_record_offset"], r["url"])]
           for r in merged.to_pylist()}
    assert got == ref
    keys = list(zip(merged.column("image_id").to_pylist(), merged.column("text_hash").to_pylist()))
    assert keys == sorted(keys)


def test_merge_equals_a_python_recount_and_counts_new_rows_once():
    a, b = add_ids(random_pool(1), "a"), add_ids(random_pool(2), "b")
    m1, r1 = merge_bucket(None, aggregate_occurrences(a), 64)
    ref_a = python_merge([a.to_pylist()])
    check_against(m1, ref_a)
    assert (r1.rows, r1.images, r1.occurrences) == (len(ref_a), len({k[0] for k in ref_a}), a.num_rows)
    assert r1.new_pairs == len(ref_a) and r1.new_images == r1.images
    m2, r2 = merge_bucket(m1, aggregate_occurrences(b), 64)
    ref = python_merge([a.to_pylist(), b.to_pylist()])
    check_against(m2, ref)
    assert r2.new_pairs == len(set(ref) - set(ref_a))
    assert r2.new_images == len({k[0] for k in ref} - {k[0] for k in ref_a})
    assert r2.new_images_per_crawl == ({"CC-MAIN-2024-12": r2.new_images} if r2.new_images else {})
    # entry counts: new pairs only (a text seen again later does not count twice)
    want = {}
    for (i, h) in set(ref) - set(ref_a):
        e = next(r["entry_ids"] for r in b.to_pylist() if (r["image_id"], r["text_hash"]) == (i, h))
        for x in e:
            want[x] = want.get(x, 0) + 1
    assert dict(zip(r2.pair_ids.tolist(), r2.pair_counts.tolist())) == want
    occ = {}
    for e in b.column("entry_ids").to_pylist():
        for x in e:
            occ[x] = occ.get(x, 0) + 1
    assert dict(zip(r2.occ_ids.tolist(), r2.occ_counts.tolist())) == occ
    # at once == one after the other
    m_once, _ = merge_bucket(None, aggregate_occurrences(pa.concat_tables([a, b])), 64)
    assert m_once.equals(m2)
    m_rev, _ = merge_bucket(merge_bucket(None, aggregate_occurrences(b), 64)[0], aggregate_occurrences(a), 64)
    assert m_rev.equals(m2)
    top = r2.top[0]
    per_image = {}
    for (i, _), o in ref.items():
        per_image[i] = per_image.get(i, 0) + o[0]
    best = sorted(per_image.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    assert (top["image_id"], top["occurrences"]) == best


def test_a_text_seen_again_later_does_not_count_twice():
    p = add_ids(pool(["http://x/1.jpg"] * 2, ["a red car", "a red car"], entry_ids=[[3], [3]]), "")
    m1, r1 = merge_bucket(None, aggregate_occurrences(p.slice(0, 1)), 64)
    m2, r2 = merge_bucket(m1, aggregate_occurrences(p.slice(1, 1)), 64)
    assert (r1.new_pairs, r1.pair_ids.tolist(), r1.pair_counts.tolist()) == (1, [3], [1])
    assert (r2.new_pairs, r2.new_images, r2.pair_ids.tolist()) == (0, 0, [])
    assert (r2.occ_ids.tolist(), r2.occ_counts.tolist()) == ([3], [1])
    assert m2.column("occurrences").to_pylist() == [2] and r2.rows == 1


def test_k_limit_keeps_the_64_smallest_text_hashes_and_counts_all_100():
    texts = ["caption %d" % k for k in range(100)]
    p = add_ids(pool(["http://x/logo.png"] * 100, texts, entry_ids=[[k % 5] for k in range(100)]), "")
    half = aggregate_occurrences(p.slice(0, 50)), aggregate_occurrences(p.slice(50))
    merged, res = merge_bucket(merge_bucket(None, half[0], 64)[0], half[1], 64)
    assert merged.num_rows == 100 and res.rows == 100 and res.images == 1
    stored = merged.filter(merged.column("text").is_valid())
    assert stored.num_rows == 64 == res.texts_stored
    iid = ids.image_id("http://x/logo.png")
    smallest = sorted(ids.text_hash(iid, t) for t in texts)[:64]
    assert stored.column("text_hash").to_pylist() == smallest
    assert {ids.text_hash(iid, t) for t in stored.column("text").to_pylist()} == set(smallest)
    once, r_once = merge_bucket(None, aggregate_occurrences(p), 64)
    assert once.equals(merged) and r_once.pair_counts.tolist() == [20] * 5


def test_an_image_repeated_100000_times_costs_one_row_per_distinct_text():
    n = 100_000
    p = pool(["http://x/icon.gif"] * n, ["home" if k % 2 else "logo" for k in range(n)],
             entry_ids=[[1]] * n, sources=["w.warc.gz"] * n, offsets=list(range(n)))
    agg = aggregate_occurrences(p, "run-7")
    merged, res = merge_bucket(None, agg, 64)
    assert merged.num_rows == 2 and res.occurrences == n and res.images == 1
    assert sorted(merged.column("occurrences").to_pylist()) == [n // 2, n // 2]
    assert merged.column("crawls").to_pylist() == [["run-7"], ["run-7"]]
    assert sorted(merged.column("first_record_offset").to_pylist()) == [0, 1]
    assert res.new_images_per_crawl == {"run-7": 1}
    assert (res.pair_ids.tolist(), res.pair_counts.tolist(), res.occ_counts.tolist()) == ([1], [2], [n])


def test_ids_computed_for_old_pools_and_crawl_labels():
    p = pool(["http://a/ 1.jpg"], ["x"], sources=["s3://commoncrawl/crawl-data/CC-MAIN-2023-50/seg/w.warc.gz"])
    t = add_ids(p, "pool-label")
    assert t.column("image_id").to_pylist() == [ids.image_id("http://a/1.jpg")]
    assert t.column("text_hash").to_pylist() == [ids.text_hash(ids.image_id("http://a/1.jpg"), "x")]
    assert crawl_labels(pa.array(["x/CC-MAIN-2024-10/y", "local.warc", None]), "run").to_pylist() == \
        ["CC-MAIN-2024-10", "run", "run"]
    assert merge_bucket(None, INDEX_SCHEMA.empty_table(), 64)[0].num_rows == 0


def test_numeric_keys_order_rows_as_the_strings():
    rng = np.random.default_rng(5)
    hexes = np.array(list("0123456789abcdef"))
    base = ["".join(rng.choice(hexes, 24)) for _ in range(300)]
    # shared prefixes: ids equal on the first 16 digits, or differing in one digit only
    id_list = base + [b[:16] + "".join(rng.choice(hexes, 8)) for b in base[:100]] + [b[:23] + "0" for b in base[:50]]
    id_list += list(rng.choice(id_list, 200))
    hi, lo = keys.id_keys(pa.array(id_list))
    assert hi.tolist() == ids.image_keys(pa.array(id_list)).tolist()
    assert lo.tolist() == [int(i[16:], 16) for i in id_list]
    assert ((lo % np.uint64(7)).astype(np.int64) == ids.buckets(pa.array(id_list), 7)).all()
    th = rng.integers(-5, 5, len(id_list))
    strs = [None if k % 9 == 0 else "s%d" % rng.integers(0, 30) for k in range(len(id_list))]
    rank, uniq = keys.ranks(pa.array(strs))
    assert [None if r == 0 else uniq[r - 1].as_py() for r in rank] == strs
    want = sorted(range(len(id_list)), key=lambda k: (id_list[k], int(th[k]), strs[k] is not None, strs[k] or "", k))
    got = keys.sort_order([hi, lo, th, rank])
    assert got.tolist() == want
    assert np.lexsort((rank, th, lo, hi)).tolist() == want
    # a key computed on the tied rows only, and the dictionary-encoded form of the strings
    got = keys.sort_order([hi, lo, th, lambda rows, run: keys.ranks(pa.array(strs).take(pa.array(rows)))[0]])
    assert got.tolist() == want
    assert keys.ranks(pa.chunked_array([pa.array(strs[:100]).dictionary_encode(),
                                        pa.array(strs[100:]).dictionary_encode()]))[0].tolist() == rank.tolist()


def _sorted(t):
    return t.sort_by([("image_id", "ascending"), ("text_hash", "ascending")])


def test_per_file_aggregation_equals_aggregate_occurrences():
    # one crawl: the same rows; ties on (source, record_offset) decided by url, key_hash, page_url
    rng = np.random.default_rng(3)
    n = 2000
    img, txt = rng.integers(0, 50, n), rng.integers(0, 3, n)
    urls = ["http://i/%d.jpg%s" % (i, " " * int(rng.integers(0, 2))) for i in img]
    p = pool(urls, ["t%d" % t for t in txt], sources=["crawl-data/CC-MAIN-2024-10/w%d.warc.gz" % (k % 2)
                                                      for k in range(n)],
             offsets=rng.integers(0, 3, n).tolist())
    p = p.set_column(p.column_names.index("page_url"), "page_url",
                     pa.array(["http://p/%d" % rng.integers(0, 3) if k % 4 else None for k in range(n)]))
    ref = aggregate_occurrences(p)
    got = aggregate_file(p, "", 8)
    assert got.column("bucket").to_pylist() == ids.buckets(got.column("image_id"), 8).tolist()
    assert _sorted(got.drop_columns(["bucket"])).equals(ref)
    # dictionary-encoded source/page_url (how the merge reads pool files) give the same rows
    d = p.set_column(p.column_names.index("source"), "source", p.column("source").dictionary_encode())
    assert _sorted(aggregate_file(d, "")).equals(ref)
    # several crawls in one file: one row per (image, text, crawl); merged, the same as at once
    src = ["crawl-data/CC-MAIN-2024-%02d/w.warc.gz" % (10 + k % 3) for k in range(n)]
    q = add_ids(pool(urls, ["t%d" % t for t in txt], sources=src, offsets=rng.integers(0, 3, n).tolist()), "")
    agg = aggregate_file(q, "")
    pairs = set(zip(q.column("image_id").to_pylist(), q.column("text_hash").to_pylist(), q.column("crawl").to_pylist()))
    assert agg.num_rows == len(pairs) and set(map(len, agg.column("crawls").to_pylist())) == {1}
    assert merge_bucket(None, agg, 64)[0].equals(merge_bucket(None, aggregate_occurrences(q), 64)[0])


def test_per_crawl_counts_of_a_pool_with_several_crawls():
    rng = np.random.default_rng(9)
    n = 3000
    img, txt = rng.integers(0, 80, n), rng.integers(0, 4, n)
    src = ["crawl-data/CC-MAIN-2024-%02d/w.warc.gz" % c for c in rng.choice([10, 18, 22], n)]
    p = add_ids(pool(["http://i/%d.jpg" % i for i in img], ["t%d" % t for t in txt], sources=src), "")
    parts = [aggregate_file(p.slice(k, 1000), "") for k in range(0, n, 1000)]      # three "files"
    old = aggregate_occurrences(p.slice(0, 500))
    old = merge_bucket(None, old, 64)[0]
    merged, res = merge_bucket(old, pa.concat_tables(parts), 64)
    want = {}
    for c in ("CC-MAIN-2024-10", "CC-MAIN-2024-18", "CC-MAIN-2024-22"):
        s = p.filter(pc.equal(p.column("crawl"), c))
        want[c] = [s.num_rows, len(set(zip(s.column("image_id").to_pylist(), s.column("text_hash").to_pylist()))),
                   len(set(s.column("image_id").to_pylist()))]
    assert res.per_crawl == want
    assert res.input_pairs == len(set(zip(p.column("image_id").to_pylist(), p.column("text_hash").to_pylist())))
    assert res.input_images == len(set(p.column("image_id").to_pylist())) and res.input_occurrences == n
    assert merged.equals(merge_bucket(None, aggregate_occurrences(pa.concat_tables([p.slice(0, 500), p])), 64)[0])
