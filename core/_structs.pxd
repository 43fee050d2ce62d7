# Small C data structures of the core, as inline functions so that every module
# that cimports them gets them compiled in (no call through a capsule).
#
# - heap_t: an indexed binary min-heap on a lexicographic (a, b, c) key; the
#   caller owns a `pos` array mapping entry id -> heap index (-1 when absent),
#   so any entry can be removed in O(log n).
# - rheap_t, rfifo_t: the READY agents of a pool, with lazily dropped entries.
# - rankset_t: a bitset with rank and select, for member-order strategies.

from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset


cdef inline int32_t grown(int32_t cap, int32_t need) noexcept nogil:
    """The capacity an array of `cap` items doubles to, to hold `need`."""
    cdef int32_t c = cap * 2 if cap else 8
    while c < need:
        c *= 2
    return c


cdef inline int grow(void** p, int32_t* cap, int32_t need, size_t item) noexcept nogil:
    """Amortised doubling of a malloc'd array; -1 when memory is exhausted."""
    cdef int32_t c
    cdef void* q
    if need <= cap[0]:
        return 0
    c = grown(cap[0], need)
    q = realloc(p[0], c * item)
    if q == NULL:
        return -1
    p[0] = q
    cap[0] = c
    return 0


cdef extern from "<stdlib.h>" nogil:
    int posix_memalign(void** memptr, size_t alignment, size_t size)


cdef inline int grow_aligned(void** p, int32_t* cap, int32_t n, int32_t need,
                             size_t item) noexcept nogil:
    """grow() for arrays of whole cache lines: 64-byte aligned, the first n items kept."""
    cdef int32_t c
    cdef void* q
    if need <= cap[0]:
        return 0
    c = grown(cap[0], need)
    if posix_memalign(&q, 64, c * item) != 0:
        return -1
    if n:
        memcpy(q, p[0], n * item)
    free(p[0])
    p[0] = q
    cap[0] = c
    return 0


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


cdef inline int h_push(heap_t* h, int64_t a, int64_t b, int64_t c, int32_t id,
                       int32_t* pos) noexcept nogil:
    if h.n == h.cap and grow(<void**> &h.e, &h.cap, h.n + 1, sizeof(hentry_t)) != 0:
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


cdef inline void h_heapify(heap_t* h, int32_t* pos) noexcept nogil:
    cdef int32_t i
    for i in range(h.n):
        pos[h.e[i].id] = i
    i = (h.n >> 1) - 1
    while i >= 0:
        h_sift_down(h, i, pos)
        i -= 1


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





# -- the READY agents of a pool, for the strategies that order by a key ------
#
# A plain (not indexed) min-heap whose entries go stale instead of being
# removed: an agent leaving READY would otherwise touch a position array in
# every pool it belongs to, one cache miss each. An entry is live while its
# agent is still in its pools with the same `epoch` (the count of times the
# agent became idle); the owner skips stale tops and compacts the heap when
# stale entries outnumber live ones.

cdef struct rentry_t:
    int64_t a
    int64_t b
    int32_t agent             # also the last tie-breaker
    uint32_t epoch

cdef struct rheap_t:
    rentry_t* e
    int32_t n
    int32_t cap


cdef inline bint r_less(const rentry_t* x, const rentry_t* y) noexcept nogil:
    if x.a != y.a:
        return x.a < y.a
    if x.b != y.b:
        return x.b < y.b
    return x.agent < y.agent


cdef inline void r_sift_down(rheap_t* h, int32_t i) noexcept nogil:
    cdef rentry_t x = h.e[i]
    cdef int32_t n = h.n
    cdef int32_t c
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and r_less(&h.e[c + 1], &h.e[c]):
            c += 1
        if not r_less(&h.e[c], &x):
            break
        h.e[i] = h.e[c]
        i = c
    h.e[i] = x


cdef inline int r_push(rheap_t* h, int64_t a, int64_t b, int32_t agent,
                       uint32_t epoch) noexcept nogil:
    cdef int32_t i, p
    cdef rentry_t x
    if h.n == h.cap and grow(<void**> &h.e, &h.cap, h.n + 1, sizeof(rentry_t)) != 0:
        return -1
    x.a = a
    x.b = b
    x.agent = agent
    x.epoch = epoch
    i = h.n
    h.n += 1
    while i > 0:
        p = (i - 1) >> 1
        if not r_less(&x, &h.e[p]):
            break
        h.e[i] = h.e[p]
        i = p
    h.e[i] = x
    return 0


cdef inline void r_pop(rheap_t* h) noexcept nogil:
    h.n -= 1
    if h.n > 0:
        h.e[0] = h.e[h.n]
        r_sift_down(h, 0)


cdef inline void r_heapify(rheap_t* h) noexcept nogil:
    cdef int32_t i = h.n // 2
    while i > 0:
        i -= 1
        r_sift_down(h, i)


# -- a set of positions with rank and select, for member-order strategies ----
#
# A bitset, plus a Fenwick tree over the popcount of each group of RS_GROUP
# 64-bit words: select walks the tree (O(log(n/512))) and then up to RS_GROUP
# words; a change updates the tree's log(n/512) levels (over single words it
# was three levels more on every change, for a few popcounts saved on a
# choice). A pool of 10,000 members takes 2 kB of bits and 132 bytes of
# tree, so it stays in cache. A set of up to RS_FLAT words (512 positions)
# keeps no tree: rank and select count the words' bits in turn.

cdef extern from *:
    int __builtin_popcountll(unsigned long long) nogil
    int __builtin_ctzll(unsigned long long) nogil


cdef struct rankset_t:
    uint64_t* bits
    fenwick_t words           # counts per group of RS_GROUP words (kept above RS_FLAT words)
    int32_t n_words
    int32_t cap_words         # words `bits` has room for: a power of two, or 0

cdef enum:
    RS_FLAT = 8
    RS_GROUP = 8              # words a tree entry counts (a power of two)
    RS_GROUP_SHIFT = 9        # log2(64 * RS_GROUP): position -> group
    RS_WORD_SHIFT = 3         # log2(RS_GROUP): word -> group


cdef inline void rs_set(rankset_t* s, int32_t i) noexcept nogil:
    s.bits[i >> 6] |= (<uint64_t> 1) << (i & 63)
    if s.cap_words > RS_FLAT:
        fw_add(&s.words, i >> RS_GROUP_SHIFT, 1)
    else:
        s.words.total += 1


cdef inline void rs_clear(rankset_t* s, int32_t i) noexcept nogil:
    s.bits[i >> 6] &= ~((<uint64_t> 1) << (i & 63))
    if s.cap_words > RS_FLAT:
        fw_add(&s.words, i >> RS_GROUP_SHIFT, -1)
    else:
        s.words.total -= 1


cdef inline int32_t rs_select(const rankset_t* s, int32_t k) noexcept nogil:
    """The k-th member of the set in increasing order (k from 0, k < total)."""
    cdef int32_t g = 0
    cdef int32_t step = s.words.cap
    cdef int32_t w, c
    cdef uint64_t x
    if s.cap_words > RS_FLAT:
        # The group that holds it: g groups lie before it.
        while step:
            if g + step <= s.words.cap and s.words.t[g + step] <= k:
                g += step
                k -= s.words.t[g]
            step >>= 1
    w = g * RS_GROUP
    c = __builtin_popcountll(s.bits[w])
    while c <= k:
        k -= c
        w += 1
        c = __builtin_popcountll(s.bits[w])
    # w words lie before the one that holds it; drop its k lowest bits.
    x = s.bits[w]
    while k:
        x &= x - 1
        k -= 1
    return (w << 6) + __builtin_ctzll(x)


cdef inline int32_t rs_rank(const rankset_t* s, int32_t i) noexcept nogil:
    """How many members are below position i."""
    cdef int32_t w = i >> 6
    cdef int32_t n = 0, j = 0
    cdef uint64_t below = ((<uint64_t> 1) << (i & 63)) - 1
    if w >= s.n_words:
        return s.words.total
    if s.cap_words > RS_FLAT:
        n = fw_prefix(&s.words, w >> RS_WORD_SHIFT)
        j = w & ~(RS_GROUP - 1)
    while j < w:
        n += __builtin_popcountll(s.bits[j])
        j += 1
    return n + __builtin_popcountll(s.bits[w] & below)


cdef inline int rs_resize(rankset_t* s, int32_t n_positions) noexcept nogil:
    """Make room for positions [0, n_positions), keeping the members."""
    cdef int32_t need = (n_positions + 63) >> 6
    cdef int32_t cap = s.cap_words if s.cap_words else 1
    cdef int32_t w, groups
    cdef uint64_t* bits
    cdef int32_t* t
    if need <= s.n_words:
        return 0
    if need > s.cap_words:
        while cap < need:
            cap *= 2
        bits = <uint64_t*> realloc(s.bits, cap * sizeof(uint64_t))
        if bits == NULL:
            return -1
        s.bits = bits
        memset(&s.bits[s.n_words], 0, (cap - s.n_words) * sizeof(uint64_t))
        groups = cap // RS_GROUP
        t = <int32_t*> realloc(s.words.t, (groups + 1) * sizeof(int32_t))
        if t == NULL:
            return -1
        memset(t, 0, (groups + 1) * sizeof(int32_t))
        s.words.t = t
        s.words.cap = groups
        s.words.total = 0
        s.cap_words = cap
        for w in range(s.n_words):
            if cap > RS_FLAT:
                fw_add(&s.words, w >> RS_WORD_SHIFT, __builtin_popcountll(s.bits[w]))
            else:
                s.words.total += __builtin_popcountll(s.bits[w])
    s.n_words = need
    return 0


# -- the READY agents of a LONGEST_IDLE pool ----------------------------------
#
# Its key, the time the agent became idle, only grows: a new entry belongs at
# the back, so a ring buffer in key order does what a heap would with O(1)
# pushes and pops. Entries go stale as in rheap_t. Equal times are ordered by
# agent id with an insertion step at the back (usually zero moves).

cdef struct rfifo_t:
    rentry_t* e
    int32_t head
    int32_t n
    int32_t cap               # a power of two, or 0


cdef inline rentry_t* f_at(rfifo_t* f, int32_t i) noexcept nogil:
    return &f.e[(f.head + i) & (f.cap - 1)]


cdef inline int f_contiguous(rfifo_t* f, int32_t cap) noexcept nogil:
    """Re-lay the ring out from index 0 in a buffer of `cap` entries."""
    cdef rentry_t* e = <rentry_t*> malloc(cap * sizeof(rentry_t))
    cdef int32_t i
    if e == NULL:
        return -1
    for i in range(f.n):
        e[i] = f_at(f, i)[0]
    free(f.e)
    f.e = e
    f.head = 0
    f.cap = cap
    return 0


cdef inline int f_push(rfifo_t* f, int64_t a, int32_t agent, uint32_t epoch,
                       bint keep_order) noexcept nogil:
    cdef int32_t i
    cdef rentry_t x
    if f.n == f.cap and f_contiguous(f, f.cap * 2 if f.cap else 4) != 0:
        return -1
    x.a = a
    x.b = 0
    x.agent = agent
    x.epoch = epoch
    i = f.n
    f.n += 1
    if keep_order:
        while i > 0 and r_less(&x, f_at(f, i - 1)):
            f_at(f, i)[0] = f_at(f, i - 1)[0]
            i -= 1
    f_at(f, i)[0] = x
    return 0


cdef inline void f_pop(rfifo_t* f) noexcept nogil:
    f.head = (f.head + 1) & (f.cap - 1)
    f.n -= 1


cdef inline void r_insertion_sort(rentry_t* e, int32_t n) noexcept nogil:
    """Sort a few entries (up to 64) in key order."""
    cdef rentry_t x
    cdef int32_t i, j
    for i in range(1, n):
        x = e[i]
        j = i
        while j > 0 and r_less(&x, &e[j - 1]):
            e[j] = e[j - 1]
            j -= 1
        e[j] = x


cdef extern from *:
    int __builtin_clzll(unsigned long long) nogil


cdef inline int r_radix_sort(rentry_t* e, int32_t n) noexcept nogil:
    """Sort entries by their first key `a` alone, stably, in passes of 11 bits
    over the bits in which the keys differ (O(n) a pass; three passes for idle
    times an hour apart). Equal keys keep their order: with entries loaded in
    agent order and `b` equal (a fifo pool's), this is the r_less order."""
    cdef rentry_t* tmp
    cdef rentry_t* src = e
    cdef rentry_t* dst
    cdef rentry_t* sw
    cdef int64_t lo, hi
    cdef uint64_t span
    cdef int32_t i, bits, shift
    cdef int32_t count[2048]
    cdef int32_t total, c
    if n <= 64:
        r_insertion_sort(e, n)
        return 0
    lo = e[0].a
    hi = e[0].a
    for i in range(1, n):
        if e[i].a < lo:
            lo = e[i].a
        if e[i].a > hi:
            hi = e[i].a
    span = <uint64_t> hi - <uint64_t> lo
    if span == 0:
        return 0
    bits = 64 - __builtin_clzll(span)
    tmp = <rentry_t*> malloc(n * sizeof(rentry_t))
    if tmp == NULL:
        return -1
    dst = tmp
    shift = 0
    while shift < bits:
        memset(count, 0, sizeof(count))
        for i in range(n):
            count[((<uint64_t> src[i].a - <uint64_t> lo) >> shift) & 2047] += 1
        total = 0
        for i in range(2048):
            c = count[i]
            count[i] = total
            total += c
        for i in range(n):
            c = <int32_t> (((<uint64_t> src[i].a - <uint64_t> lo) >> shift) & 2047)
            dst[count[c]] = src[i]
            count[c] += 1
        sw = src
        src = dst
        dst = sw
        shift += 11
    if src != e:
        memcpy(e, src, n * sizeof(rentry_t))
    free(tmp)
    return 0


cdef inline int f_sort(rfifo_t* f) noexcept nogil:
    """Put the entries in key order after a bulk load that skipped it. The load
    is in agent order (a pool's members, or every agent), and a fifo pool's
    entries differ in their idle time `a` alone (`b` is 0): a stable sort on `a`
    gives the r_less order."""
    if f.head != 0 and f_contiguous(f, f.cap) != 0:
        return -1
    return r_radix_sort(f.e, f.n)


# -- the READY agents of a FEWEST_CONTACTS or MOST_SKILLED pool ---------------
#
# Their first key (a handled count, minus a sum of levels) is a small integer
# that many agents share, and ties go to the longest idle: one fifo per key,
# in a window of consecutive keys, so that a push and the pop of a stale entry
# cost O(1) where a heap sifts through log(n) levels, each a cache miss in a
# large pool. Entries in a key's fifo are as in rfifo_t (a = idle time). A key
# more than KB_WIDTH from the others does not fit the window; the owner keeps
# such entries in a heap beside it, so no operation costs more than O(log n).
# The owner counts the entries.

cdef enum:
    KB_WIDTH = 1024
    # A pool of fewer members keeps its entries in the heap alone: a heap of
    # a few dozen entries is cheaper to push into than a fifo per key (fewer
    # cache lines, fewer mispredicted branches).
    KB_MIN_MEMBERS = 2048

cdef struct kbuck_t:
    rfifo_t* q                # q[(head + k) & (cap - 1)]: the fifo of key base + k
    int64_t base
    int32_t head
    int32_t n                 # keys in the window; slots outside it are empty
    int32_t cap               # slots: a power of two, or 0


cdef inline rfifo_t* kb_at(kbuck_t* b, int32_t k) noexcept nogil:
    """The fifo of key base + k (0 <= k < cap)."""
    return &b.q[(b.head + k) & (b.cap - 1)]


cdef inline int kb_room(kbuck_t* b, int32_t need) noexcept nogil:
    """At least `need` slots, the window's keys in order from slot 0 after a
    move; the empty slots keep their buffers for later keys."""
    cdef int32_t cap = b.cap if b.cap else 8, k
    cdef rfifo_t* q
    if need <= b.cap:
        return 0
    while cap < need:
        cap *= 2
    q = <rfifo_t*> malloc(cap * sizeof(rfifo_t))
    if q == NULL:
        return -1
    for k in range(b.cap):
        q[k] = kb_at(b, k)[0]
    memset(&q[b.cap], 0, (cap - b.cap) * sizeof(rfifo_t))
    free(b.q)
    b.q = q
    b.head = 0
    b.cap = cap
    return 0


cdef inline int kb_push(kbuck_t* b, int64_t key, int64_t idle, int32_t agent,
                        uint32_t epoch, bint keep_order) noexcept nogil:
    """0, or 1 when `key` does not fit the window (the caller keeps the entry
    elsewhere), or -1 when memory is exhausted."""
    cdef int64_t d
    if b.n and (key < b.base or key - b.base >= KB_WIDTH):
        # Out of reach: give up the empty keys at either end first.
        while b.n and kb_at(b, b.n - 1).n == 0:
            b.n -= 1
        while b.n and kb_at(b, 0).n == 0:
            b.head = (b.head + 1) & (b.cap - 1)
            b.base += 1
            b.n -= 1
    if b.n == 0:
        if kb_room(b, 1) != 0:
            return -1
        b.base = key
        b.n = 1
    elif key < b.base:
        d = b.base - key
        if b.n + d > KB_WIDTH:
            return 1
        if kb_room(b, b.n + <int32_t> d) != 0:
            return -1
        b.head = (b.head - <int32_t> d) & (b.cap - 1)
        b.base = key
        b.n += <int32_t> d
    elif key - b.base >= b.n:
        d = key - b.base + 1
        if d > KB_WIDTH:
            return 1
        if kb_room(b, <int32_t> d) != 0:
            return -1
        b.n = <int32_t> d
    if f_push(kb_at(b, <int32_t> (key - b.base)), idle, agent, epoch, keep_order) != 0:
        return -1
    return 0


cdef inline void kb_clear(kbuck_t* b) noexcept nogil:
    """No entries (the buffers are kept)."""
    cdef int32_t k
    for k in range(b.n):
        kb_at(b, k).n = 0
        kb_at(b, k).head = 0
    b.n = 0


cdef inline int kb_sort(kbuck_t* b) noexcept nogil:
    """Each key's fifo in idle order after a bulk load that skipped it (f_sort)."""
    cdef int32_t k
    for k in range(b.n):
        if f_sort(kb_at(b, k)) != 0:
            return -1
    return 0


cdef inline void kb_free(kbuck_t* b) noexcept nogil:
    cdef int32_t k
    for k in range(b.cap):
        free(b.q[k].e)
    free(b.q)
    b.q = NULL
    b.n = 0
    b.cap = 0
