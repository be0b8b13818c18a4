/* WARC framing: headers and runs of one-record gzip members (warc.py). */
#include "speedups.h"

/* warc_headers(raw): metaclip_spark.formats.warc._parse_header for headers made only of printable
 * ASCII, TAB, CR and LF (every real WARC header): lines split at CRLF, CR or LF, the first
 * (the version line) skipped, "name: value" -> {name.strip().lower(): value.strip()}, the
 * first occurrence of a name kept, lines without ":" ignored. Any other byte (where
 * str.splitlines, str.strip or str.lower have Unicode rules) -> NotImplemented. */
static inline int hspace(unsigned char c) { return c == ' ' || c == '\t'; }

/* The lower-cased header name as a str (a new reference): the same object for the names
 * seen before (a file has ~15 distinct ones), so no allocation and a cached hash. */
#define NAME_CACHE 64
static PyObject *NAMES[NAME_CACHE];

static PyObject *header_name(const char *lower, size_t n) {
    unsigned h = (unsigned)n;
    for (size_t i = 0; i < n; i++)
        h = h * 31 + (unsigned char)lower[i];
    PyObject **slot = &NAMES[h % NAME_CACHE];
    if (*slot && (size_t)PyUnicode_GET_LENGTH(*slot) == n && memcmp(PyUnicode_1BYTE_DATA(*slot), lower, n) == 0)
        return Py_NewRef(*slot);
    PyObject *key = PyUnicode_DecodeASCII(lower, (Py_ssize_t)n, NULL);
    if (key && n <= 64) {
        PyUnicode_InternInPlace(&key);
        Py_XSETREF(*slot, Py_NewRef(key));
    }
    return key;
}

/* the headers dict of raw[0:len], Py_NotImplemented (new reference) when a byte needs the
 * Python rules, NULL on error */
static PyObject *parse_headers(const unsigned char *p, Py_ssize_t len) {
    const unsigned char *end = p + len;
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    int first = 1;
    while (p < end) {                        /* one pass per line: bounds, ':' and byte check */
        const unsigned char *line = p, *colon = NULL;
        for (; p < end; p++) {
            unsigned char c = *p;
            if (c == '\r' || c == '\n')
                break;
            if (c < 0x20 || c >= 0x7F) {
                if (c != '\t') {
                    Py_DECREF(d);
                    return Py_NewRef(Py_NotImplemented);
                }
            } else if (c == ':' && !colon) {
                colon = p;
            }
        }
        const unsigned char *eol = p;
        if (p < end)
            p += (*p == '\r' && p + 1 < end && p[1] == '\n') ? 2 : 1;
        if (first) {
            first = 0;
            continue;
        }
        if (!colon)
            continue;
        const unsigned char *ns = line, *ne = colon, *vs = colon + 1, *ve = eol;
        while (ns < ne && hspace(*ns)) ns++;
        while (ne > ns && hspace(ne[-1])) ne--;
        while (vs < ve && hspace(*vs)) vs++;
        while (ve > vs && hspace(ve[-1])) ve--;
        char small[256];
        size_t n = (size_t)(ne - ns);
        char *lower = n <= sizeof small ? small : PyMem_Malloc(n);
        if (!lower) {
            Py_DECREF(d);
            return PyErr_NoMemory();
        }
        for (size_t i = 0; i < n; i++) {
            unsigned char c = ns[i];
            lower[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        PyObject *key = header_name(lower, n);
        if (lower != small)
            PyMem_Free(lower);
        PyObject *val = key ? PyUnicode_DecodeASCII((const char *)vs, ve - vs, NULL) : NULL;
        PyObject *got = val ? PyDict_SetDefault(d, key, val) : NULL;
        Py_XDECREF(key);
        Py_XDECREF(val);
        if (!got) {
            Py_DECREF(d);
            return NULL;
        }
    }
    return d;
}

PyObject *warc_headers(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *d = parse_headers(view.buf, view.len);
    PyBuffer_Release(&view);
    return d;
}

/* member_record(buf, n): what warc._unit_records yields for a complete gzip member (its
 * whole inflated content in buf) that holds exactly one well-formed record: optional CR/LF,
 * a "WARC/" header ending in CRLF CRLF (no LF LF before it, within HEADER_MAX) that
 * warc_headers parses, a decimal Content-Length whose block lies inside buf, and nothing
 * but CR/LF after the block. Returns a new (headers, warc-type lower-cased, block start,
 * block end) tuple, else a new reference to NotImplemented (the Python reader then handles
 * the member and reports any damage itself), or NULL on error. */
#define HEADER_MAX (1 << 20)

static PyObject *member_record(const unsigned char *buf, Py_ssize_t n) {
    PyObject *result = NULL, *headers = NULL;
    Py_ssize_t p = 0, i, bstart, bend;
    while (p < n && (buf[p] == '\r' || buf[p] == '\n'))
        p++;
    if (n - p < 5 || memcmp(buf + p, "WARC/", 5) != 0)
        goto defer;
    {
        Py_ssize_t lim = p + HEADER_MAX < n ? p + HEADER_MAX : n;
        const unsigned char *hit = NULL;
        for (const unsigned char *q = buf + p; q + 4 <= buf + lim; q++) {
            q = memchr(q, '\r', (size_t)(buf + lim - q));
            if (!q || q + 4 > buf + lim)
                break;
            if (q[1] == '\n' && q[2] == '\r' && q[3] == '\n') {
                hit = q;
                break;
            }
        }
        if (!hit)
            goto defer;
        i = hit - buf;
        for (Py_ssize_t k = p; k + 1 < i; k++)
            if (buf[k] == '\n' && buf[k + 1] == '\n')
                goto defer;                         /* LF LF first: the regex path */
    }
    headers = parse_headers(buf + p, i - p);
    if (!headers || headers == Py_NotImplemented)
        goto done;
    {
        PyObject *length = PyDict_GetItemString(headers, "content-length");   /* borrowed */
        if (!length)
            goto defer;
        Py_ssize_t ln = PyUnicode_GET_LENGTH(length);
        const char *digits = (const char *)PyUnicode_1BYTE_DATA(length);
        if (ln == 0 || ln > 15)
            goto defer;
        Py_ssize_t value = 0;
        for (Py_ssize_t k = 0; k < ln; k++) {
            if (digits[k] < '0' || digits[k] > '9')
                goto defer;
            value = value * 10 + (digits[k] - '0');
        }
        bstart = i + 4;
        bend = bstart + value;
        if (bend > n)
            goto defer;                             /* a lying Content-Length */
        for (Py_ssize_t k = bend; k < n; k++)
            if (buf[k] != '\r' && buf[k] != '\n')
                goto defer;                         /* more than one record, or junk */
    }
    {
        PyObject *type = PyDict_GetItemString(headers, "warc-type");
        PyObject *rtype = type ? PyObject_CallMethod(type, "lower", NULL) : PyUnicode_FromString("");
        if (!rtype)
            goto done;
        result = Py_BuildValue("(ONnn)", headers, rtype, bstart, bend);
    }
    goto done;
defer:
    result = Py_NewRef(Py_NotImplemented);
done:
    if (headers == Py_NotImplemented && !result)
        result = Py_NewRef(Py_NotImplemented);
    Py_XDECREF(headers);
    return result;
}


/* gzip_records(data, pos, decompressobj, step, types) -> ([(offset in data, rtype, headers,
 * block | None), ...], new pos): warc.read_records' work for the run of gzip members at
 * data[pos:] that it would take in one piece, i.e. members that start with the gzip magic,
 * end (trailer checked by the decompressor) within `step` compressed bytes and within data,
 * and hold one record member_record accepts. It stops before the first other member (or the
 * end of data), which the Python reader then takes, damage reports included. The member's
 * end is first guessed at the next gzip magic (so the decompressor gets no bytes beyond it
 * in the common case); block is None unless types is None or holds the record's type. */
PyObject *gzip_records(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, step;
    PyObject *factory, *types, *items = NULL, *result = NULL;
    PyObject *s_decompress = NULL, *s_eof = NULL, *s_unused = NULL;
    if (!PyArg_ParseTuple(args, "y*nOnO", &view, &pos, &factory, &step, &types))
        return NULL;
    const unsigned char *data = view.buf;
    Py_ssize_t n = view.len;
    if (!(items = PyList_New(0)) || !(s_decompress = PyUnicode_InternFromString("decompress"))
        || !(s_eof = PyUnicode_InternFromString("eof")) || !(s_unused = PyUnicode_InternFromString("unused_data")))
        goto out;
    while (pos >= 0 && n - pos >= 18 && data[pos] == 0x1f && data[pos + 1] == 0x8b && data[pos + 2] == 0x08) {
        Py_ssize_t end = n;
        const unsigned char *q = data + pos + 10;
        while ((q = memchr(q, 0x1f, (size_t)(data + n - q))) != NULL) {
            if (q + 2 < data + n && q[1] == 0x8b && q[2] == 0x08) {
                end = q - data;
                break;
            }
            q++;
        }
        if (end - pos > step)
            break;                                   /* maybe larger than one read: Python */
        PyObject *d = PyObject_CallFunction(factory, "i", 31);
        if (!d)
            goto out;
        PyObject *chunk = PyMemoryView_FromMemory((char *)data + pos, end - pos, PyBUF_READ);
        PyObject *inflated = chunk ? PyObject_CallMethodOneArg(d, s_decompress, chunk) : NULL;
        Py_XDECREF(chunk);
        if (!inflated) {                             /* corrupt: the Python reader reports it */
            Py_DECREF(d);
            if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_MemoryError))
                goto out;
            PyErr_Clear();
            break;
        }
        PyObject *eof = PyObject_GetAttr(d, s_eof);
        int is_eof = eof ? PyObject_IsTrue(eof) : -1;
        Py_XDECREF(eof);
        PyObject *unused = is_eof == 1 ? PyObject_GetAttr(d, s_unused) : NULL;
        Py_DECREF(d);
        if (is_eof < 0 || (is_eof == 1 && !unused)) {
            Py_DECREF(inflated);
            goto out;
        }
        if (!is_eof || !PyBytes_Check(inflated)) {   /* not complete here (or a false magic) */
            Py_XDECREF(unused);
            Py_DECREF(inflated);
            break;
        }
        Py_ssize_t member_end = end - PyBytes_GET_SIZE(unused);
        Py_DECREF(unused);
        const unsigned char *ib = (const unsigned char *)PyBytes_AS_STRING(inflated);
        PyObject *rec = member_record(ib, PyBytes_GET_SIZE(inflated));
        if (!rec) {
            Py_DECREF(inflated);
            goto out;
        }
        if (rec == Py_NotImplemented) {
            Py_DECREF(rec);
            Py_DECREF(inflated);
            break;
        }
        PyObject *headers = PyTuple_GET_ITEM(rec, 0), *rtype = PyTuple_GET_ITEM(rec, 1);
        Py_ssize_t bstart = PyLong_AsSsize_t(PyTuple_GET_ITEM(rec, 2)), bend = PyLong_AsSsize_t(PyTuple_GET_ITEM(rec, 3));
        int want = types == Py_None ? 1 : PySequence_Contains(types, rtype);
        PyObject *block = want == 1 ? PyBytes_FromStringAndSize((const char *)ib + bstart, bend - bstart)
                                    : want == 0 ? Py_NewRef(Py_None) : NULL;
        PyObject *item = block ? Py_BuildValue("(nOON)", pos, rtype, headers, block) : NULL;
        Py_DECREF(rec);
        Py_DECREF(inflated);
        if (!item || PyList_Append(items, item) < 0) {
            Py_XDECREF(item);
            goto out;
        }
        Py_DECREF(item);
        pos = member_end;
    }
    result = Py_BuildValue("(On)", items, pos);
out:
    Py_XDECREF(items);
    Py_XDECREF(s_decompress);
    Py_XDECREF(s_eof);
    Py_XDECREF(s_unused);
    PyBuffer_Release(&view);
    return result;
}
