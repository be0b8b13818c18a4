/* Automaton: a compact Aho-Corasick automaton over UTF-8 bytes for matching.py's Matcher and
 * world_match.py's WorldMatcher (exported twice: "Automaton" and "WorldAutomaton", the same
 * type; the second name says the build has keys mode and flat files, so an older build
 * binds None through native.get and the Python path runs).
 *
 * Automaton(entries, ids): entries are distinct str (the metadata entries that can match),
 * ids their entry ids; the keys are " " + entry + " " in UTF-8 (surrogatepass: lone
 * surrogates as 3 bytes, exactly as str.encode("utf-8", "surrogatepass")).
 * Automaton(keys, ids, keys=True): keys mode, the keys are given (distinct, non-empty str,
 * e.g. section 10's world_key of each entry) and no space is added.
 * find(text) -> ascending unique ids of the keys occurring in spacing(text) (matching.py):
 * the text is spaced on the fly (" " before and after, " p " for , . ; : ? ! `, " " for TAB,
 * LF, CR) and encoded to UTF-8 the same way while it is walked. A key is a substring of the
 * spaced text iff its bytes are a substring of the spaced text's bytes: the encoding is
 * injective per code point, and a byte match can neither start nor end inside a code point.
 * Default mode: keys start and end with the ASCII space. Keys mode: a key's first byte is the
 * first byte of its first code point (ASCII or a lead byte, never a continuation byte
 * 10xxxxxx), and in the text such a byte is always the start of a code point, so a byte match
 * starts on a code-point boundary; its last code point is complete, and a lead byte fixes
 * the length of its sequence, so the text's code point that starts where the key's last one
 * starts has the same length and ends where the key ends. Lone surrogates are encoded as
 * 3-byte sequences of the same shape (lead 0xED, two continuation bytes) on both sides, so
 * the argument holds for them too. Hence byte matching is exact for any keys.
 *
 * Layout: nodes numbered breadth-first from sorted keys, so a node's children are
 * consecutive nodes with ascending labels (binary search; the root and the node after the
 * root's space get dense 256-entry tables: every word of a text starts there; in keys mode
 * the node after ' ' exists only if some key starts with a space, and the table then is that
 * node's children as in default mode). Each node has a failure link and, when a key ends on it
 * or on its failure chain, an output entry: the key's id and the dictionary link (the nearest
 * node on the failure chain where a key ends), so every occurrence, nested and overlapping
 * ones included, is reported. Breadth-first numbering gives fail[v] < v and dict[v] < v, and
 * children made in parent order tile [1, n_nodes) in node order.
 *
 * Compact layout (the same in memory and in files; 500k stand-in: 33.6 MB, was 67.2 MB with
 * 20-byte nodes): a node is 8 bytes, {child, fail | AC_HAS}: it stores only where its children
 * start (its child count is the next node's start minus its own; a sentinel node ends the
 * array), and AC_HAS marks the 6-25% of nodes with an output entry; those entries (8 bytes)
 * sit in node order in aux[], found by rank (a bitmap of the AC_HAS nodes plus a count per
 * 64 nodes: one popcount). The walk reads the rank only where a key may end.
 * from_buffer(verify=True) checks all of that (every walk then ends inside the buffer).
 * pyahocorasick (matching.py's fallback and the tests' oracle) answers the same question.
 *
 * Flat files: to_bytes() -> one buffer, native byte order (the header's endian mark refuses
 * a byte-swapped host), every array 8-byte aligned in it:
 *   ac_header (104 bytes: magic "MCLPAC\r\n", version 3, sizes, flags, offsets)
 *   root_next[256], space_next[256]   uint32 (2048 bytes)
 *   nodes[n_nodes + 1]                ac_node (8 bytes; the last one the sentinel)
 *   aux[n_aux]                        ac_aux (8 bytes: out, dict)
 *   bits[W], W = ceil(n_nodes / 64)   uint64 (bit v: node v has AC_HAS)
 *   cum[W + 1]                        uint32 (AC_HAS nodes before word i; cum[W] = n_aux)
 *   label[n_nodes]                    uint8
 * A built automaton holds exactly this buffer (malloc'd), so to_bytes() is one copy.
 * Automaton.from_buffer(obj, verify=False) uses any buffer-protocol object (bytes, a
 * memoryview of an mmap) in place: nothing is copied but the two 2 KB tables, and the
 * automaton holds the buffer (an mmap cannot close under it). The same keys give the same
 * bytes (the build is deterministic), so a file's sha256 names it. */
#include "speedups.h"
#include <stdint.h>

/* the walk's node: 8 bytes */
typedef struct {
    uint32_t child;  /* first child (children are consecutive, labels ascending); a node
                      * without children: where the next node's children start, so that
                      * node v has nodes[v + 1].child - nodes[v].child children */
    uint32_t fail;   /* failure link | AC_HAS when the node has an aux entry: a key ends here
                      * or on its failure chain */
} ac_node;           /* nodes[n_nodes] is a sentinel: child = n_nodes */

/* the outputs of a node with AC_HAS, at aux[rank(v)] (rank: AC_HAS nodes before v) */
typedef struct {
    int32_t out;     /* id of the key ending here, -1 = none */
    uint32_t dict;   /* nearest node on the failure chain where a key ends; 0 = none */
} ac_aux;

#define AC_HAS 0x80000000u
#define AC_MAGIC "MCLPAC\r\n"
#define AC_VERSION 3   /* 1, 2: 20- and 16-byte nodes with their outputs inline (never released) */
#define AC_ENDIAN 0x01020304u
#define AC_FLAG_KEYS 1u

typedef struct {
    char magic[8];
    uint32_t version;
    uint32_t header_size;  /* sizeof(ac_header) */
    uint32_t endian;       /* AC_ENDIAN as written by the builder */
    uint32_t node_size;    /* sizeof(ac_node) */
    uint32_t flags;        /* AC_FLAG_KEYS: keys mode */
    uint32_t n_nodes;
    uint32_t space;
    uint32_t n_aux;
    uint64_t n_keys;
    uint64_t tables_off;   /* root_next then space_next */
    uint64_t nodes_off;    /* n_nodes + 1 ac_node */
    uint64_t aux_off;      /* n_aux ac_aux */
    uint64_t bits_off;     /* W = ceil(n_nodes / 64) uint64: bit v = AC_HAS of node v */
    uint64_t cum_off;      /* W + 1 uint32: AC_HAS nodes before word i (cum[W] = n_aux) */
    uint64_t labels_off;   /* n_nodes uint8 */
    uint64_t total;        /* the buffer's exact length */
} ac_header;

typedef struct {
    PyObject_HEAD
    const ac_node *nodes;
    const ac_aux *aux;
    const uint64_t *bits;
    const uint32_t *cum;
    const uint8_t *label;  /* label[v]: the byte on the edge into v */
    const uint8_t *base;   /* the flat buffer: malloc'd (built) or view's (from_buffer) */
    uint64_t total;
    uint32_t n_nodes, n_aux;
    uint32_t space;  /* the root's child by ' ' (0 if none) */
    Py_ssize_t n_keys;
    int keys_mode;
    int mapped;      /* base is view.buf (from_buffer), else malloc'd */
    Py_buffer view;
    uint32_t root_next[256];
    uint32_t space_next[256];
} AcObject;

static inline uint32_t find_label(const uint8_t *label, uint32_t lo, uint32_t cnt, uint8_t b) {
    const uint8_t *lab = label + lo;
    if (cnt <= 8) {
        for (uint32_t i = 0; i < cnt; i++) {
            if (lab[i] == b)
                return lo + i;
            if (lab[i] > b)
                return 0;
        }
        return 0;
    }
    uint32_t l = 0, r = cnt;
    while (l < r) {
        uint32_t m = (l + r) >> 1;
        if (lab[m] < b)
            l = m + 1;
        else
            r = m;
    }
    return (l < cnt && lab[l] == b) ? lo + l : 0;
}

static inline uint32_t ac_goto(const AcObject *a, uint32_t u, uint8_t b) {
    if (u == 0)
        return a->root_next[b];
    if (u == a->space)
        return a->space_next[b];
    const ac_node *n = &a->nodes[u];
    return find_label(a->label, n->child, n[1].child - n->child, b);
}

static inline const ac_aux *ac_aux_of(const AcObject *a, uint32_t v) {
    uint64_t below = a->bits[v >> 6] & ((UINT64_C(1) << (v & 63)) - 1);
    return &a->aux[a->cum[v >> 6] + (uint32_t)__builtin_popcountll(below)];
}

/* ---- building ------------------------------------------------------------------- */

typedef struct {
    const uint8_t *arena;
    const Py_ssize_t *off;
    const Py_ssize_t *len;
} key_set;

static int cmp_keys(const void *x, const void *y, void *ctx) {
    const key_set *ks = ctx;
    Py_ssize_t i = *(const Py_ssize_t *)x, j = *(const Py_ssize_t *)y;
    Py_ssize_t li = ks->len[i], lj = ks->len[j];
    int c = memcmp(ks->arena + ks->off[i], ks->arena + ks->off[j], li < lj ? li : lj);
    if (c)
        return c;
    return (li > lj) - (li < lj);
}

/* Encode " " + s + " " (pad = 1) or s (pad = 0) to the arena at *pos (grown as needed); -1 on error. */
static int put_key(PyObject *s, int pad, uint8_t **arena, Py_ssize_t *cap, Py_ssize_t *pos, Py_ssize_t *len) {
    const char *src;
    Py_ssize_t n;
    PyObject *enc = NULL;
    if (!PyUnicode_Check(s)) {
        PyErr_SetString(PyExc_TypeError, "Automaton entries must be str");
        return -1;
    }
    if (PyUnicode_IS_ASCII(s)) {
        src = (const char *)PyUnicode_DATA(s);
        n = PyUnicode_GET_LENGTH(s);
    } else {
        enc = PyUnicode_AsEncodedString(s, "utf-8", "surrogatepass");
        if (!enc)
            return -1;
        src = PyBytes_AS_STRING(enc);
        n = PyBytes_GET_SIZE(enc);
    }
    if (*pos + n + 2 > *cap) {
        Py_ssize_t ncap = (*cap + n + 2) * 2;
        uint8_t *na = realloc(*arena, ncap);
        if (!na) {
            Py_XDECREF(enc);
            PyErr_NoMemory();
            return -1;
        }
        *arena = na;
        *cap = ncap;
    }
    if (!pad && n == 0) {
        Py_XDECREF(enc);
        PyErr_SetString(PyExc_ValueError, "Automaton keys must be non-empty");
        return -1;
    }
    uint8_t *d = *arena + *pos;
    if (pad) {
        d[0] = ' ';
        memcpy(d + 1, src, n);
        d[n + 1] = ' ';
        n += 2;
    } else {
        memcpy(d, src, n);
    }
    *len = n;
    *pos += n;
    Py_XDECREF(enc);
    return 0;
}

/* the build's node (16 bytes), packed into the flat layout at the end */
typedef struct {
    uint32_t child, fail, dict;
    int32_t out;
} ac_bnode;

static inline uint32_t b_goto(const AcObject *a, const ac_bnode *bn, const uint8_t *label, uint32_t u, uint8_t b) {
    if (u == 0)
        return a->root_next[b];
    if (u == a->space)
        return a->space_next[b];
    return find_label(label, bn[u].child, bn[u + 1].child - bn[u].child, b);
}

static void ac_layout(ac_header *h, int keys_mode, uint32_t n_nodes, uint32_t n_aux, uint32_t space, uint64_t n_keys);
static void ac_bind(AcObject *a, const uint8_t *base, const ac_header *h);

static int ac_build(AcObject *a, PyObject *entries, PyObject *ids, int keys_mode) {
    Py_ssize_t n = PyList_GET_SIZE(entries), cap = 16 * n + 64, pos = 0;
    uint8_t *arena = malloc(cap);
    Py_ssize_t *off = malloc(sizeof(Py_ssize_t) * (n + 1)), *len = malloc(sizeof(Py_ssize_t) * (n + 1));
    Py_ssize_t *order = malloc(sizeof(Py_ssize_t) * (n + 1)), *active = malloc(sizeof(Py_ssize_t) * (n + 1));
    int32_t *id = malloc(sizeof(int32_t) * (n + 1));
    uint32_t *cur = malloc(sizeof(uint32_t) * (n + 1)), *parent = NULL;
    ac_bnode *bn = NULL;
    uint8_t *lab = NULL;
    int rc = -1;
    if (!arena || !off || !len || !order || !active || !id || !cur) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        long v = PyLong_AsLong(PyList_GET_ITEM(ids, k));
        if (v == -1 && PyErr_Occurred())
            goto done;
        if (v < 0 || v > INT32_MAX) {
            PyErr_SetString(PyExc_ValueError, "Automaton ids must be in [0, 2**31)");
            goto done;
        }
        id[k] = (int32_t)v;
        off[k] = pos;
        if (put_key(PyList_GET_ITEM(entries, k), !keys_mode, &arena, &cap, &pos, &len[k]) < 0)
            goto done;
        order[k] = k;
    }
    key_set ks = {arena, off, len};
    /* the pure C parts run without the GIL: languages can build in parallel threads */
    PyThreadState *ts = PyEval_SaveThread();
    qsort_r(order, n, sizeof(Py_ssize_t), cmp_keys, &ks);
    PyEval_RestoreThread(ts);
    /* re-lay the keys out in sorted order: the level passes below then read the arena
     * front to back instead of jumping around it */
    {
        uint8_t *sorted = malloc(pos ? pos : 1);
        Py_ssize_t *soff = malloc(sizeof(Py_ssize_t) * (n + 1)), *slen = malloc(sizeof(Py_ssize_t) * (n + 1));
        int32_t *sid = malloc(sizeof(int32_t) * (n + 1));
        if (!sorted || !soff || !slen || !sid) {
            free(sorted);
            free(soff);
            free(slen);
            free(sid);
            PyErr_NoMemory();
            goto done;
        }
        Py_ssize_t q = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_ssize_t k = order[i];
            memcpy(sorted + q, arena + off[k], len[k]);
            soff[i] = q;
            slen[i] = len[k];
            sid[i] = id[k];
            q += len[k];
            order[i] = i;
        }
        free(arena);
        free(off);
        free(len);
        free(id);
        arena = sorted;
        off = soff;
        len = slen;
        id = sid;
    }
    /* trie size = 1 + sum over sorted keys of (length - common prefix with the previous) */
    uint64_t total = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t k = order[i], lcp = 0;
        if (i > 0) {
            Py_ssize_t p = order[i - 1], m = len[p] < len[k] ? len[p] : len[k];
            const uint8_t *x = arena + off[p], *y = arena + off[k];
            while (lcp < m && x[lcp] == y[lcp])
                lcp++;
            if (lcp == len[k] && lcp == len[p]) {
                PyErr_SetString(PyExc_ValueError, keys_mode ? "Automaton keys must be distinct"
                                                            : "Automaton entries must be distinct");
                goto done;
            }
        }
        total += len[k] - lcp;
    }
    if (total >= UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "Automaton too large");
        goto done;
    }
    uint32_t nn = (uint32_t)total;
    bn = malloc(sizeof(ac_bnode) * ((size_t)nn + 1));   /* + the sentinel */
    lab = malloc(nn);
    parent = malloc(sizeof(uint32_t) * nn);
    if (!bn || !lab || !parent) {
        PyErr_NoMemory();
        goto done;
    }
    memset(bn, 0, sizeof(ac_bnode) * ((size_t)nn + 1));
    for (uint32_t v = 0; v <= nn; v++)
        bn[v].out = -1;
    lab[0] = 0;
    parent[0] = 0;
    /* breadth-first, level by level: at depth d the active keys (longer than d, in sorted
     * order) sharing a parent and a byte share a node, and a parent's children come out
     * consecutively with ascending labels */
    ts = PyEval_SaveThread();
    Py_ssize_t nact = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        active[i] = order[i];
        cur[order[i]] = 0;
    }
    uint32_t next = 1;
    for (Py_ssize_t d = 0; nact > 0; d++) {
        uint32_t prev_parent = UINT32_MAX, node = 0;
        int prev_byte = -1;
        Py_ssize_t w = 0;
        for (Py_ssize_t i = 0; i < nact; i++) {
            Py_ssize_t k = active[i];
            uint32_t p = cur[k];
            uint8_t b = arena[off[k] + d];
            if (p != prev_parent || b != prev_byte) {
                node = next++;
                lab[node] = b;
                parent[node] = p;
                if (bn[p].child == 0)              /* 0: no child yet (node 0 is no one's child) */
                    bn[p].child = node;
                prev_parent = p;
                prev_byte = b;
            }
            cur[k] = node;
            if (len[k] == d + 1)
                bn[node].out = id[k];
            else
                active[w++] = k;
        }
        nact = w;
    }
    /* children were made in parent order, so the child ranges tile [1, next): a node without
     * children starts where the next node's children start (the sentinel's: next) */
    bn[next].child = next;
    for (uint32_t v = next; v-- > 0;)
        if (bn[v].child == 0)
            bn[v].child = bn[v + 1].child;
    memset(a->root_next, 0, sizeof(a->root_next));
    memset(a->space_next, 0, sizeof(a->space_next));
    for (uint32_t v = bn[0].child; v < bn[1].child; v++)
        a->root_next[lab[v]] = v;
    a->space = a->root_next[' '];
    if (a->space)
        for (uint32_t v = bn[a->space].child; v < bn[a->space + 1].child; v++)
            a->space_next[lab[v]] = v;
    /* failure and dictionary links in breadth-first order (shallower nodes first) */
    for (uint32_t v = 1; v < next; v++) {
        uint32_t p = parent[v], f = 0;
        uint8_t c = lab[v];
        if (p != 0) {
            f = bn[p].fail;
            for (;;) {
                uint32_t t = b_goto(a, bn, lab, f, c);
                if (t) {
                    f = t;
                    break;
                }
                if (f == 0)
                    break;
                f = bn[f].fail;
            }
        }
        bn[v].fail = f;
        bn[v].dict = bn[f].out >= 0 ? f : bn[f].dict;
    }
    PyEval_RestoreThread(ts);
    /* pack: 8-byte nodes, the outputs of the AC_HAS nodes in rank order, the rank tables */
    uint32_t n_aux = 0;
    for (uint32_t v = 0; v < next; v++)
        n_aux += bn[v].out >= 0 || bn[v].dict != 0;
    ac_header h;
    ac_layout(&h, keys_mode, next, n_aux, a->space, (uint64_t)n);
    uint8_t *block = calloc(1, h.total);
    if (!block) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(block, &h, sizeof(h));
    memcpy(block + h.tables_off, a->root_next, sizeof(a->root_next));
    memcpy(block + h.tables_off + sizeof(a->root_next), a->space_next, sizeof(a->space_next));
    ac_node *nodes = (ac_node *)(block + h.nodes_off);
    ac_aux *aux = (ac_aux *)(block + h.aux_off);
    uint64_t *bits = (uint64_t *)(block + h.bits_off);
    uint32_t *cum = (uint32_t *)(block + h.cum_off);
    uint32_t r = 0;
    ts = PyEval_SaveThread();
    for (uint32_t v = 0; v <= next; v++) {
        if ((v & 63) == 0)
            cum[v >> 6] = r;
        nodes[v].child = bn[v].child;
        if (v == next)
            break;
        nodes[v].fail = bn[v].fail;
        if (bn[v].out >= 0 || bn[v].dict != 0) {
            nodes[v].fail |= AC_HAS;
            bits[v >> 6] |= UINT64_C(1) << (v & 63);
            aux[r].out = bn[v].out;
            aux[r].dict = bn[v].dict;
            r++;
        }
    }
    cum[(next + 63) >> 6] = r;
    memcpy(block + h.labels_off, lab, next);
    PyEval_RestoreThread(ts);
    ac_bind(a, block, &h);
    rc = 0;
done:
    free(arena);
    free(off);
    free(len);
    free(order);
    free(active);
    free(id);
    free(cur);
    free(parent);
    free(bn);
    free(lab);
    return rc;
}

/* ---- the Python type ---------------------------------------------------------------- */

static void ac_dealloc(AcObject *a) {
    if (a->mapped)
        PyBuffer_Release(&a->view);
    else
        free((void *)a->base);
    Py_TYPE(a)->tp_free((PyObject *)a);
}

static PyObject *ac_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    PyObject *entries, *ids;
    int keys_mode = 0;
    static char *kwlist[] = {"entries", "ids", "keys", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!O!|$p:Automaton", kwlist, &PyList_Type, &entries,
                                     &PyList_Type, &ids, &keys_mode))
        return NULL;
    if (PyList_GET_SIZE(entries) != PyList_GET_SIZE(ids)) {
        PyErr_SetString(PyExc_ValueError, "Automaton: entries and ids differ in length");
        return NULL;
    }
    AcObject *a = (AcObject *)type->tp_alloc(type, 0);
    if (!a)
        return NULL;
    a->base = NULL;
    a->mapped = 0;
    if (ac_build(a, entries, ids, keys_mode) < 0) {
        Py_DECREF(a);
        return NULL;
    }
    return (PyObject *)a;
}

/* ---- flat files --------------------------------------------------------------------- */

static void ac_layout(ac_header *h, int keys_mode, uint32_t n_nodes, uint32_t n_aux, uint32_t space, uint64_t n_keys) {
    uint64_t words = ((uint64_t)n_nodes + 63) / 64;
    memset(h, 0, sizeof(*h));
    memcpy(h->magic, AC_MAGIC, 8);
    h->version = AC_VERSION;
    h->header_size = sizeof(ac_header);
    h->endian = AC_ENDIAN;
    h->node_size = sizeof(ac_node);
    h->flags = keys_mode ? AC_FLAG_KEYS : 0;
    h->n_nodes = n_nodes;
    h->space = space;
    h->n_aux = n_aux;
    h->n_keys = n_keys;
    h->tables_off = sizeof(ac_header);
    h->nodes_off = h->tables_off + 2 * 256 * sizeof(uint32_t);
    h->aux_off = h->nodes_off + ((uint64_t)n_nodes + 1) * sizeof(ac_node);
    h->bits_off = h->aux_off + (uint64_t)n_aux * sizeof(ac_aux);
    h->cum_off = h->bits_off + words * sizeof(uint64_t);
    h->labels_off = h->cum_off + (words + 1) * sizeof(uint32_t);
    h->total = h->labels_off + n_nodes;
}

/* Point a at the flat buffer base (header h already checked or just written). */
static void ac_bind(AcObject *a, const uint8_t *base, const ac_header *h) {
    a->base = base;
    a->total = h->total;
    a->nodes = (const ac_node *)(base + h->nodes_off);
    a->aux = (const ac_aux *)(base + h->aux_off);
    a->bits = (const uint64_t *)(base + h->bits_off);
    a->cum = (const uint32_t *)(base + h->cum_off);
    a->label = base + h->labels_off;
    a->n_nodes = h->n_nodes;
    a->n_aux = h->n_aux;
    a->space = h->space;
    a->n_keys = (Py_ssize_t)h->n_keys;
    a->keys_mode = (h->flags & AC_FLAG_KEYS) != 0;
    memcpy(a->root_next, base + h->tables_off, sizeof(a->root_next));
    memcpy(a->space_next, base + h->tables_off + sizeof(a->root_next), sizeof(a->space_next));
}

static PyObject *ac_to_bytes(AcObject *a, PyObject *unused) {
    return PyBytes_FromStringAndSize((const char *)a->base, (Py_ssize_t)a->total);
}

static int bad_file(const char *why) {
    PyErr_Format(PyExc_ValueError, "not a flat Automaton buffer of this build: %s", why);
    return -1;
}

/* The header alone: magic, byte order, version, and sizes that fit the buffer exactly. */
static int ac_check_header(const ac_header *h, Py_ssize_t len) {
    if (memcmp(h->magic, AC_MAGIC, 8) != 0)
        return bad_file("bad magic");
    if (h->endian != AC_ENDIAN)
        return bad_file("other byte order");
    if (h->version != AC_VERSION || h->header_size != sizeof(ac_header) || h->node_size != sizeof(ac_node))
        return bad_file("other version or layout");
    if ((h->flags & ~AC_FLAG_KEYS) || h->n_nodes == 0 || h->n_nodes >= AC_HAS || h->n_aux > h->n_nodes ||
        h->n_keys > INT32_MAX)
        return bad_file("bad header fields");
    ac_header want;
    ac_layout(&want, (h->flags & AC_FLAG_KEYS) != 0, h->n_nodes, h->n_aux, h->space, h->n_keys);
    if (memcmp(&want, h, sizeof(want)) != 0)
        return bad_file("inconsistent sizes");
    if ((uint64_t)len != h->total)
        return bad_file("truncated or too long");
    return 0;
}

/* The tables, the root and the sentinel (cheap); with verify, every node (one pass over the
 * file): child ranges tiling [1, n_nodes) in order, links to shallower nodes (fail, dict < v),
 * AC_HAS equal to the bitmap, the rank table, dict links to nodes where a key ends. Then every
 * walk ends and stays inside the buffer. */
static int ac_check_body(const AcObject *a, int verify) {
    uint32_t nn = a->n_nodes, words = (nn + 63) / 64;
    for (int b = 0; b < 256; b++)
        if (a->root_next[b] >= nn || a->space_next[b] >= nn)
            return bad_file("table out of range");
    if (a->space != a->root_next[' '])
        return bad_file("bad space node");
    for (int b = 0; b < 256; b++)
        if (!a->space && a->space_next[b])
            return bad_file("bad space table");
    if (a->nodes[0].fail || a->nodes[0].child != 1 || a->nodes[nn].child != nn || a->cum[words] != a->n_aux ||
        a->cum[0] != 0)
        return bad_file("bad root or sentinel");
    if (verify) {
        uint32_t r = 0;
        for (uint32_t v = 0; v < nn; v++) {
            const ac_node *x = &a->nodes[v];
            if ((v & 63) == 0 && a->cum[v >> 6] != r)
                return bad_file("bad rank table");
            int has = (a->bits[v >> 6] >> (v & 63)) & 1;
            if (has != ((x->fail & AC_HAS) != 0))
                return bad_file("bad output bit");
            if (x->child > x[1].child || (v && x->child < x[-1].child) || (x->child < x[1].child && x->child <= v))
                return bad_file("bad child range");
            if (v && (x->fail & ~AC_HAS) >= v)
                return bad_file("bad failure link");
            if (has) {
                const ac_aux *o = &a->aux[r++];
                if ((o->out < 0 && !o->dict) || o->dict >= (v ? v : 1) || (o->dict && !(a->nodes[o->dict].fail & AC_HAS)))
                    return bad_file("bad dictionary link");
                if (o->dict && ac_aux_of(a, o->dict)->out < 0)
                    return bad_file("bad dictionary link");
            }
        }
        if (r != a->n_aux)
            return bad_file("bad rank table");
    }
    return 0;
}

static PyObject *ac_from_buffer(PyTypeObject *type, PyObject *args, PyObject *kw) {
    PyObject *obj;
    int verify = 0;
    static char *kwlist[] = {"buffer", "verify", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$p:from_buffer", kwlist, &obj, &verify))
        return NULL;
    AcObject *a = (AcObject *)type->tp_alloc(type, 0);
    if (!a)
        return NULL;
    a->base = NULL;
    a->mapped = 0;
    if (PyObject_GetBuffer(obj, &a->view, PyBUF_SIMPLE) < 0) {
        Py_DECREF(a);
        return NULL;
    }
    a->mapped = 1;
    const uint8_t *base = a->view.buf;
    Py_ssize_t len = a->view.len;
    ac_header h;
    if (len < (Py_ssize_t)sizeof(ac_header)) {
        bad_file("too short");
        goto fail;
    }
    memcpy(&h, base, sizeof(h));
    if (ac_check_header(&h, len) < 0)
        goto fail;
    if (((uintptr_t)base) % 8 != 0) {
        bad_file("buffer not 8-byte aligned");
        goto fail;
    }
    ac_bind(a, base, &h);
    if (ac_check_body(a, verify) < 0)
        goto fail;
    return (PyObject *)a;
fail:
    Py_DECREF(a);
    return NULL;
}

typedef struct {
    int32_t *ids;
    Py_ssize_t n, cap;
    int32_t small[64];
} id_buf;

static int push_id(id_buf *b, int32_t v) {
    if (b->n == b->cap) {
        Py_ssize_t ncap = b->cap * 2;
        int32_t *nb = b->ids == b->small ? malloc(sizeof(int32_t) * ncap) : realloc(b->ids, sizeof(int32_t) * ncap);
        if (!nb)
            return -1;
        if (b->ids == b->small)
            memcpy(nb, b->small, sizeof(b->small));
        b->ids = nb;
        b->cap = ncap;
    }
    b->ids[b->n++] = v;
    return 0;
}

static int cmp_i32(const void *x, const void *y) {
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return (a > b) - (a < b);
}

/* one step of the walk on byte B, reporting every key ending there */
#define FEED(B)                                                      \
    do {                                                             \
        uint8_t b_ = (uint8_t)(B);                                   \
        for (;;) {                                                   \
            uint32_t t_ = ac_goto(a, u, b_);                         \
            if (t_) {                                                \
                u = t_;                                              \
                break;                                               \
            }                                                        \
            if (u == 0)                                              \
                break;                                               \
            u = nodes[u].fail & ~AC_HAS;                             \
        }                                                            \
        if (nodes[u].fail & AC_HAS) {                                \
            const ac_aux *x_ = ac_aux_of(a, u);                      \
            for (;;) {                                               \
                if (x_->out >= 0 && push_id(&buf, x_->out) < 0)      \
                    goto nomem;                                      \
                if (!x_->dict)                                       \
                    break;                                           \
                x_ = ac_aux_of(a, x_->dict);                         \
            }                                                        \
        }                                                            \
    } while (0)

static PyObject *ac_find(AcObject *a, PyObject *text) {
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "find() needs a str");
        return NULL;
    }
    const ac_node *nodes = a->nodes;
    id_buf buf;
    buf.ids = buf.small;
    buf.n = 0;
    buf.cap = 64;
    uint32_t u = 0;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    FEED(' ');
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 0x80) {
            switch (c) {
            case ',': case '.': case ';': case ':': case '?': case '!': case '`':
                FEED(' ');
                FEED(c);
                FEED(' ');
                break;
            case '\t': case '\n': case '\r':
                FEED(' ');
                break;
            default:
                FEED(c);
            }
        } else if (c < 0x800) {
            FEED(0xC0 | (c >> 6));
            FEED(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            FEED(0xE0 | (c >> 12));
            FEED(0x80 | ((c >> 6) & 0x3F));
            FEED(0x80 | (c & 0x3F));
        } else {
            FEED(0xF0 | (c >> 18));
            FEED(0x80 | ((c >> 12) & 0x3F));
            FEED(0x80 | ((c >> 6) & 0x3F));
            FEED(0x80 | (c & 0x3F));
        }
    }
    FEED(' ');
    /* ascending, each id once */
    Py_ssize_t m = buf.n;
    int32_t *ids = buf.ids;
    if (m > 16) {
        qsort(ids, m, sizeof(int32_t), cmp_i32);
    } else {
        for (Py_ssize_t i = 1; i < m; i++) {
            int32_t v = ids[i];
            Py_ssize_t j = i;
            while (j > 0 && ids[j - 1] > v) {
                ids[j] = ids[j - 1];
                j--;
            }
            ids[j] = v;
        }
    }
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < m; i++)
        if (k == 0 || ids[k - 1] != ids[i])
            ids[k++] = ids[i];
    PyObject *out = PyList_New(k);
    if (out)
        for (Py_ssize_t i = 0; i < k; i++) {
            PyObject *v = PyLong_FromLong(ids[i]);
            if (!v) {
                Py_CLEAR(out);
                break;
            }
            PyList_SET_ITEM(out, i, v);
        }
    if (buf.ids != buf.small)
        free(buf.ids);
    return out;
nomem:
    if (buf.ids != buf.small)
        free(buf.ids);
    return PyErr_NoMemory();
}

static PyObject *ac_size(AcObject *a, PyObject *unused) {
    size_t bytes = (size_t)a->total + sizeof(AcObject);
    return Py_BuildValue("{s:n,s:k,s:n,s:O,s:O}", "keys", a->n_keys, "nodes", (unsigned long)a->n_nodes,
                         "bytes", (Py_ssize_t)bytes, "keys_mode", a->keys_mode ? Py_True : Py_False,
                         "mapped", a->mapped ? Py_True : Py_False);
}

static PyMethodDef ac_methods[] = {
    {"find", (PyCFunction)ac_find, METH_O,
     "find(text) -> ascending unique ids of the keys occurring in spacing(text)"},
    {"size", (PyCFunction)ac_size, METH_NOARGS,
     "size() -> {'keys', 'nodes', 'bytes', 'keys_mode', 'mapped'} (bytes: the node arrays, owned or mapped)"},
    {"to_bytes", (PyCFunction)ac_to_bytes, METH_NOARGS, "to_bytes() -> the flat buffer (see ac_match.c)"},
    {"from_buffer", (PyCFunction)(void (*)(void))ac_from_buffer, METH_CLASS | METH_VARARGS | METH_KEYWORDS,
     "Automaton.from_buffer(buffer, *, verify=False) -> the automaton of a to_bytes() buffer, used in place "
     "(not copied; the buffer is held); verify checks every node"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject AcType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "metaclip_spark._speedups.Automaton",
    .tp_basicsize = sizeof(AcObject),
    .tp_dealloc = (destructor)ac_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Automaton(entries, ids, *, keys=False): Aho-Corasick over the keys ' ' + entry + ' ' "
              "(keys=True: the given keys); see ac_match.c",
    .tp_methods = ac_methods,
    .tp_new = ac_new,
};
