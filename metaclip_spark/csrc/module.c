/* The module: its method table, init, and contains(). */
#include "speedups.h"

/* contains(haystack, needle) -> bool: `needle in haystack` for bytes-like objects, with
 * glibc's vectorised memmem (Python's bytes.__contains__ is a scalar search). */
static PyObject *contains(PyObject *self, PyObject *args) {
    Py_buffer hay, needle;
    if (!PyArg_ParseTuple(args, "y*y*", &hay, &needle))
        return NULL;
    int found = needle.len == 0 || memmem(hay.buf, (size_t)hay.len, needle.buf, (size_t)needle.len) != NULL;
    PyBuffer_Release(&hay);
    PyBuffer_Release(&needle);
    return PyBool_FromLong(found);
}

static PyMethodDef methods[] = {
    {"wat_scan", wat_scan, METH_O,
     "wat_scan(body) -> (page_url, [(src, alt), ...], base) | None | NotImplemented (use the Python path)"},
    {"warc_headers", warc_headers, METH_O,
     "warc_headers(raw) -> {lower-case name: value} | NotImplemented (use the Python path)"},
    {"warc_member", warc_member, METH_O,
     "warc_member(inflated member) -> (headers, warc-type, block start, block end) | NotImplemented"},
    {"gzip_records", gzip_records, METH_VARARGS,
     "gzip_records(data, pos, decompressobj, step, types) -> ([(offset, rtype, headers, block), ...], pos)"},
    {"contains", contains, METH_VARARGS, "contains(haystack, needle) -> needle in haystack (bytes)"},
    {"page_pairs", page_pairs, METH_VARARGS,
     "page_pairs(images, make_base, max_text, max_url, keep_dropped) -> (candidates, counts) | NotImplemented"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups",
                                    "Compiled shortcuts of metaclip_spark's hot paths (metaclip_spark/native.py).",
                                    -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) {
    if (wat_json_init() < 0 || page_rules_init() < 0)
        return NULL;
    return PyModule_Create(&module);
}
