/* SPDX-License-Identifier: MIT */
/*
 * ringmaster._shmring_fast: the receive of ringmaster.shmring without
 * ctypes, for the binding's latency path (Receiver.recv(), recv_view()).
 *
 * One function, recv(fn, rx, buf, size, timeout_ns), which calls
 * shmring_recv(3) at address fn with the port rx and the buffer buf of size
 * bytes, and returns what it returned (a length, or a negative errno) as an
 * int.  The GIL is released around a call that may wait (timeout_ns != 0)
 * and kept around one that cannot.  A call costs about 80 ns where a ctypes
 * call costs 330; a reader that shares its CPU with other readers pays it
 * at every message, in every hand-over of the CPU.
 *
 * It does not link libshmring: the binding passes the address of the
 * shmring_recv it loaded through ctypes (the library found as its
 * documentation says), so that one process never holds two copies of the
 * library.  Every argument is the binding's own and trusted as such: the
 * module is private (the leading underscore), and wrong addresses crash as
 * they would through ctypes.  Optional: built when configure finds
 * Python.h; without it the binding calls through ctypes.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <sys/types.h>

typedef ssize_t (*recv_fn)(void *rx, void *buf, size_t size, int64_t timeout_ns);

static PyObject *fast_recv(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
        recv_fn fn;
        void *rx, *buf;
        size_t size;
        long long timeout_ns;
        ssize_t r;

        if (nargs != 5) {
                PyErr_SetString(PyExc_TypeError, "recv(fn, rx, buf, size, timeout_ns) takes 5 arguments");
                return NULL;
        }
        fn = (recv_fn) PyLong_AsVoidPtr(args[0]);
        rx = PyLong_AsVoidPtr(args[1]);
        buf = PyLong_AsVoidPtr(args[2]);
        size = PyLong_AsSize_t(args[3]);
        timeout_ns = PyLong_AsLongLong(args[4]);
        if (PyErr_Occurred())
                return NULL;
        if (!fn || !rx || !buf) {
                PyErr_SetString(PyExc_ValueError, "recv(): fn, rx and buf must not be NULL");
                return NULL;
        }
        if (timeout_ns == 0)
                r = fn(rx, buf, size, 0);
        else {
                Py_BEGIN_ALLOW_THREADS
                r = fn(rx, buf, size, (int64_t) timeout_ns);
                Py_END_ALLOW_THREADS
        }
        return PyLong_FromSsize_t(r);
}

static PyMethodDef fast_methods[] = {
        { "recv", (PyCFunction) (void (*)(void)) fast_recv, METH_FASTCALL,
          "recv(fn, rx, buf, size, timeout_ns) -> shmring_recv(rx, buf, size, timeout_ns) at address fn" },
        { NULL, NULL, 0, NULL },
};

static struct PyModuleDef fast_module = {
        PyModuleDef_HEAD_INIT,
        .m_name = "_shmring_fast",
        .m_doc = "ringmaster.shmring's receive without ctypes (private).",
        .m_size = 0,
        .m_methods = fast_methods,
};

PyMODINIT_FUNC PyInit__shmring_fast(void);

PyMODINIT_FUNC PyInit__shmring_fast(void) {
        return PyModuleDef_Init(&fast_module);
}
