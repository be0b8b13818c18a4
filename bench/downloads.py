"""What a downloader meets: img2dataset over a curated set, against a local server.

    python -m bench.downloads --run runs/demo --img2dataset /path/to/venv/bin/img2dataset

img2dataset is not a project dependency: install it in a venv of its own
(`python -m venv /tmp/i2d && /tmp/i2d/bin/pip install img2dataset==1.47.0`). A local HTTP
proxy on 127.0.0.1 answers every request with a small PNG (img2dataset's urllib client goes
through ``http_proxy``; https URLs are fetched as http for this check), so no request leaves
the machine. Two sets of the same curated rows are downloaded:

- "raw": each row's ``url`` as stage 1 extracted it (the pool's url, found by ``key_hash``), in
  pool order (what the curated set was before it got the request form and the shuffle);
- "curated": the curated set as written.

Printed (and written as JSON with ``--json``): rows, successes and failures per set, the
errors img2dataset reported, and the share of consecutive rows with the same page or host.
"""

from __future__ import annotations

import argparse
import glob
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import zlib
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def _png() -> bytes:
    """A valid 8x8 grey PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    raw = b"".join(b"\x00" + b"\x80" * 8 for _ in range(8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", (8).to_bytes(4, "big") * 2 + b"\x08\x00\x00\x00\x00")
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


PNG = _png()


class _Proxy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)

    def log_message(self, *args):
        pass


def _kind(status: str) -> str:
    for known in ("URL can't contain control characters", "codec can't encode", "Name or service not known"):
        if known in status:
            return known
    return status[:60]


def burst(values: list) -> float:
    """Share of consecutive rows with the same value."""
    pairs = list(zip(values[:-1], values[1:]))
    return sum(a == b for a, b in pairs) / len(pairs) if pairs else 0.0


def host(url: str) -> str:
    try:
        return (urllib.parse.urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def load(run: str) -> tuple[pa.Table, pa.Table]:
    curated = pa.concat_tables(pq.read_table(f) for f in sorted(glob.glob(os.path.join(run, "curated", "*.parquet"))))
    pool = pa.concat_tables(pq.read_table(f, columns=["url", "page_url", "key_hash", "source", "record_offset"])
                            for f in sorted(glob.glob(os.path.join(run, "pool", "*.parquet"))))
    return curated, pool


def raw_rows(curated: pa.Table, pool: pa.Table) -> pa.Table:
    """The curated rows with the pool's url, in pool order."""
    pool = pool.append_column("pos", pa.array(range(pool.num_rows), pa.int64()))
    firsts = pool.group_by("key_hash").aggregate([("pos", "min")]).rename_columns(["key_hash", "pos"])
    pool = pool.join(firsts, ["key_hash", "pos"], join_type="inner")
    keyed = curated.select(["key_hash"]).append_column("i", pa.array(range(curated.num_rows), pa.int64()))
    joined = keyed.join(pool, "key_hash", join_type="left outer").sort_by("pos")
    return joined.select(["url", "page_url"]).append_column(
        "text", pc.take(curated.column("text"), joined.column("i")))


def img2dataset(exe: str, table: pa.Table, work: str, name: str, port: int) -> dict:
    urls = [u.replace("https://", "http://", 1) if u.startswith("https://") else u
            for u in table.column("url").to_pylist()]
    src = os.path.join(work, name + ".parquet")
    pq.write_table(pa.table({"url": urls, "text": table.column("text")}), src)
    out = os.path.join(work, name)
    env = dict(os.environ, http_proxy="http://127.0.0.1:%d" % port, no_proxy="")
    subprocess.run([exe, "--url_list", src, "--input_format", "parquet", "--url_col", "url", "--caption_col", "text",
                    "--output_folder", out, "--output_format", "files", "--resize_mode", "no", "--processes_count",
                    "1", "--thread_count", "16", "--timeout", "5", "--retries", "0", "--disable_all_reencoding",
                    "True"], check=True, env=env, capture_output=True, text=True)
    stats = [json.load(open(f)) for f in glob.glob(os.path.join(out, "*_stats.json"))]
    errors = Counter()
    for s in stats:
        for status, n in s.get("status_dict", {}).items():   # one kind per message shape
            errors[_kind(status)] += n
    return {"rows": len(urls), "successes": sum(s["successes"] for s in stats),
            "failed": sum(s["failed_to_download"] + s["failed_to_resize"] for s in stats),
            "statuses": dict(errors)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="a run folder with pool/ and curated/")
    ap.add_argument("--img2dataset", required=True, help="the img2dataset executable (its own venv)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    curated, pool = load(args.run)
    raw = raw_rows(curated, pool)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    results = {}
    try:
        with tempfile.TemporaryDirectory() as work:
            for name, table in (("raw", raw), ("curated", curated)):
                r = img2dataset(args.img2dataset, table, work, name, server.server_port)
                r["same_page"] = burst(table.column("page_url").to_pylist())
                r["same_host"] = burst([host(u) for u in table.column("url").to_pylist()])
                results[name] = r
    finally:
        server.shutdown()
    for name, r in results.items():
        print("%-8s rows %6d  downloaded %6d  failed %5d  same page %5.1f%%  same host %5.1f%%  %s" % (
            name, r["rows"], r["successes"], r["failed"], 100 * r["same_page"], 100 * r["same_host"],
            {k: v for k, v in r["statuses"].items() if k != "success"}))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
