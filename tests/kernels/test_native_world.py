"""metaclip_spark._speedups.WorldAutomaton (csrc/ac_match.c): keys mode against pyahocorasick
on the same keys, and the flat buffer (to_bytes / from_buffer, in place over an mmap).

tests/steps/test_world_match.py runs the WorldMatcher cases on it, on pyahocorasick and against
naive_world_match; this file checks the compiled type itself."""

import mmap
import random
import struct

import ahocorasick
import pytest

from metaclip_spark.kernels import native
from metaclip_spark.steps.match import spacing

pytestmark = pytest.mark.skipif(native.get("WorldAutomaton") is None,
                                reason="metaclip_spark._speedups (WorldAutomaton) not built")
HEADER = 104
NODE = 8


def W():
    return native.get("WorldAutomaton")


def pyaho_find(keys, ids, text):
    if not keys:
        return []
    a = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    for k, i in zip(keys, ids):
        a.add_word(k, i)
    a.make_automaton()
    return sorted({v for _, v in a.iter(spacing(text))})


def test_same_type_as_automaton():
    assert native.get("WorldAutomaton") is native.get("Automaton")


def test_keys_mode_adds_no_space():
    a = W()([" C++", "猫", " hot dog ", " hot ", "ภูเก็ต", "（株）", " x"], [0, 1, 2, 3, 4, 5, 6], keys=True)
    assert a.find("C++11 猫猫 hot dog.") == [0, 1, 2, 3]
    assert a.find("Chalong V2 ภูเก็ตมาก") == [4]
    assert a.find("ACME（株）東京") == [5]
    assert a.find("yx") == [] and a.find("xx") == [6]
    assert a.size()["keys_mode"] is True and a.size()["mapped"] is False
    # default mode unchanged: the same strings as entries get " " + e + " "
    d = native.get("Automaton")(["C++", "猫"], [0, 1])
    assert d.find("C++11 猫猫") == [] and d.find("C++ 猫") == [0, 1]
    assert d.size()["keys_mode"] is False


def test_no_match_inside_a_code_point():
    # keys whose UTF-8 bytes occur inside other code points' bytes: never a match there
    keys = ["\xab", "\u032b", "\u0fab", "猫", "\U0001f600", "\x8c"]
    ids = list(range(len(keys)))
    a = W()(keys, ids, keys=True)
    for text in ["猫", "獫", "\u00ab\u032b", "😀", "\U0001f601", "\u0fab猫", "\u030c"]:
        assert a.find(text) == pyaho_find(keys, ids, text), text
    assert a.find("獫") == [] and a.find("\u0fab猫") == [2, 3]


def test_random_keys_against_pyahocorasick():
    rnd = random.Random(17)
    alphabet = ["a", "b", " ", "  ", ",", ".", "`", "\t", "\n", "é", "\u00a0", "😀", "\ud800", "\udfff",
                "猫", "獫", "ภู", "（", "）", "+", "C", "\xab", "\u0fab", "ab"]

    def rand_str(lo, k):
        return "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(lo, k)))

    checked = 0
    for _ in range(40):
        keys = list(dict.fromkeys(rand_str(1, 5) for _ in range(rnd.randrange(1, 60))))
        ids = rnd.sample(range(1000), len(keys))
        a = W()(keys, ids, keys=True)
        b = W().from_buffer(a.to_bytes(), verify=True)
        for _ in range(60):
            text = rand_str(0, 30)
            want = pyaho_find(keys, ids, text)
            assert a.find(text) == want and b.find(text) == want, (keys, text)
            checked += 1
    assert checked == 2400


def test_flat_buffer_layout_and_determinism():
    keys, ids = [" hot ", " hot dog ", "猫", " "], [3, 1, 2, 0]
    a = W()(keys, ids, keys=True)
    data = a.to_bytes()
    assert a.size()["nodes"] == 13                     # root, " ", "hot ", "dog ", 3 bytes of 猫
    assert data[:8] == b"MCLPAC\r\n"
    version, header_size, endian, node_size, flags, n_nodes, space, n_aux = struct.unpack_from("=8I", data, 8)
    # the nodes where a key ends (on the node or its failure chain): " ", " hot ", " hot dog ", 猫
    assert (version, header_size, endian, node_size, flags, n_nodes, space, n_aux) == \
        (3, HEADER, 0x01020304, NODE, 1, 13, 1, 4)
    assert struct.unpack_from("=8Q", data, 40) == (
        4, HEADER, HEADER + 2048, HEADER + 2048 + NODE * 14, HEADER + 2048 + NODE * 14 + 8 * 4,
        HEADER + 2048 + NODE * 14 + 8 * 4 + 8, HEADER + 2048 + NODE * 14 + 8 * 4 + 8 + 4 * 2, len(data))
    assert len(data) == HEADER + 2048 + NODE * 14 + 8 * 4 + 8 + 4 * 2 + 13
    assert struct.unpack_from("=256I", data, HEADER)[ord(" ")] == 1
    bits_off, cum_off = struct.unpack_from("=2Q", data, 40 + 32)
    bits = struct.unpack_from("=Q", data, bits_off)[0]
    assert bin(bits).count("1") == 4 and struct.unpack_from("=2I", data, cum_off) == (0, 4)
    # the same keys in any order give the same bytes; the mapped copy writes them back
    assert W()(keys[::-1], ids[::-1], keys=True).to_bytes() == data
    assert W().from_buffer(data).to_bytes() == data
    # default mode: flag 0, and its own answers after the round trip
    d = native.get("Automaton")(["hot", "hot dog"], [0, 1])
    dd = W().from_buffer(memoryview(d.to_bytes()))
    assert struct.unpack_from("=I", d.to_bytes(), 24) == (0,) and dd.size()["keys_mode"] is False
    assert dd.find("a hot dog.") == [0, 1] and dd.find("hotdog") == []


def test_from_mmap_in_place_holds_the_mapping(tmp_path):
    keys = ["w%d " % i for i in range(500)] + ["猫"]
    a = W()(keys, list(range(501)), keys=True)
    path = tmp_path / "x.ac"
    path.write_bytes(a.to_bytes())
    with open(path, "rb") as fh:
        m = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    b = W().from_buffer(m)
    assert b.size()["mapped"] is True and b.size()["nodes"] == a.size()["nodes"]
    text = "w7 w499 x猫w3"
    assert b.find(text) == a.find(text) == [3, 7, 499, 500]
    with pytest.raises(BufferError):
        m.close()                       # the automaton holds the mapping
    c = W().from_buffer(memoryview(m))
    assert c.find(text) == [3, 7, 499, 500]
    del b, c
    m.close()


def test_empty_keys_round_trip():
    a = W()([], [], keys=True)
    b = W().from_buffer(a.to_bytes(), verify=True)
    assert b.find("anything 猫") == [] and b.size()["keys"] == 0 and b.size()["nodes"] == 1


def test_errors():
    A = W()
    with pytest.raises(ValueError, match="non-empty"):
        A(["a", ""], [0, 1], keys=True)
    with pytest.raises(ValueError, match="keys must be distinct"):
        A(["a", "猫", "a"], [0, 1, 2], keys=True)
    with pytest.raises(TypeError):
        A(["a"], [0], True)             # keys is keyword-only
    data = A([" a ", " ab "], [0, 1], keys=True).to_bytes()
    for bad, why in [(b"", "too short"), (b"X" + data[1:], "bad magic"), (data[:-1], "truncated"),
                     (data + b"\0", "truncated or too long"),
                     (data[:8] + struct.pack("=I", 2) + data[12:], "other version"),
                     (data[:16] + struct.pack("=I", 0x04030201) + data[20:], "other byte order"),
                     (data[:24] + struct.pack("=I", 2) + data[28:], "bad header fields")]:
        with pytest.raises(ValueError, match=why):
            A.from_buffer(bad)
    with pytest.raises(ValueError, match="not 8-byte aligned"):
        A.from_buffer(memoryview(b"\0" + data)[1:])
    # a failure link to itself: only verify=True reads every node and refuses it
    n = A.from_buffer(data).size()["nodes"]
    last = HEADER + 2048 + NODE * (n - 1)
    corrupt = data[:last + 4] + struct.pack("=I", (n - 1) | 0x80000000) + data[last + 8:]
    assert A.from_buffer(corrupt).size()["nodes"] == n
    with pytest.raises(ValueError, match="bad failure link"):
        A.from_buffer(corrupt, verify=True)
    with pytest.raises(TypeError):
        A.from_buffer("not a buffer")
