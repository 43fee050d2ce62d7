# Small C data structures of the core, as inline functions so that every module
# that cimports them gets them compiled in (no call through a capsule).
#
# - heap_t: an indexed binary min-heap on a lexicographic (a, b, c) key; the
#   caller owns a `pos` array mapping entry id -> heap index (-1 when absent),
#   so any entry can be removed in O(log n).
# - fenwick_t: a Fenwick tree of 0/1 counts over positions 0..cap-1: rank and
#   select in O(log n), for the strategies that choose by member order.

from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memset


cdef struct hentry_t:
    int64_t a
    int64_t b
    int64_t c
    int32_t id

cdef struct heap_t:
    hentry_t* e
    int32_t n
    int32_t cap


cdef inline bint h_less(const hentry_t* x, const hentry_t* y) noexcept nogil:
    if x.a != y.a:
        return x.a < y.a
    if x.b != y.b:
        return x.b < y.b
    return x.c < y.c


cdef inline void h_sift_up(heap_t* h, int32_t i, int32_t* pos) noexcept nogil:
    cdef hentry_t x = h.e[i]
    cdef int32_t p
    while i > 0:
        p = (i - 1) >> 1
        if not h_less(&x, &h.e[p]):
            break
        h.e[i] = h.e[p]
        pos[h.e[i].id] = i
        i = p
    h.e[i] = x
    pos[x.id] = i


cdef inline void h_sift_down(heap_t* h, int32_t i, int32_t* pos) noexcept nogil:
    cdef hentry_t x = h.e[i]
    cdef int32_t n = h.n
    cdef int32_t c
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and h_less(&h.e[c + 1], &h.e[c]):
            c += 1
        if not h_less(&h.e[c], &x):
            break
        h.e[i] = h.e[c]
        pos[h.e[i].id] = i
        i = c
    h.e[i] = x
    pos[x.id] = i


cdef inline int h_reserve(heap_t* h, int32_t need) noexcept nogil:
    """Make room for `need` entries; -1 when memory is exhausted."""
    cdef int32_t cap
    cdef hentry_t* e
    if need <= h.cap:
        return 0
    cap = h.cap * 2 if h.cap else 16
    while cap < need:
        cap *= 2
    e = <hentry_t*> realloc(h.e, cap * sizeof(hentry_t))
    if e == NULL:
        return -1
    h.e = e
    h.cap = cap
    return 0


cdef inline int h_push(heap_t* h, int64_t a, int64_t b, int64_t c, int32_t id,
                       int32_t* pos) noexcept nogil:
    if h.n == h.cap and h_reserve(h, h.n + 1) != 0:
        return -1
    h.e[h.n].a = a
    h.e[h.n].b = b
    h.e[h.n].c = c
    h.e[h.n].id = id
    h.n += 1
    h_sift_up(h, h.n - 1, pos)
    return 0


cdef inline void h_remove(heap_t* h, int32_t i, int32_t* pos) noexcept nogil:
    cdef int32_t last = h.n - 1
    pos[h.e[i].id] = -1
    h.n = last
    if i == last:
        return
    h.e[i] = h.e[last]
    pos[h.e[i].id] = i
    if i > 0 and h_less(&h.e[i], &h.e[(i - 1) >> 1]):
        h_sift_up(h, i, pos)
    else:
        h_sift_down(h, i, pos)


cdef inline void h_free(heap_t* h) noexcept nogil:
    free(h.e)
    h.e = NULL
    h.n = 0
    h.cap = 0


cdef struct fenwick_t:
    int32_t* t         # 1-based tree, cap + 1 entries
    int32_t cap        # a power of two (or 0)
    int32_t total


cdef inline void fw_add(fenwick_t* f, int32_t i, int32_t d) noexcept nogil:
    i += 1
    f.total += d
    while i <= f.cap:
        f.t[i] += d
        i += i & -i


cdef inline int32_t fw_prefix(const fenwick_t* f, int32_t i) noexcept nogil:
    """How many positions in [0, i) are set."""
    cdef int32_t s = 0
    while i > 0:
        s += f.t[i]
        i -= i & -i
    return s


cdef inline int32_t fw_select(const fenwick_t* f, int32_t k) noexcept nogil:
    """The position of the k-th set position (k counted from 0; k < total)."""
    cdef int32_t pos = 0
    cdef int32_t step = f.cap
    while step:
        if pos + step <= f.cap and f.t[pos + step] <= k:
            pos += step
            k -= f.t[pos]
        step >>= 1
    return pos


cdef inline int fw_resize(fenwick_t* f, int32_t need, const unsigned char* present,
                          int32_t n) noexcept nogil:
    """Grow to hold `need` positions, rebuilt from the first n flags of `present`."""
    cdef int32_t cap = f.cap if f.cap else 16
    cdef int32_t i
    cdef int32_t* t
    if need <= f.cap:
        return 0
    while cap < need:
        cap *= 2
    t = <int32_t*> realloc(f.t, (cap + 1) * sizeof(int32_t))
    if t == NULL:
        return -1
    memset(t, 0, (cap + 1) * sizeof(int32_t))
    f.t = t
    f.cap = cap
    f.total = 0
    for i in range(n):
        if present[i]:
            fw_add(f, i, 1)
    return 0


cdef inline int grow(void** p, int32_t* cap, int32_t need, size_t item) noexcept nogil:
    """Amortised doubling of a malloc'd array; -1 when memory is exhausted."""
    cdef int32_t c
    cdef void* q
    if need <= cap[0]:
        return 0
    c = cap[0] * 2 if cap[0] else 8
    while c < need:
        c *= 2
    q = realloc(p[0], c * item)
    if q == NULL:
        return -1
    p[0] = q
    cap[0] = c
    return 0
