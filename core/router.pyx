# The routing core. docs/ROUTING.md is its contract; tests/reference_router.py
# is the slow, obvious model it is tested against, decision for decision.
#
# Layout: agents, queues, pools, routes, contacts and timers are C arrays of
# structs indexed by dense ints. Every event method exists twice: `c_*` is the
# C-level API (returns 0 or an err_t, touches no Python object) and the `def`
# of the same name is the Python API (validates, calls c_*, raises).

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.math cimport floor
from libc.stdlib cimport free, malloc, realloc

from libc.string cimport memcpy, memmove, memset

from agner.core._structs cimport (
    f_at, f_pop, f_push, f_sort, grow, grow_aligned, h_free, posix_memalign, h_heapify, h_less, h_push, h_remove, heap_t,
    hentry_t, KB_MIN_MEMBERS, kb_at, kb_clear, kb_free, kb_push, kb_sort, kbuck_t,
    r_heapify, r_less, r_pop, r_push, rfifo_t,
    rentry_t, rs_clear, rs_rank, rs_resize, rs_select, rs_set,
)
from agner.core._types cimport (
    AS_BUSY, AS_LOGGED_OUT, AS_NOT_READY, AS_READY, AS_RESERVED, AS_WRAP_UP,
    CH_CALLBACK, CH_EMAIL, CH_VOICE, CF_CALLBACK, CF_EXPIRED, CF_OWN_PRIORITY, CS_ACTIVE,
    CS_FREE, CS_OFFERED, CS_WAITING,
    DK_CALLBACK, DK_OFFER, DK_OVERFLOW, DK_REJECT, DK_RELEASE, DK_RONA, DK_TIMEOUT, DK_VOICEMAIL,
    DK_WRAP_UP_END, E_CONFIG, E_INVALID, E_NOMEM, E_OK, E_TIME, E_UNKNOWN_AGENT,
    E_UNKNOWN_CONTACT, E_UNKNOWN_QUEUE, N_AGENT_STATES, NO_PENDING, OV_CALLBACK, OV_NONE,
    N_STRATEGIES, OV_QUEUE, OV_VOICEMAIL, QUEUE_PRIORITY, REASON_RONA, ST_FEWEST_CONTACTS,
    ST_LEAST_TALK_TIME, ST_LINEAR, ST_LONGEST_IDLE, ST_MOST_SKILLED, ST_RANDOM,
    ST_ROUND_ROBIN, TK_MAX_WAIT, TK_NONE, TK_PREFERRED, TK_RING, TK_STEP, TK_WRAP_UP,
    CF_PREFERRED, MAX_PREFERRED, ALL_CHANNELS, N_CHANNELS, TK_WRAP_CH, MULTI_MARK, contact_id_t,
    decision_t, slot_of, time_us_t,
)

from time import perf_counter_ns

from msgspec import DecodeError as msgspec_DecodeError
from msgspec import msgpack as msgspec_msgpack

from agner.core._api import (
    AgentState,
    HookContact,
    AgentStats,
    Channel,
    ConfigError,
    ContactState,
    Decision,
    DecisionKind,
    InvalidTransition,
    QueueStats,
    Strategy,
    TimeError,
    UnknownAgent,
    UnknownContact,
    UnknownQueue,
    make_agent_stats,
    make_queue_stats,
)

MAX_SKILL = 65535
MAX_LEVEL = 1000
MAX_PRIORITY = 1_000_000
#: Largest wait one priority level may be worth (about 12.7 days), and the
#: default: priority then decides before any realistic wait does.
MAX_PRIORITY_WEIGHT_US = 1 << 40
MAX_COUNT = (1 << 31) - 1
#: Largest time or duration in microseconds (about 146,000 years): the sum of
#: two never overflows int64.
MAX_TIME_US = (1 << 62) - 1
if sizeof(pool_t) != 192 or sizeof(agent_t) != 128:
    raise ImportError("agner.core.router: pool_t must be 3 cache lines, agent_t 2")

#: The format of Router.snapshot(); restore() reads this version only.
SNAPSHOT_VERSION = 9
cdef time_us_t _MAX_TIME = <time_us_t> 4611686018427387903


cdef inline int64_t _id(object x) except? -2:
    # An id of any size: those outside int64 are just as unknown as -1.
    try:
        return x
    except OverflowError:
        return -1


cdef inline time_us_t _time(object x) except? -2:
    # Out-of-range times go down as -1, which the C-level API refuses (E_CONFIG)
    # after its id checks, as docs/ROUTING.md orders them.
    try:
        return x
    except OverflowError:
        return -1

cdef tuple _KINDS = (None,) + tuple(DecisionKind)
cdef tuple _AGENT_STATES = tuple(AgentState)
cdef tuple _CONTACT_STATES = tuple(ContactState)
cdef object _tuple_new = tuple.__new__


cdef inline bint _heap_strategy(int32_t s) noexcept nogil:
    return s == ST_LONGEST_IDLE or s == ST_FEWEST_CONTACTS or s == ST_LEAST_TALK_TIME \
        or s == ST_MOST_SKILLED


cdef extern from *:
    void __builtin_prefetch(const void* addr, int rw, int locality) nogil


cdef enum:
    PK_CHANNEL = 3            # pool_kind: the pool's channel, these bits
    PK_RANKED = 4             # pool_kind: a bitset pool


cdef inline uint8_t _pool_kind(const pool_t* p) noexcept nogil:
    return <uint8_t> (p.channel | (0 if _heap_strategy(p.strategy) else PK_RANKED))


cdef inline bint _keyed(int32_t s) noexcept nogil:
    # The heap strategies whose first key is a small integer: a fifo per key
    # (pool_t.keyed, kbuck_t), the heap for keys out of its reach.
    return s == ST_FEWEST_CONTACTS or s == ST_MOST_SKILLED


cdef inline int32_t _heap_key(int32_t s) noexcept nogil:
    # A heap pool's first key, as an index: 0 the agent's handled count
    # (FEWEST_CONTACTS), 1 its talk time (LEAST_TALK_TIME), 2 minus its score
    # (MOST_SKILLED). The second is its idle time, the last its id.
    return s - ST_FEWEST_CONTACTS


cdef inline int32_t _memb_rank(int32_t s) noexcept nogil:
    # Where a membership of a pool of strategy s goes in an agent's list: the
    # heap and fifo pools first, the bitset pools after them, so that the loops
    # over the list switch kind as few times as possible (each switch is a
    # mispredicted branch); the keyed ones (FEWEST_CONTACTS, MOST_SKILLED) next
    # to each other.
    if s == ST_ROUND_ROBIN:
        return 4
    if s == ST_FEWEST_CONTACTS:
        return 1
    if s == ST_MOST_SKILLED:
        return 2
    if s == ST_LEAST_TALK_TIME:
        return 3
    return s


cdef inline int32_t _chan_ord(int32_t ch) noexcept nogil:
    # A multi-channel agent's memberships are grouped by channel in this order:
    # chat, e-mail, callback, voice. Its pushes after a chat or e-mail (the
    # channels that open again when it takes or finishes one) walk the first
    # groups and stop at voice, whose queues are most of its pools; in the
    # other walks the channel test per membership runs in long runs (predicted).
    return (ch + 3) & 3


cdef inline int32_t _ord_last(int32_t mask) noexcept nogil:
    # The last channel group (_chan_ord) a walk over the channels in `mask`
    # needs to visit: memberships past it are of channels not in the mask.
    if mask & (1 << CH_VOICE):
        return 3
    if mask & (1 << CH_CALLBACK):
        return 2
    if mask & (1 << CH_EMAIL):
        return 1
    return 0


cdef inline bint _meets(const skill_t* have, int32_t n_have, const skill_t* req,
                        int32_t n_req, int64_t* score) noexcept nogil:
    """Whether sorted skills `have` meet sorted requirement `req`; score = sum of levels."""
    cdef int32_t i = 0, j = 0
    score[0] = 0
    while j < n_req:
        while i < n_have and have[i].skill < req[j].skill:
            i += 1
        if i == n_have or have[i].skill != req[j].skill or have[i].level < req[j].level:
            return False
        score[0] += have[i].level
        j += 1
    return True


cdef inline int32_t _first_met(const skill_t* have, int32_t n_have, const skill_t* req,
                               const int32_t* req_off, int32_t n_conj,
                               int64_t* score) noexcept nogil:
    """The first of the conjunctions (req[req_off[k]:req_off[k + 1]]) that skills
    `have` meet, or -1; score = the best sum of levels over every one they meet."""
    cdef int32_t k, first = -1
    cdef int64_t s
    score[0] = -1
    for k in range(n_conj):
        if _meets(have, n_have, &req[req_off[k]], req_off[k + 1] - req_off[k], &s):
            if first < 0:
                first = k
            if s > score[0]:
                score[0] = s
    return first


cdef inline bint _meets_pool(const skill_t* have, int32_t n_have, const pool_t* p,
                             int64_t* score) noexcept nogil:
    """Whether the first of the pool's conjunctions that skills `have` meet is the
    pool's step; score = the best sum over every conjunction they meet."""
    return _first_met(have, n_have, p.req, p.req_off, p.n_conj, score) == p.step


cdef inline int32_t _upper_bound(const int32_t* a, int32_t n, int32_t x) noexcept nogil:
    """First index whose value is greater than x (a is increasing)."""
    cdef int32_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline int _push_int(int32_t** arr, int32_t* n, int32_t* cap, int32_t v) noexcept nogil:
    if grow(<void**> arr, cap, n[0] + 1, sizeof(int32_t)) != 0:
        return -1
    arr[0][n[0]] = v
    n[0] += 1
    return 0


def _requirement(mapping, str what):
    """Validate a skill -> level mapping; return it as a sorted tuple of pairs."""
    if mapping is None:
        return ()
    try:
        items = sorted((int(k), int(v)) for k, v in mapping.items())
    except (AttributeError, TypeError, ValueError) as exc:
        raise ConfigError(f"{what} must map int skills to int levels: {exc}") from None
    for skill, level in items:
        if not 0 <= skill <= MAX_SKILL:
            raise ConfigError(f"{what}: skill {skill} is outside [0, {MAX_SKILL}]")
        if not 1 <= level <= MAX_LEVEL:
            raise ConfigError(f"{what}: level {level} of skill {skill} is outside [1, {MAX_LEVEL}]")
    return tuple(items)


cdef skill_t* _skill_array(tuple pairs) except NULL:
    # A validated ((skill, level), ...) tuple as a C array; the caller frees it.
    cdef int32_t i, n = len(pairs)
    cdef skill_t* s = <skill_t*> malloc((n if n else 1) * sizeof(skill_t))
    if s == NULL:
        raise MemoryError()
    for i in range(n):
        s[i].skill = pairs[i][0]
        s[i].level = pairs[i][1]
    return s


def _merge(tuple conj, tuple extra):
    """A conjunction with another added to it (the higher minimum wins per skill)."""
    merged = dict(conj)
    for skill, level in extra:
        if merged.get(skill, 0) < level:
            merged[skill] = level
    return tuple(sorted(merged.items()))


cdef bytes _raw(const void* p, Py_ssize_t nbytes):
    # A copy of n bytes of C memory (empty when there is none).
    if nbytes <= 0 or p == NULL:
        return b""
    return (<const char*> p)[:nbytes]


cdef void* _copy_out(bytes data, Py_ssize_t cap_bytes) except NULL:
    # A fresh malloc'ed block of at least cap_bytes (and 1) holding `data`.
    cdef Py_ssize_t n = len(data)
    cdef void* p = malloc(max(cap_bytes, n, 1))
    if p == NULL:
        raise MemoryError()
    if n:
        memcpy(p, <const char*> data, n)
    return p


def _tuples(x):
    """Lists back into tuples, all the way down (msgpack gives lists)."""
    if isinstance(x, list):
        return tuple(_tuples(y) for y in x)
    return x


cdef int32_t _pow2(int32_t n) noexcept:
    cdef int32_t c = 16
    while c < n:
        c *= 2
    return c


def _disjunction(conjs):
    """The canonical form of "meets one of conjs": distinct and sorted, so that
    routes whose pools admit the same agents get the same `agents_key`."""
    return tuple(sorted(set(conjs)))


_DEFAULT_BLOCKS = (15, 9, 9, 15)     # VOICE, CHAT, EMAIL, CALLBACK (bit = Channel)


def _channel_rules(capacity, blocks):
    """Validated (capacities, blocking masks) per channel of a multi-channel agent."""
    caps = [0] * 4
    masks = list(_DEFAULT_BLOCKS)
    try:
        for key, n in dict(capacity).items():
            x = int(Channel(key))
            n = int(n)
            if not 0 <= n <= 15:
                raise ConfigError(f"capacity of {Channel(x).name} must be in [0, 15], got {n}")
            caps[x] = n
        for key, closed in dict(blocks or {}).items():
            m = 0
            for y in closed:
                m |= 1 << int(Channel(y))
            masks[int(Channel(key))] = m
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"capacity and blocks map channels to counts and channels: {exc}") from None
    if not any(caps):
        raise ConfigError("capacity: at least one channel needs a capacity > 0")
    return caps, masks


def _duration(value, str what):
    value = int(value)
    if not 0 <= value <= MAX_TIME_US:
        raise ConfigError(f"{what} must be in [0, 2**62) microseconds, got {value}")
    return value


def _priority(value):
    value = int(value)
    if not -MAX_PRIORITY <= value <= MAX_PRIORITY:
        raise ConfigError(f"priority {value} is outside [-{MAX_PRIORITY}, {MAX_PRIORITY}]")
    return value


cdef _check_len(bytes b, Py_ssize_t n, Py_ssize_t size, str what):
    if len(b) != n * size:
        raise ValueError(f"{what}: {len(b)} bytes where {n} x {size} were expected")


cdef object _restore(Router r, dict st):
    # The inverse of Router.snapshot: every array copied out with its capacity,
    # the pointers inside the structs set anew.
    cdef int32_t i, j, cap, caps, n
    cdef void* block
    cdef queue_t* q
    cdef pool_t* p
    cdef route_t* rt
    cdef rfifo_t* f
    cdef const rentry_t* e
    (now, rng, seq, timer_seq, na, nq, npools, nroutes, nchains, nslots, nfree, ntslots,
     nftimers, ndec) = st["scalars"]
    _check_len(st["agents"], na, sizeof(agent_t), "agents")
    _check_len(st["chans"], na, sizeof(chan_t), "chans")
    _check_len(st["contacts"], nslots, sizeof(contact_t), "contacts")
    _check_len(st["timers"], ntslots, sizeof(timer_t), "timers")
    if len(st["queues"]) != nq or len(st["pools"]) != npools or len(st["routes"]) != nroutes \
            or len(st["skills"]) != na or len(st["pref"]) != na:
        raise ValueError("inconsistent counts")
    r.now, r.rng, r.seq, r.timer_seq = now, rng, seq, timer_seq
    cap = max(na, 1)
    if posix_memalign(&block, 64, cap * sizeof(agent_t)) != 0:
        raise MemoryError()
    if na:
        memcpy(block, <const char*> st["agents"], na * sizeof(agent_t))
    r.agents = <agent_t*> block
    r.cap_agents = cap
    r.n_agents_ = na
    r.chans = <chan_t*> _copy_out(st["chans"], cap * sizeof(chan_t))
    r.ready_epoch = <uint32_t*> _copy_out(st["ready_epoch"], cap * sizeof(uint32_t))
    r.memb_off = <int32_t*> _copy_out(st["memb_off"], (cap + 1) * sizeof(int32_t))
    if na == 0:
        r.memb_off[0] = 0
    _check_len(st["memb_warm"], na, sizeof(int32_t), "memb_warm")
    r.memb_warm = <int32_t*> _copy_out(st["memb_warm"], cap * sizeof(int32_t))
    r.memb = <member_t*> _copy_out(st["memb"], 0)
    r.cap_memb = len(st["memb"]) // sizeof(member_t)
    r.agent_skills = <skills_t*> malloc(cap * sizeof(skills_t))
    r.pref_heap = <heap_t*> malloc(cap * sizeof(heap_t))
    if r.agent_skills == NULL or r.pref_heap == NULL:
        raise MemoryError()
    memset(r.agent_skills, 0, cap * sizeof(skills_t))   # freed as they are, if we fail
    memset(r.pref_heap, 0, cap * sizeof(heap_t))
    for i in range(na):
        r.agent_skills[i].s = <skill_t*> _copy_out(st["skills"][i], 0)
        r.agent_skills[i].n = len(st["skills"][i]) // sizeof(skill_t)
        n = len(st["pref"][i]) // sizeof(hentry_t)
        r.pref_heap[i].e = <hentry_t*> _copy_out(st["pref"][i], 0)
        r.pref_heap[i].n = n
        r.pref_heap[i].cap = n
    caps = max(nslots, 1)
    r.contacts = <contact_t*> _copy_out(st["contacts"], caps * sizeof(contact_t))
    r.contact_pos = <int32_t*> _copy_out(st["contact_pos"], caps * sizeof(int32_t))
    r.pref_pos = <int32_t*> _copy_out(b"", caps * sizeof(int32_t))
    r.free_slots = <int32_t*> _copy_out(st["free_slots"], caps * sizeof(int32_t))
    r.n_slots, r.cap_slots, r.n_free = nslots, caps, nfree
    r.timers = <timer_t*> _copy_out(st["timers"], max(ntslots, 1) * sizeof(timer_t))
    r.timer_pos = <int32_t*> _copy_out(st["timer_pos"], max(ntslots, 1) * sizeof(int32_t))
    r.n_timer_slots, r.cap_timer_slots = ntslots, max(ntslots, 1)
    n = max(4 * caps + cap, nftimers, 1)
    r.free_timers = <int32_t*> _copy_out(st["free_timers"], n * sizeof(int32_t))
    r.n_free_timers, r.cap_free_timers = nftimers, n
    n = len(st["timer_heap"]) // sizeof(hentry_t)
    r.timer_heap.e = <hentry_t*> _copy_out(st["timer_heap"], 0)
    r.timer_heap.n = n
    r.timer_heap.cap = n
    r.dec = <decision_t*> _copy_out(st["dec"], max(ndec, 1) * sizeof(decision_t))
    r.n_dec, r.cap_dec = ndec, max(ndec, 1)
    r.chains = <int32_t*> _copy_out(st["chains"], max(nchains, 1) * sizeof(int32_t))
    r.n_chains, r.cap_chains = nchains, max(nchains, 1)
    r.queues = <queue_t*> malloc(max(nq, 1) * sizeof(queue_t))
    if r.queues == NULL:
        raise MemoryError()
    for i in range(nq):
        raw, routes, after = st["queues"][i]
        _check_len(raw, 1, sizeof(queue_t), "queue")
        q = &r.queues[i]
        memcpy(q, <const char*> raw, sizeof(queue_t))
        q.routes = <int32_t*> _copy_out(routes, 0)
        q.cap_routes = q.n_routes
        q.step_after = <time_us_t*> _copy_out(after, 0)
        q.hooked = 0                # hooks are Python objects: set them again
        r.n_queues_ = i + 1
    r.cap_queues = max(nq, 1)
    if grow_aligned(<void**> &r.pools, &r.cap_pools, 0, max(npools, 1), sizeof(pool_t)) != 0:
        raise MemoryError()
    for i in range(npools):
        raw, members, routes, req, req_off, ready, idle, bits, words = st["pools"][i]
        _check_len(raw, 1, sizeof(pool_t), "pool")
        p = &r.pools[i]
        memcpy(p, <const char*> raw, sizeof(pool_t))
        p.member_agent = <int32_t*> _copy_out(members, 0)
        p.cap_members = p.n_members
        p.routes = <int32_t*> _copy_out(routes, 0)
        p.cap_routes = p.n_routes
        p.req = <skill_t*> _copy_out(req, 0)
        p.req_off = <int32_t*> _copy_out(req_off, 0)
        n = len(ready) // sizeof(rentry_t)
        memset(&p.keyed, 0, sizeof(kbuck_t))
        p.n_keyed = 0
        if p.use_keyed:
            # Heap entries (_ready_blob): each back in the fifo of its key.
            p.ready.e = NULL
            p.ready.n = 0
            p.ready.cap = 0
            e = <const rentry_t*> <const char*> ready
            for j in range(n):
                if r._keyed_put(p, e[j].a, e[j].b, e[j].agent, e[j].epoch, True) != 0:
                    raise MemoryError()
        else:
            p.ready.e = <rentry_t*> _copy_out(ready, 0)
            p.ready.n = n
            p.ready.cap = n
        f = &p.idle
        n = len(idle) // sizeof(rentry_t)
        f.cap = _pow2(n)
        f.e = <rentry_t*> _copy_out(idle, f.cap * sizeof(rentry_t))
        f.head = 0
        f.n = n
        p.order.bits = <uint64_t*> _copy_out(bits, 0) if bits else NULL
        p.order.words.t = <int32_t*> _copy_out(words, 0) if words else NULL
        r.n_pools = i + 1
    r.routes = <route_t*> malloc(max(nroutes, 1) * sizeof(route_t))
    if r.routes == NULL:
        raise MemoryError()
    for i in range(nroutes):
        raw, waiting, pools = st["routes"][i]
        _check_len(raw, 1, sizeof(route_t), "route")
        rt = &r.routes[i]
        memcpy(rt, <const char*> raw, sizeof(route_t))
        rt.pools = NULL
        _check_len(pools, rt.n_pools, sizeof(int32_t), "route pools")
        rt.pools = <int32_t*> _copy_out(pools, 0)
        n = len(waiting) // sizeof(hentry_t)
        rt.waiting.e = <hentry_t*> _copy_out(waiting, 0)
        rt.waiting.n = n
        rt.waiting.cap = n
        r.n_routes = i + 1
    r.cap_routes = max(nroutes, 1)
    _check_len(st["pool_ready"], npools, sizeof(int32_t), "pool_ready")
    r.pool_ready = <int32_t*> _copy_out(st["pool_ready"], max(npools, 1) * sizeof(int32_t))
    r.cap_pool_ready = max(npools, 1)
    _check_len(st["pool_cold"], npools, sizeof(uint8_t), "pool_cold")
    r.pool_cold = <uint8_t*> _copy_out(st["pool_cold"], max(npools, 1) * sizeof(uint8_t))
    r.cap_pool_cold = max(npools, 1)
    r.pool_kind = <uint8_t*> _copy_out(b"", max(npools, 1) * sizeof(uint8_t))
    r.cap_pool_kind = max(npools, 1)
    for i in range(npools):
        r.pool_kind[i] = _pool_kind(&r.pools[i])
    r.pool_waiting = <int32_t*> _copy_out(b"", max(npools, 1) * sizeof(int32_t))
    memset(r.pool_waiting, 0, max(npools, 1) * sizeof(int32_t))
    r.cap_pool_waiting = max(npools, 1)
    for i in range(nroutes):
        r._count_waiting(&r.routes[i], r.routes[i].waiting.n)
    r._pool_index = {_tuples(k): v for k, v in st["pool_index"]}
    r._route_index = {_tuples(k): v for k, v in st["route_index"]}
    r._agents_keys = {_tuples(k): v for k, v in st["agents_keys"]}
    r._chain_index = {_tuples(k): v for k, v in st["chain_index"]}
    r._queue_steps = [_tuples(x) for x in st["queue_steps"]]
    return r


cdef class Router:
    """The routing core: agents, queues and contacts, with the decisions of an ACD.

    The router never reads a clock: every event method takes ``now``, an ``int``
    of microseconds that never goes backwards. It offers each waiting contact to
    the best eligible idle agent (by its queue's strategy) and each agent that
    becomes ready to the best waiting contact it can serve (by priority, then
    arrival). What it decides on its own (offers, ring-no-answer, wrap-up ends)
    is collected for :meth:`take_decisions`. docs/ROUTING.md is the full contract.

    Every event method first fires the timers due at or before ``now`` (as
    :meth:`advance` does). A call that raises leaves the router as it was, apart
    from those timers. Errors: :class:`UnknownAgent`, :class:`UnknownQueue`,
    :class:`UnknownContact`, :class:`InvalidTransition`, :class:`ConfigError`,
    :class:`TimeError`, all subclasses of :class:`RouterError`.

    Args:
        seed: seeds the generator of the RANDOM strategy (SplitMix64).
    """

    def __cinit__(self):
        self._pool_index = {}
        self._route_index = {}
        self._agents_keys = {}
        self._chain_index = {}
        self._hooks = {}
        self._queue_steps = []

    def __init__(self, seed: int = 0):
        self.rng = <uint64_t> (int(seed) & 0xFFFFFFFFFFFFFFFF)

    def __dealloc__(self):
        cdef int32_t i
        for i in range(self.n_agents_):
            free(self.agent_skills[i].s)
        free(self.agents)
        free(self.chans)
        free(self.agent_skills)
        free(self.memb)
        free(self.memb_off)
        free(self.memb_warm)
        free(self.ready_epoch)
        for i in range(self.n_pools):
            free(self.pools[i].req)
            free(self.pools[i].req_off)
            free(self.pools[i].member_agent)
            free(self.pools[i].routes)
            free(self.pools[i].ready.e)
            free(self.pools[i].idle.e)
            kb_free(&self.pools[i].keyed)
            free(self.pools[i].order.bits)
            free(self.pools[i].order.words.t)
        free(self.pools)
        free(self.pool_waiting)
        free(self.pool_ready)
        free(self.pool_cold)
        free(self.pool_kind)
        for i in range(self.n_routes):
            h_free(&self.routes[i].waiting)
            free(self.routes[i].pools)
        free(self.routes)
        for i in range(self.n_queues_):
            free(self.queues[i].routes)
            free(self.queues[i].step_after)
        free(self.queues)
        free(self.chains)
        for i in range(self.n_agents_):
            h_free(&self.pref_heap[i])
        free(self.pref_heap)
        free(self.pref_pos)
        free(self.contacts)
        free(self.contact_pos)
        free(self.free_slots)
        free(self.timers)
        free(self.timer_pos)
        free(self.free_timers)
        h_free(&self.timer_heap)
        free(self.dec)

    # ------------------------------------------------------------------ config

    cdef int c_add_agent(self, const skill_t* skills, int32_t n, time_us_t wrap_up_us,
                         int32_t tenant, const uint8_t* cap, const uint8_t* blocks) noexcept:
        # cap, blocks: a multi-channel agent's capacities and blocking rules per
        # channel, or NULL for the classic one-contact agent.
        cdef int32_t aid = self.n_agents_, p, cap_, m, x
        cdef chan_t* ch
        cdef agent_t* a
        cdef void* block
        cdef int64_t score
        cdef skill_t* copy
        if aid == self.cap_agents:
            # Aligned, so that each agent is exactly two cache lines.
            cap_ = self.cap_agents * 2 if self.cap_agents else 64
            if posix_memalign(&block, 64, cap_ * sizeof(agent_t)) != 0:
                return E_NOMEM
            if self.agents != NULL:
                memcpy(block, self.agents, aid * sizeof(agent_t))
                free(self.agents)
            self.agents = <agent_t*> block
            block = realloc(self.chans, cap_ * sizeof(chan_t))
            if block == NULL:
                return E_NOMEM
            self.chans = <chan_t*> block
            block = realloc(self.agent_skills, cap_ * sizeof(skills_t))
            if block == NULL:
                return E_NOMEM
            self.agent_skills = <skills_t*> block
            block = realloc(self.ready_epoch, cap_ * sizeof(uint32_t))
            if block == NULL:
                return E_NOMEM
            self.ready_epoch = <uint32_t*> block
            block = realloc(self.pref_heap, cap_ * sizeof(heap_t))
            if block == NULL:
                return E_NOMEM
            self.pref_heap = <heap_t*> block
            block = realloc(self.memb_off, (cap_ + 1) * sizeof(int32_t))
            if block == NULL:
                return E_NOMEM
            self.memb_off = <int32_t*> block
            block = realloc(self.memb_warm, cap_ * sizeof(int32_t))
            if block == NULL:
                return E_NOMEM
            self.memb_warm = <int32_t*> block
            if aid == 0:
                self.memb_off[0] = 0
            self.cap_agents = cap_
        copy = <skill_t*> malloc((n if n else 1) * sizeof(skill_t))
        if copy == NULL:
            return E_NOMEM
        memcpy(copy, skills, n * sizeof(skill_t))
        self.agent_skills[aid].s = copy
        self.agent_skills[aid].n = n
        self.ready_epoch[aid] = 0
        memset(&self.pref_heap[aid], 0, sizeof(heap_t))
        ch = &self.chans[aid]
        memset(ch, 0, sizeof(chan_t))
        ch.wrap_head = -1
        ch.presence = AS_LOGGED_OUT
        for x in range(N_CHANNELS):
            ch.cap[x] = cap[x] if cap != NULL else 1
            ch.blocks[x] = blocks[x] if blocks != NULL else ALL_CHANNELS
        a = &self.agents[aid]
        memset(a, 0, sizeof(agent_t))
        a.multi = cap != NULL
        a.state = AS_LOGGED_OUT
        a.pending = NO_PENDING
        a.contact = -1
        a.timer = -1
        a.state_since = self.now
        a.wrap_up_us = wrap_up_us
        a.tenant = tenant
        a.ring_next = -1
        self.memb_off[aid + 1] = self.memb_off[aid]
        self.memb_warm[aid] = 0
        self.n_agents_ += 1
        # The newest agent's memberships go at the end of the CSR array.
        for p in range(self.n_pools):
            if self.pools[p].tenant == tenant and ch.cap[self.pools[p].channel] > 0 \
                    and _meets_pool(skills, n, &self.pools[p], &score):
                m = self._pool_add_member(p, aid, score, True)
                if m < 0 or grow(<void**> &self.memb, &self.cap_memb,
                                 self.memb_off[aid + 1] + 1, sizeof(member_t)) != 0:
                    return E_NOMEM
                self._memb_set(&self.memb[self.memb_off[aid + 1]], p, m, score)
                self.memb_off[aid + 1] += 1
        self._memb_order(aid)
        return aid

    cdef inline int32_t _memb_key(self, int32_t agent, int32_t pid) noexcept:
        # Where a membership goes in the warm part of an agent's list: by
        # strategy (the pools one loop pushes into then take the same branch run
        # after run; _memb_rank), and for a multi-channel agent by channel
        # first (_chan_ord), so that a walk over some channels stops early.
        cdef int32_t k = _memb_rank(self.pools[pid].strategy)
        if self.agents[agent].multi:
            k += _chan_ord(self.pools[pid].channel) * N_STRATEGIES
        return k

    cdef inline void _memb_set(self, member_t* mb, int32_t pid, int32_t m,
                               int64_t score) noexcept:
        # The agent's side of a membership: member m of pool pid.
        mb.pool = pid
        if self.pool_kind[pid] & PK_RANKED:
            mb.arg = m
        elif self.pools[pid].strategy == ST_MOST_SKILLED:
            mb.arg = <int32_t> score
        else:
            mb.arg = 0

    cdef inline int32_t _memb_end(self, int32_t agent) noexcept:
        # The end of the agent's memberships: its free entries are at the end
        # of its part of the array (O(room)).
        cdef int32_t off = self.memb_off[agent], end = self.memb_off[agent + 1]
        while end > off and self.memb[end - 1].pool < 0:
            end -= 1
        return end

    cdef int64_t _memb_copy(self, member_t* dst, int32_t* offs,
                            const int32_t* member_of) noexcept:
        # Every agent's memberships, agent after agent, into dst (NULL: count
        # only); offs[a] gets where agent a's start, offs[n] the total. With
        # member_of NULL they are packed; else each list is followed by room
        # for one more where member_of[a] >= 0 and a quarter more (at least 2),
        # free entries marked pool -1. Returns the total. offs may be memb_off
        # itself: each offset is read before it is written.
        cdef int32_t i, k, src, used, room, n = self.n_agents_
        cdef int64_t j = 0
        for i in range(n):
            src = self.memb_off[i]
            used = self._memb_end(i) - src
            room = used
            if member_of != NULL:
                room += member_of[i] >= 0
                room += 2 + room // 4
            if dst != NULL and j + room <= 0x7FFFFFFF:
                offs[i] = <int32_t> j
                memcpy(&dst[j], &self.memb[src], used * sizeof(member_t))
                for k in range(used, room):
                    dst[j + k].pool = -1
            j += room
        if dst != NULL and j <= 0x7FFFFFFF:
            offs[n] = <int32_t> j
        return j

    cdef int _memb_room(self, const int32_t* member_of) noexcept:
        # The membership array laid out again with room after each list
        # (_memb_copy). O(memberships + agents).
        cdef int64_t total = self._memb_copy(NULL, NULL, member_of)
        cdef member_t* memb = NULL
        if total <= 0x7FFFFFFF:
            memb = <member_t*> malloc((total if total else 1) * sizeof(member_t))
        if memb == NULL:
            return E_NOMEM
        self._memb_copy(memb, self.memb_off, member_of)
        free(self.memb)
        self.memb = memb
        self.cap_memb = <int32_t> total
        return 0

    cdef void _memb_order(self, int32_t agent) noexcept:
        # An agent's memberships: those in warm pools first (_memb_key), then
        # those in cold pools.
        cdef int32_t off = self.memb_off[agent], end = self.memb_off[agent + 1], i, j, k
        cdef member_t x
        for i in range(off + 1, end):
            x = self.memb[i]
            k = self.pool_cold[x.pool] * 4 * N_STRATEGIES + self._memb_key(agent, x.pool)
            j = i
            while j > off and self.pool_cold[self.memb[j - 1].pool] * 4 * N_STRATEGIES \
                    + self._memb_key(agent, self.memb[j - 1].pool) > k:
                self.memb[j] = self.memb[j - 1]
                j -= 1
            self.memb[j] = x
        k = 0
        for i in range(off, end):
            if not self.pool_cold[self.memb[i].pool]:
                k += 1
        self.memb_warm[agent] = k

    cdef int32_t _memb_move(self, int32_t agent, int32_t pid, bint warm) noexcept:
        # Agent's membership of pool pid moves to the warm part of its list (in
        # strategy order) or to the cold part (in no order); returns its index.
        cdef int32_t off = self.memb_off[agent], w = self.memb_warm[agent]
        cdef int32_t end = self.memb_off[agent + 1], j, s
        cdef member_t x
        if warm:
            j = off + w
            while j < end and self.memb[j].pool != pid:
                j += 1
            if j == end:
                return -1           # still in the warm part: not demoted yet
            x = self.memb[j]
            self.memb[j] = self.memb[off + w]
            s = self._memb_key(agent, pid)
            j = off + w
            while j > off and self._memb_key(agent, self.memb[j - 1].pool) > s:
                self.memb[j] = self.memb[j - 1]
                j -= 1
            self.memb[j] = x
            self.memb_warm[agent] = w + 1
            return j
        j = off
        while j < off + w and self.memb[j].pool != pid:
            j += 1
        x = self.memb[j]
        memmove(&self.memb[j], &self.memb[j + 1], (off + w - 1 - j) * sizeof(member_t))
        self.memb[off + w - 1] = x
        self.memb_warm[agent] = w - 1
        return off + w - 1

    cdef inline void _memb_demote(self, int32_t agent, member_t* mb) noexcept:
        # A membership of a cold pool met in the warm part of the agent's list
        # moves to the start of the cold part; the ones after it move up.
        cdef member_t x = mb[0]
        cdef member_t* last = &self.memb[self.memb_off[agent] + self.memb_warm[agent] - 1]
        memmove(mb, mb + 1, (last - mb) * sizeof(member_t))
        last[0] = x
        self.memb_warm[agent] -= 1

    cdef int32_t _pool_add_member(self, int32_t pid, int32_t agent, int64_t score,
                                  bint keep_order) noexcept:
        # The pool's side of a membership; returns the member index (or E_NOMEM).
        # An idle agent joins the pool's idle set at once.
        cdef pool_t* p = &self.pools[pid]
        cdef int32_t m = p.n_members, cap = p.cap_members
        if m == cap:
            cap = p.cap_members
            if grow(<void**> &p.member_agent, &cap, m + 1, sizeof(int32_t)) != 0:
                return E_NOMEM
            p.cap_members = cap
        p.member_agent[m] = agent
        p.n_members += 1
        p.use_keyed = _keyed(p.strategy) and p.n_members >= KB_MIN_MEMBERS
        # Cooling and warming a pool cost O(members): it goes cold only after
        # as many pushes with no choice reading it, so that a pool read now and
        # then costs at most a bounded factor more than keeping it warm. (1,000
        # agents, extended benchmark: 0.5x to 1x members measured best, 2x and
        # 4x cost 1% and 3% more.)
        p.cold_after = p.n_members + 64
        if self.agents[agent].state != AS_LOGGED_OUT:
            p.n_logged += 1
        if not _heap_strategy(p.strategy):
            if rs_resize(&p.order, p.n_members) != 0:
                return E_NOMEM
        if not self.pool_cold[pid] and self.ready_epoch[agent] \
                and (self.agents[agent].routable >> p.channel) & 1 \
                and self._pool_insert_one(pid, m, agent, <int32_t> score, keep_order) != 0:
            return E_NOMEM
        return m

    cdef int c_add_pool(self, int32_t strategy, int32_t tenant, int32_t channel,
                        const skill_t* req, const int32_t* req_off, int32_t n_conj,
                        const int32_t* steps, int32_t n_steps) noexcept:
        # The pools of one chain's `steps` (distinct, each < n_conj), in one pass
        # over the agents: pool pid + j, returned first, holds the agents whose
        # first conjunction met is steps[j]. O(agents + members): each member
        # gets its membership in the room after its list (amortised:
        # _memb_room), at most one, as the pools of a chain are disjoint.
        cdef int32_t pid = self.n_pools, i, j, k, m, n_new = 0, n_req = req_off[n_conj]
        cdef pool_t* p
        cdef int64_t score
        # Per agent: its member index in its new pool (-1: none), the pool, its score.
        cdef int32_t* member_of = <int32_t*> malloc((self.n_agents_ + 1) * sizeof(int32_t))
        cdef int32_t* pool_of = <int32_t*> malloc((self.n_agents_ + 1) * sizeof(int32_t))
        cdef int32_t* score_of = <int32_t*> malloc((self.n_agents_ + 1) * sizeof(int32_t))
        # The new pool of each step (-1: none).
        cdef int32_t* new_of = <int32_t*> malloc((n_conj + 1) * sizeof(int32_t))
        cdef int r = E_NOMEM
        cdef bint failed
        if member_of == NULL or pool_of == NULL or score_of == NULL or new_of == NULL:
            free(member_of)
            free(pool_of)
            free(score_of)
            free(new_of)
            return E_NOMEM
        if grow_aligned(<void**> &self.pools, &self.cap_pools, pid, pid + n_steps,
                        sizeof(pool_t)) != 0 \
                or grow(<void**> &self.pool_waiting, &self.cap_pool_waiting, pid + n_steps,
                        sizeof(int32_t)) != 0 \
                or grow(<void**> &self.pool_ready, &self.cap_pool_ready, pid + n_steps,
                        sizeof(int32_t)) != 0 \
                or grow(<void**> &self.pool_cold, &self.cap_pool_cold, pid + n_steps,
                        sizeof(uint8_t)) != 0 \
                or grow(<void**> &self.pool_kind, &self.cap_pool_kind, pid + n_steps,
                        sizeof(uint8_t)) != 0:
            failed = True
        else:
            failed = False
        if not failed:
            for k in range(n_conj):
                new_of[k] = -1
            for j in range(n_steps):
                new_of[steps[j]] = pid + j
                self.pool_waiting[pid + j] = 0
                self.pool_ready[pid + j] = 0
                self.pool_cold[pid + j] = 0
                p = &self.pools[pid + j]
                memset(p, 0, sizeof(pool_t))
                p.strategy = strategy
                p.step = steps[j]
                p.tenant = tenant
                p.channel = channel
                self.pool_kind[pid + j] = _pool_kind(p)
                p.req = <skill_t*> malloc((n_req if n_req else 1) * sizeof(skill_t))
                p.req_off = <int32_t*> malloc((n_conj + 1) * sizeof(int32_t))
                if p.req == NULL or p.req_off == NULL:
                    free(p.req)
                    free(p.req_off)
                    failed = True
                    break
                memcpy(p.req, req, n_req * sizeof(skill_t))
                memcpy(p.req_off, req_off, (n_conj + 1) * sizeof(int32_t))
                p.n_conj = n_conj
                self.n_pools += 1
        if not failed:
            for i in range(self.n_agents_):
                member_of[i] = -1
                if self.agents[i].tenant != tenant or self.chans[i].cap[channel] == 0:
                    continue
                j = _first_met(self.agent_skills[i].s, self.agent_skills[i].n, req, req_off,
                               n_conj, &score)
                if j < 0 or new_of[j] < 0:
                    continue
                # Idle agents join in id order, sorted once below.
                m = self._pool_add_member(new_of[j], i, score, False)
                if m < 0:
                    failed = True
                    break
                member_of[i] = m
                pool_of[i] = new_of[j]
                score_of[i] = <int32_t> score
                n_new += 1
        if not failed:
            for j in range(n_steps):
                if self._sort_pool(&self.pools[pid + j]) != 0:
                    failed = True
                    break
        if not failed and n_new:
            # Each member's new membership goes in the first free entry after
            # its list (all laid out anew first if one has none left), then to
            # the warm part of its list.
            for i in range(self.n_agents_):
                if member_of[i] >= 0 and self._memb_end(i) == self.memb_off[i + 1]:
                    if self._memb_room(member_of) != 0:
                        failed = True
                    break
            if not failed:
                for i in range(self.n_agents_):
                    if member_of[i] >= 0:
                        self._memb_set(&self.memb[self._memb_end(i)], pool_of[i], member_of[i],
                                       score_of[i])
                        self._memb_move(i, pool_of[i], True)
        if not failed:
            r = pid
        free(member_of)
        free(pool_of)
        free(score_of)
        free(new_of)
        return r

    cdef int c_add_queue(self, int32_t strategy, int32_t priority, time_us_t ring_timeout_us,
                         time_us_t sl_threshold_us, int32_t tenant) noexcept:
        cdef int32_t qid = self.n_queues_
        cdef queue_t* q
        if grow(<void**> &self.queues, &self.cap_queues, qid + 1, sizeof(queue_t)) != 0:
            return E_NOMEM
        q = &self.queues[qid]
        memset(q, 0, sizeof(queue_t))
        q.strategy = strategy
        q.priority = priority
        q.ring_timeout_us = ring_timeout_us
        q.sl_threshold_us = sl_threshold_us
        q.rr_last = -1
        q.base_chain = -1
        q.tenant = tenant
        q.priority_weight_us = <time_us_t> 1 << 40
        q.overflow_queue = -1
        q.parallel = 1
        q.handle_estimate_us = 180000000
        self.n_queues_ += 1
        return qid

    cdef int c_add_route(self, int32_t queue, const int32_t* pools, int32_t n_pools,
                         int32_t agents_key) noexcept:
        cdef int32_t rid = self.n_routes, i
        cdef route_t* r
        cdef pool_t* p
        cdef queue_t* q = &self.queues[queue]
        if grow(<void**> &self.routes, &self.cap_routes, rid + 1, sizeof(route_t)) != 0:
            return E_NOMEM
        r = &self.routes[rid]
        memset(r, 0, sizeof(route_t))
        r.pools = <int32_t*> malloc(n_pools * sizeof(int32_t))
        if r.pools == NULL:
            return E_NOMEM
        memcpy(r.pools, pools, n_pools * sizeof(int32_t))
        r.n_pools = n_pools
        r.queue = queue
        r.channel = self.pools[pools[0]].channel
        r.agents_key = agents_key
        for i in range(n_pools):
            p = &self.pools[pools[i]]
            if _push_int(&p.routes, &p.n_routes, &p.cap_routes, rid) != 0:
                return E_NOMEM
            r.n_cold += self.pool_cold[pools[i]]
        if _push_int(&q.routes, &q.n_routes, &q.cap_routes, rid) != 0:
            return E_NOMEM
        self.n_routes += 1
        return rid

    def _pool_for(self, tuple conjs, int step, int strategy, int tenant, int channel):
        # conjs: a chain's step conjunctions, in step order. The pools of all
        # its steps not made yet are made together (one pass over the agents).
        key = (tenant, conjs, step, strategy, channel)
        pid = self._pool_index.get(key)
        if pid is None:
            missing = [k for k in range(len(conjs))
                       if (tenant, conjs, k, strategy, channel) not in self._pool_index]
            flat = tuple(pair for conj in conjs for pair in conj)
            s = _skill_array(flat)
            off = <int32_t*> malloc((len(conjs) + 1) * sizeof(int32_t))
            steps = <int32_t*> malloc(len(missing) * sizeof(int32_t))
            if off == NULL or steps == NULL:
                free(s)
                free(off)
                free(steps)
                raise MemoryError()
            off[0] = 0
            for k, conj in enumerate(conjs):
                off[k + 1] = off[k] + len(conj)
            for j, k in enumerate(missing):
                steps[j] = k
            first = self.c_add_pool(strategy, tenant, channel, s, off, len(conjs), steps,
                                    len(missing))
            free(s)
            free(off)
            free(steps)
            if first < 0:
                raise MemoryError()
            for j, k in enumerate(missing):
                self._pool_index[(tenant, conjs, k, strategy, channel)] = first + j
            pid = self._pool_index[key]
        return pid

    def _route_for(self, int queue, tuple conjs, int step, int channel):
        key = (queue, conjs, step, channel)
        rid = self._route_index.get(key)
        if rid is None:
            q = &self.queues[queue]
            pools = [self._pool_for(conjs, k, q.strategy, q.tenant, channel)
                     for k in range(step + 1)]
            agents = (q.tenant, q.strategy, _disjunction(conjs[:step + 1]), channel)
            akey = self._agents_keys.setdefault(agents, len(self._agents_keys))
            arr = <int32_t*> malloc(len(pools) * sizeof(int32_t))
            if arr == NULL:
                raise MemoryError()
            for k, pid in enumerate(pools):
                arr[k] = pid
            rid = self.c_add_route(queue, arr, len(pools), akey)
            free(arr)
            if rid < 0:
                raise MemoryError()
            self._route_index[key] = rid
        return rid

    def _chain_for(self, int queue, tuple extra, int channel=0):
        """The step routes of the queue's contacts of `channel` that also require
        `extra`: step k admits the agents that meet one of steps 0..k (each with
        `extra` added) and take that channel."""
        key = (queue, extra, channel)
        chain = self._chain_index.get(key)
        if chain is not None:
            return chain
        cdef queue_t* q = &self.queues[queue]
        # The chain to follow on overflow exists first: targets are earlier queues.
        after = self._chain_for(q.overflow_queue, extra, channel) if q.overflow == OV_QUEUE else -1
        conjs = tuple(_merge(step, extra) for step in self._queue_steps[queue])
        routes = [self._route_for(queue, conjs, k, channel) for k in range(len(conjs))]
        chain = self.n_chains
        if grow(<void**> &self.chains, &self.cap_chains, chain + 1 + len(routes),
                sizeof(int32_t)) != 0:
            raise MemoryError()
        self.chains[chain] = after
        for k, rid in enumerate(routes):
            self.chains[chain + 1 + k] = rid
        self.n_chains += 1 + len(routes)
        self._chain_index[key] = chain
        return chain

    def add_queue(self, require=None, *, steps=None, strategy=Strategy.LONGEST_IDLE,
                  priority=0, ring_timeout_us=15_000_000, sl_threshold_us=20_000_000,
                  priority_weight_us=MAX_PRIORITY_WEIGHT_US, max_waiting=0, max_wait_us=0,
                  overflow=None, when_unstaffed="wait", tenant=0, parallel=1,
                  handle_estimate_us=180_000_000):
        """Add a queue and return its id (0, 1, 2, ... in order).

        Args:
            require: skill -> minimum level an agent needs to take this queue's
                contacts (None or empty: every agent). Same as ``steps=[(0, require)]``.
            steps: requirement steps ``[(after_us, require), ...]``, the first at 0,
                times increasing: after waiting ``after_us`` in this queue a contact
                may also go to the agents that meet that step's requirement (the
                set of agents only widens). Fired by timers in the core.
            strategy: how to choose among eligible idle agents (:class:`Strategy`).
            priority: default priority of its contacts, in [-1e6, 1e6]; higher first.
            ring_timeout_us: how long an offer rings before ring-no-answer (0: forever).
            sl_threshold_us: the service-level threshold T ("answered within T").
            priority_weight_us: the wait one priority level is worth, in [0, 2**40]:
                a waiting contact's rank is ``wait + priority * priority_weight_us``
                (highest first, in every queue alike). The default, 2**40 (12.7
                days), makes priority strict; smaller values let waits age past it.
            max_waiting: the most contacts that may wait (0: no limit; callbacks do
                not count); a newcomer beyond it goes to ``overflow``, or is rejected.
            max_wait_us: the longest a contact waits here (0: no limit), then it goes
                to ``overflow``, or times out. Callbacks have no maximum.
            overflow: where contacts go that this queue cannot keep: None (rejected
                or timed out), a queue id (an existing queue of the same tenant),
                ``"voicemail"``, or ``"callback"`` (they stay in place as callbacks).
            when_unstaffed: on arrival when no agent that could ever take the contact
                is logged in: ``"wait"``, ``"reject"``, or ``"overflow"``.
            tenant: the tenant the queue belongs to, in [0, 2**31); its contacts go
                only to agents of the same tenant.
            parallel: how many idle agents one contact rings at once, chosen in
                strategy order (0: every eligible idle agent, ring-all). The
                first to accept takes it; the others get a RELEASE decision and
                are released at once.
            handle_estimate_us: the handle time (talk + wrap-up) that
                :meth:`estimated_wait_us` assumes until the agents have history.

        Raises:
            ConfigError: a value out of range, or inconsistent.
        """
        if require is not None and steps is not None:
            raise ConfigError("add_queue: give require or steps, not both")
        if steps is None:
            step_list = [(0, _requirement(require, "require"))]
        else:
            step_list = []
            try:
                items = list(steps)
            except TypeError:
                raise ConfigError("steps must be a list of (after_us, require) pairs") from None
            for k, step in enumerate(items):
                try:
                    after, req = step
                except (TypeError, ValueError):
                    raise ConfigError(f"steps[{k}] must be an (after_us, require) pair") from None
                after = _duration(after, f"steps[{k}].after_us")
                if k == 0 and after != 0:
                    raise ConfigError(f"steps[0].after_us must be 0, got {after}")
                if k and after <= step_list[k - 1][0]:
                    raise ConfigError(f"steps[{k}].after_us must exceed the step before it")
                step_list.append((after, _requirement(req, f"steps[{k}].require")))
            if not step_list:
                raise ConfigError("steps must not be empty")
        try:
            st = Strategy(strategy)
        except ValueError:
            raise ConfigError(f"unknown strategy {strategy!r}") from None
        prio = _priority(priority)
        ring = _duration(ring_timeout_us, "ring_timeout_us")
        sl = _duration(sl_threshold_us, "sl_threshold_us")
        weight = int(priority_weight_us)
        if not 0 <= weight <= MAX_PRIORITY_WEIGHT_US:
            raise ConfigError(f"priority_weight_us must be in [0, 2**40], got {weight}")
        limit = int(max_waiting)
        if not 0 <= limit <= MAX_COUNT:
            raise ConfigError(f"max_waiting must be in [0, 2**31), got {limit}")
        max_wait = _duration(max_wait_us, "max_wait_us")
        ten = int(tenant)
        if not 0 <= ten <= MAX_COUNT:
            raise ConfigError(f"tenant must be in [0, 2**31), got {ten}")
        par = int(parallel)
        if not 0 <= par <= MAX_COUNT:
            raise ConfigError(f"parallel must be in [0, 2**31), got {par}")
        aht = _duration(handle_estimate_us, "handle_estimate_us")
        target = -1
        if overflow is None:
            kind = OV_NONE
        elif overflow == "voicemail":
            kind = OV_VOICEMAIL
        elif overflow == "callback":
            kind = OV_CALLBACK
        elif isinstance(overflow, int) and not isinstance(overflow, bool):
            if not 0 <= overflow < self.n_queues_:
                raise ConfigError(f"overflow: no queue {overflow} (the target must exist)")
            if self.queues[<int32_t> overflow].tenant != ten:
                raise ConfigError(f"overflow: queue {overflow} belongs to another tenant")
            kind = OV_QUEUE
            target = overflow
        else:
            raise ConfigError(
                f"overflow must be None, a queue id, 'voicemail' or 'callback', got {overflow!r}")
        unstaffed = {"wait": 0, "reject": 1, "overflow": 2}.get(when_unstaffed)
        if unstaffed is None:
            raise ConfigError(
                f"when_unstaffed must be 'wait', 'reject' or 'overflow', got {when_unstaffed!r}")
        if unstaffed == 2 and kind == OV_NONE:
            raise ConfigError("when_unstaffed='overflow' needs an overflow target")
        cdef time_us_t* after_arr = <time_us_t*> malloc(len(step_list) * sizeof(time_us_t))
        if after_arr == NULL:
            raise MemoryError()
        qid = self.c_add_queue(int(st), prio, ring, sl, ten)
        if qid < 0:
            free(after_arr)
            raise MemoryError()
        cdef queue_t* q = &self.queues[<int32_t> qid]
        for k, (after, _) in enumerate(step_list):
            after_arr[k] = after
        q.step_after = after_arr
        q.n_steps = len(step_list)
        q.priority_weight_us = weight
        q.max_waiting = limit
        q.max_wait_us = max_wait
        q.overflow = kind
        q.overflow_queue = target
        q.reject_unstaffed = unstaffed
        q.parallel = par
        q.handle_estimate_us = aht
        self._queue_steps.append(tuple(req for _, req in step_list))
        q.base_chain = self._chain_for(qid, ())
        return qid

    def add_agent(self, skills, *, wrap_up_us=0, tenant=0, capacity=None, blocks=None):
        """Add an agent (LOGGED_OUT) and return its id (0, 1, 2, ... in order).

        Args:
            skills: skill -> proficiency level, levels in [1, 1000].
            wrap_up_us: default wrap-up after each completed contact (0: none).
            tenant: the tenant the agent belongs to, in [0, 2**31).
            capacity: None for the classic agent (one contact at a time, any
                channel); or a multi-channel agent's capacity per channel,
                ``{Channel.CHAT: 3, Channel.EMAIL: 2, ...}`` (0-15; absent: 0).
            blocks: with `capacity`, which channels a contact of each channel
                closes while the agent holds it, ``{Channel.VOICE: [CHAT, EMAIL],
                ...}``; absent channels keep the default: a voice or callback
                contact closes every other channel, a chat or e-mail closes voice
                and callback (so chats and e-mails mix).

        Raises:
            ConfigError: a value out of range.
        """
        sk = _requirement(skills, "skills")
        wrap = _duration(wrap_up_us, "wrap_up_us")
        ten = int(tenant)
        if not 0 <= ten <= MAX_COUNT:
            raise ConfigError(f"tenant must be in [0, 2**31), got {ten}")
        cdef uint8_t cap[4]
        cdef uint8_t blk[4]
        cdef bint multi = capacity is not None
        if not multi and blocks is not None:
            raise ConfigError("blocks needs capacity")
        if multi:
            caps, blks = _channel_rules(capacity, blocks)
            for x in range(N_CHANNELS):
                cap[x] = caps[x]
                blk[x] = blks[x]
        cdef skill_t* s = _skill_array(sk)
        cdef int r = self.c_add_agent(s, len(sk), wrap, ten, cap if multi else NULL,
                                      blk if multi else NULL)
        free(s)
        if r < 0:
            raise MemoryError()
        return r

    @property
    def n_agents(self):
        """How many agents were added."""
        return self.n_agents_

    @property
    def n_queues(self):
        """How many queues were added."""
        return self.n_queues_

    # --------------------------------------------------------------- internals

    cdef uint64_t _next_random(self) noexcept:
        # SplitMix64, written out in docs/ROUTING.md so the reference matches.
        cdef uint64_t z
        self.rng += <uint64_t> 0x9E3779B97F4A7C15
        z = self.rng
        z = (z ^ (z >> 30)) * <uint64_t> 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) * <uint64_t> 0x94D049BB133111EB
        return z ^ (z >> 31)

    cdef int32_t _advance_to(self, contact_id_t contact, time_us_t now) noexcept:
        # The common start of a call on a contact: fire the due timers, then find
        # its slot; an err_t (< 0) when either fails.
        cdef int r = self.c_advance(now)
        if r:
            return r
        cdef int32_t slot = self._slot(contact)
        return E_UNKNOWN_CONTACT if slot < 0 else slot

    cdef int32_t _slot(self, contact_id_t contact) noexcept:
        cdef int64_t slot
        if contact < 0:
            return -1
        slot = slot_of(contact)
        if slot >= self.n_slots:
            return -1
        if self.contacts[slot].state == CS_FREE or self.contacts[slot].gen != <uint32_t> (contact >> 32):
            return -1
        return <int32_t> slot

    cdef contact_id_t _cid(self, int32_t slot) noexcept:
        return (<contact_id_t> self.contacts[slot].gen << 32) | slot

    cdef void _set_state(self, agent_t* a, int32_t state, time_us_t now) noexcept:
        a.time_in_state[a.state] += now - a.state_since
        a.state_since = now
        a.state = state

    cdef int _emit(self, int32_t kind, time_us_t t, contact_id_t c, int32_t agent,
                   int32_t queue) noexcept:
        cdef decision_t* d
        if grow(<void**> &self.dec, &self.cap_dec, self.n_dec + 1, sizeof(decision_t)) != 0:
            return E_NOMEM
        d = &self.dec[self.n_dec]
        d.kind = kind
        d.time = t
        d.contact = c
        d.agent = agent
        d.queue = queue
        self.n_dec += 1
        return 0

    cdef int _timer_add(self, time_us_t deadline, int32_t kind, int32_t obj) noexcept:
        cdef int32_t t, cap
        if self.n_free_timers:
            self.n_free_timers -= 1
            t = self.free_timers[self.n_free_timers]
        else:
            t = self.n_timer_slots
            cap = self.cap_timer_slots
            if grow(<void**> &self.timers, &cap, t + 1, sizeof(timer_t)) != 0:
                return -1
            cap = self.cap_timer_slots
            if grow(<void**> &self.timer_pos, &cap, t + 1, sizeof(int32_t)) != 0:
                return -1
            self.cap_timer_slots = cap
            self.n_timer_slots += 1
        self.timers[t].kind = kind
        self.timers[t].obj = obj
        if h_push(&self.timer_heap, deadline, self.timer_seq, 0, t, self.timer_pos) != 0:
            return -1
        self.timer_seq += 1
        return t

    cdef void _timer_cancel(self, int32_t t) noexcept:
        h_remove(&self.timer_heap, self.timer_pos[t], self.timer_pos)
        self.timers[t].kind = TK_NONE
        # The free list never outgrows the slot count, which was reserved.
        grow(<void**> &self.free_timers, &self.cap_free_timers, self.n_free_timers + 1,
             sizeof(int32_t))
        self.free_timers[self.n_free_timers] = t
        self.n_free_timers += 1

    cdef bint _live(self, const pool_t* p, const rentry_t* e) noexcept:
        # A classic agent's entries share one epoch; a multi-channel agent's
        # (ready_epoch = MULTI_MARK while it is in any pool) have one per channel.
        cdef uint32_t x = self.ready_epoch[e.agent]
        if x == e.epoch:
            return True
        return x == MULTI_MARK and self.chans[e.agent].epoch[p.channel] == e.epoch

    cdef int _compact(self, int32_t pid) noexcept:
        # Drop stale entries once they outnumber the live ones (by 16): amortised
        # O(1) per entry, and it bounds the heap at about twice the READY agents.
        # A slack of 64 left small pools popping stale tops one sift-down (and
        # a few mispredicted branches) at a time: 16 saves about 40 instructions
        # an event at 1,000 agents, in both configurations of the benchmark.
        cdef pool_t* p = &self.pools[pid]
        cdef int32_t i, k, n = 0
        if p.strategy == ST_LONGEST_IDLE:
            self._compact_fifo(p, &p.idle)
            return 0
        if _keyed(p.strategy):
            p.n_keyed = 0
            for k in range(p.keyed.n):
                p.n_keyed += self._compact_fifo(p, kb_at(&p.keyed, k))
        for i in range(p.ready.n):
            if self._live(p, &p.ready.e[i]):
                p.ready.e[n] = p.ready.e[i]
                n += 1
        p.ready.n = n
        r_heapify(&p.ready)
        return 0

    cdef int32_t _compact_fifo(self, const pool_t* p, rfifo_t* f) noexcept:
        # The fifo's live entries, in order; returns how many.
        cdef int32_t i, n = 0
        for i in range(f.n):
            if self._live(p, f_at(f, i)):
                f_at(f, n)[0] = f_at(f, i)[0]
                n += 1
        f.n = n
        return n

    cdef inline int32_t _entries(self, const pool_t* p) noexcept:
        # Entries a pool keeps, live or stale: a pool uses one or two of these
        # (a bitset pool none), and the others are 0.
        return p.idle.n + p.ready.n + p.n_keyed

    cdef inline int _keyed_put(self, pool_t* p, int64_t key, time_us_t idle, int32_t agent,
                               uint32_t epoch, bint keep_order) noexcept:
        # Into the fifo of its key, or the heap when the key is out of reach.
        cdef int r = kb_push(&p.keyed, key, idle, agent, epoch, keep_order)
        if r == 0:
            p.n_keyed += 1
        elif r == 1:
            r = r_push(&p.ready, key, idle, agent, epoch)
        return E_NOMEM if r != 0 else 0

    cdef inline int _pool_put(self, pool_t* p, int32_t m, int32_t agent, int32_t score,
                              time_us_t idle, int64_t handled, time_us_t talk,
                              uint32_t epoch, bint keep_order) noexcept:
        # The agent (member m of the pool) joins the pool's READY order, with
        # the keys of its current idle spell.
        cdef int32_t s = p.strategy
        cdef int r = 0
        cdef int64_t key[3]
        # Three kinds of pool, not seven strategies: an agent's pools are listed
        # by kind (_memb_rank), so this branch changes course at most twice in a
        # walk over them; a branch per strategy mispredicted on most pushes.
        if s == ST_LONGEST_IDLE:
            r = f_push(&p.idle, idle, agent, epoch, keep_order)
        elif <uint32_t> _heap_key(s) <= 2:     # a heap (not the fifo)
            key[0] = handled        # _heap_key
            key[1] = talk
            key[2] = -score
            if p.use_keyed:
                return self._keyed_put(p, key[_heap_key(s)], idle, agent, epoch, keep_order)
            r = r_push(&p.ready, key[_heap_key(s)], idle, agent, epoch)
        else:
            rs_set(&p.order, m)
        return E_NOMEM if r != 0 else 0

    cdef inline int _pool_push(self, int32_t pid, int32_t m, int32_t agent, int32_t score,
                               time_us_t idle, int64_t handled, time_us_t talk,
                               uint32_t epoch, bint keep_order) noexcept:
        # The agent becomes READY in the (warm) pool: _pool_put, with the
        # compaction check only where there is something to compact.
        cdef pool_t* p = &self.pools[pid]
        cdef int32_t n, ready
        if self._pool_put(p, m, agent, score, idle, handled, talk, epoch, keep_order) != 0:
            return E_NOMEM
        n = self._entries(p)
        ready = self.pool_ready[pid] + 1
        self.pool_ready[pid] = ready
        p.unread += 1
        if p.unread > p.cold_after:
            self._pool_cool(pid)
        elif n > 2 * ready + 16:
            self._compact(pid)
        return 0

    cdef void _pool_cool(self, int32_t pid) noexcept:
        # The pool goes cold, unless a contact waits in one of its routes (no
        # READY agent can serve it, so the pool is not pushed into: it only got
        # there after its last push). O(routes of the pool).
        cdef pool_t* p = &self.pools[pid]
        cdef int32_t m
        if self.pool_cold[pid] or self.pool_waiting[pid] or p.unread <= p.cold_after:
            return
        self.pool_cold[pid] = 1
        self.pool_ready[pid] = 0
        p.ready.n = 0
        p.idle.n = 0
        p.idle.head = 0
        kb_clear(&p.keyed)
        p.n_keyed = 0
        for m in range(p.n_routes):
            self.routes[p.routes[m]].n_cold += 1
        # Its memberships leave the warm part of each list lazily, when their
        # agent next walks it (_memb_demote): its list is in cache then.

    cdef int _pool_warm(self, int32_t pid) noexcept:
        # A contact of one of its routes is dispatched: the cold pool's READY
        # agents counted and ordered anew, with the keys each would have been
        # pushed with, and its memberships back in the warm part of each list.
        # O(members x memberships an agent), paid for by the pushes (at least
        # its members) it went without a read before it went cold.
        cdef pool_t* p = &self.pools[pid]
        cdef agent_t* a
        cdef chan_t* ch
        cdef int32_t m, agent, x = p.channel, score = 0, i, n = 0
        cdef int r = 0
        p.ready.n = 0
        p.idle.n = 0
        p.idle.head = 0
        kb_clear(&p.keyed)
        p.n_keyed = 0
        if not _heap_strategy(p.strategy):
            if p.order.n_words:
                memset(p.order.bits, 0, p.order.n_words * sizeof(uint64_t))
                memset(p.order.words.t, 0, (p.order.words.cap + 1) * sizeof(int32_t))
            p.order.words.total = 0
        for m in range(p.n_members):
            agent = p.member_agent[m]
            # Back in the warm part of its list (in the same pass: at 100,000
            # members a second pass missed the cache again on every agent). If
            # the rebuild fails below, the pool stays cold and the membership
            # is demoted again when its agent next walks its list.
            self._memb_move(agent, pid, True)
            if self.ready_epoch[agent] == 0 or not (self.agents[agent].routable >> x) & 1:
                continue
            if p.strategy == ST_MOST_SKILLED:
                # Its score is kept in its membership record, not in the pool.
                for i in range(self.memb_off[agent], self.memb_off[agent + 1]):
                    if self.memb[i].pool == pid:
                        score = self.memb[i].arg
                        break
            a = &self.agents[agent]
            ch = &self.chans[agent]
            if a.multi:
                r = self._pool_put(p, m, agent, score, ch.idle[x], ch.handled_at[x],
                                   ch.talk_at[x], ch.epoch[x], False)
            else:
                r = self._pool_put(p, m, agent, score, a.idle_since, a.handled,
                                   a.talk_time_us, a.epoch, False)
            if r != 0:
                break
            n += 1
        if r == 0:
            r = self._sort_pool(p)
        if r != 0:
            p.ready.n = 0           # still cold: rebuilt at the next dispatch
            p.idle.n = 0
            p.idle.head = 0
            kb_clear(&p.keyed)
            p.n_keyed = 0
            return E_NOMEM
        for m in range(p.n_routes):
            self.routes[p.routes[m]].n_cold -= 1
        self.pool_ready[pid] = n
        self.pool_cold[pid] = 0
        p.unread = 0
        return 0

    cdef int _sort_pool(self, pool_t* p) noexcept:
        # Its fifos in key order after a bulk load that skipped it (in agent order).
        if p.strategy == ST_LONGEST_IDLE:
            return f_sort(&p.idle)
        if _keyed(p.strategy):
            return kb_sort(&p.keyed)
        return 0

    cdef int _warm_route(self, const route_t* r) noexcept:
        # A contact of the route is dispatched: its cold pools warmed.
        cdef int32_t i, pid
        for i in range(r.n_pools):
            pid = r.pools[i]
            if self.pool_cold[pid] and self._pool_warm(pid) != 0:
                return E_NOMEM
        return 0

    cdef int _pool_insert_one(self, int32_t pid, int32_t m, int32_t agent, int32_t score,
                              bint keep_order) noexcept:
        # A multi-channel agent's keys are per channel, taken when it became free
        # for that channel.
        cdef agent_t* a = &self.agents[agent]
        cdef chan_t* ch = &self.chans[agent]
        cdef int32_t x = self.pools[pid].channel
        if a.multi:
            return self._pool_push(pid, m, agent, score, ch.idle[x],
                                   ch.handled_at[x], ch.talk_at[x], ch.epoch[x], keep_order)
        return self._pool_push(pid, m, agent, score, a.idle_since, a.handled,
                               a.talk_time_us, a.epoch, keep_order)

    cdef int _pool_insert(self, int32_t agent, int32_t mask) noexcept:
        # Into its pools of the channels in `mask` (a new epoch: entries of any
        # earlier time in its pools are stale from now on).
        cdef agent_t* a = &self.agents[agent]
        cdef chan_t* ch = &self.chans[agent]
        cdef int32_t x
        cdef member_t* mb = &self.memb[self.memb_off[agent]]
        cdef member_t* end = mb + self.memb_warm[agent]
        cdef time_us_t idle, talk
        cdef int64_t handled
        cdef uint32_t epoch
        cdef int32_t last
        if a.multi:
            # Only the channels in `mask` get new entries; the others stay as
            # they are (a change on one channel leaves its other pools alone).
            for x in range(N_CHANNELS):
                if (mask >> x) & 1:
                    a.epoch += 1
                    if a.epoch == 0 or a.epoch == MULTI_MARK:
                        a.epoch = 1
                    ch.epoch[x] = a.epoch
            self.ready_epoch[agent] = MULTI_MARK
            a.routable |= <uint8_t> mask
            last = _ord_last(mask)
            while mb < end:
                if self.pool_cold[mb.pool]:
                    self._memb_demote(agent, mb)
                    end -= 1
                    continue
                x = self.pool_kind[mb.pool] & PK_CHANNEL
                if _chan_ord(x) > last:
                    break           # the channels after: none in the mask
                if (mask >> x) & 1 and self._pool_push(
                        mb.pool, mb.arg, agent, mb.arg, ch.idle[x],
                        ch.handled_at[x], ch.talk_at[x], ch.epoch[x], True) != 0:
                    return E_NOMEM
                mb += 1
            return 0
        a.epoch += 1
        if a.epoch == 0 or a.epoch == MULTI_MARK:
            a.epoch = 1         # 0 means "not idle" in ready_epoch
        self.ready_epoch[agent] = a.epoch
        a.routable = <uint8_t> mask
        # In locals: the pushes write memory, so gcc would load them anew each time.
        idle = a.idle_since
        handled = a.handled
        talk = a.talk_time_us
        epoch = a.epoch
        while mb < end:
            if self.pool_cold[mb.pool]:
                self._memb_demote(agent, mb)
                end -= 1
                continue
            # mb.arg: the member index of a bitset pool, the score of MOST_SKILLED.
            if (mask >> (self.pool_kind[mb.pool] & PK_CHANNEL)) & 1 and self._pool_push(
                    mb.pool, mb.arg, agent, mb.arg, idle, handled, talk, epoch, True) != 0:
                return E_NOMEM
            mb += 1
        return 0

    cdef void _leave_pools(self, int32_t agent, int32_t mask) noexcept:
        # Out of its pools of the channels in `mask`: bitsets are cleared, heap
        # pools keep the agent's entries, now stale (their epoch is over), and
        # are not touched at all (their counts are in pool_ready).
        cdef member_t* mb = &self.memb[self.memb_off[agent]]
        cdef member_t* end = mb + self.memb_warm[agent]
        cdef uint8_t k
        while mb < end:
            if self.pool_cold[mb.pool]:
                self._memb_demote(agent, mb)
                end -= 1
                continue
            k = self.pool_kind[mb.pool]
            if (mask >> (k & PK_CHANNEL)) & 1:
                if k & PK_RANKED:
                    rs_clear(&self.pools[mb.pool].order, mb.arg)
                self.pool_ready[mb.pool] -= 1
            mb += 1

    cdef void _pool_remove(self, int32_t agent) noexcept:
        self._leave_pools(agent, self.agents[agent].routable)
        self.ready_epoch[agent] = 0
        self.agents[agent].routable = 0
        if self.agents[agent].multi:
            memset(self.chans[agent].epoch, 0, sizeof(self.chans[agent].epoch))

    cdef void _m_remove(self, int32_t agent, int32_t mask) noexcept:
        # A multi-channel agent leaves the pools of the channels in `mask` only.
        cdef agent_t* a = &self.agents[agent]
        cdef chan_t* ch = &self.chans[agent]
        cdef int32_t x
        self._leave_pools(agent, mask)
        for x in range(N_CHANNELS):
            if (mask >> x) & 1:
                ch.epoch[x] = 0
        a.routable &= <uint8_t> ~mask
        if a.routable == 0:
            self.ready_epoch[agent] = 0

    cdef int32_t _ready_in(self, const route_t* r) noexcept:
        # READY agents the route's contacts may be offered to.
        cdef int32_t i, n = 0
        for i in range(r.n_pools):
            n += self.pool_ready[r.pools[i]]
        return n

    cdef int32_t _choose(self, route_t* r, queue_t* q) noexcept:
        # The agent to offer the route's contact to; a READY one exists, and the
        # route's pools are warm (_warm_route). Its pools are disjoint, so the
        # strategy's choice over their union is the best of each pool's own
        # choice (random: the k-th of the union by agent id). Each pool with
        # READY agents is read (its `unread` reset).
        cdef int32_t i, a, best = -1, first = -1, k, n, lo, hi, mid
        cdef pool_t* p
        cdef rentry_t e, be
        cdef bint have = False
        if r.n_pools == 1:
            return self._choose_in(r.pools[0], q)
        if q.strategy == ST_RANDOM:
            k = <int32_t> (self._next_random() % <uint64_t> self._ready_in(r))
            # The smallest agent id with more than k READY members at or below it.
            for i in range(r.n_pools):
                if self.pool_ready[r.pools[i]]:
                    self.pools[r.pools[i]].unread = 0
            lo = 0
            hi = self.n_agents_ - 1
            while lo < hi:
                mid = (lo + hi) >> 1
                n = 0
                for i in range(r.n_pools):
                    p = &self.pools[r.pools[i]]
                    if self.pool_ready[r.pools[i]]:
                        n += rs_rank(&p.order, _upper_bound(p.member_agent, p.n_members, mid))
                if n > k:
                    hi = mid
                else:
                    lo = mid + 1
            return lo
        for i in range(r.n_pools):
            p = &self.pools[r.pools[i]]
            if self.pool_ready[r.pools[i]] == 0:
                continue
            p.unread = 0
            if _heap_strategy(p.strategy):
                self._top(r.pools[i], &e)
                if not have or r_less(&e, &be):
                    be = e
                    have = True
            elif p.strategy == ST_LINEAR:
                a = p.member_agent[rs_select(&p.order, 0)]
                if best < 0 or a < best:
                    best = a
            else:
                # ROUND_ROBIN: the first READY agent after the last one served,
                # else (wrapping) the first of all.
                k = rs_rank(&p.order, _upper_bound(p.member_agent, p.n_members, q.rr_last))
                if k < self.pool_ready[r.pools[i]]:
                    a = p.member_agent[rs_select(&p.order, k)]
                    if best < 0 or a < best:
                        best = a
                a = p.member_agent[rs_select(&p.order, 0)]
                if first < 0 or a < first:
                    first = a
        if have:
            return be.agent
        return best if best >= 0 else first

    cdef inline void _top(self, int32_t pid, rentry_t* out) noexcept:
        # The entry of the best READY agent of a fifo, keyed or heap pool (it
        # has one), the stale entries before it dropped; its keys as in a heap
        # pool's entries (a: the first key, or the idle time of a LONGEST_IDLE
        # pool; b: the idle time, or 0).
        cdef pool_t* p = &self.pools[pid]
        cdef kbuck_t* b = &p.keyed
        cdef rfifo_t* f = NULL
        if p.strategy == ST_LONGEST_IDLE:
            while not self._live(p, f_at(&p.idle, 0)):
                f_pop(&p.idle)
            out[0] = f_at(&p.idle, 0)[0]
            # The next lines of the ring, for the next choice in this pool: its
            # head is read only here, a line of it every 2.7 entries, and each
            # was a miss at 100,000 agents (written when its agents went idle).
            if p.idle.n > 6:
                __builtin_prefetch(f_at(&p.idle, 3), 0, 3)
                __builtin_prefetch(f_at(&p.idle, 6), 0, 3)
            return
        # While idle agents drain away nothing is pushed, so this is where
        # stale entries pile up: one linear pass beats popping each of them.
        if self._entries(p) > 2 * self.pool_ready[pid] + 16:
            self._compact(pid)
        while b.n:
            f = kb_at(b, 0)
            while f.n and not self._live(p, f_at(f, 0)):
                f_pop(f)
                p.n_keyed -= 1
            if f.n:
                break
            b.head = (b.head + 1) & (b.cap - 1)     # no entry of this key left
            b.base += 1
            b.n -= 1
        while p.ready.n and not self._live(p, &p.ready.e[0]):
            r_pop(&p.ready)
        if b.n == 0:
            out[0] = p.ready.e[0]
            return
        if f.n > 6:
            __builtin_prefetch(f_at(f, 3), 0, 3)
            __builtin_prefetch(f_at(f, 6), 0, 3)
        out.a = b.base
        out.b = f_at(f, 0).a
        out.agent = f_at(f, 0).agent
        out.epoch = f_at(f, 0).epoch
        if p.ready.n and r_less(&p.ready.e[0], out):
            out[0] = p.ready.e[0]

    cdef int32_t _choose_in(self, int32_t pid, queue_t* q) noexcept:
        # The agent (not member) to offer to; the pool has a READY agent.
        cdef pool_t* p = &self.pools[pid]
        cdef int32_t n_ready = self.pool_ready[pid]
        cdef int32_t k
        cdef uint64_t x
        cdef rentry_t e
        p.unread = 0                # read: it stays warm
        if _heap_strategy(p.strategy):
            self._top(pid, &e)
            return e.agent
        if p.strategy == ST_LINEAR:
            return p.member_agent[rs_select(&p.order, 0)]
        if p.strategy == ST_RANDOM:
            x = self._next_random()
            return p.member_agent[rs_select(&p.order, <int32_t> (x % <uint64_t> n_ready))]
        # ROUND_ROBIN: the first ready member after the last agent served, wrapping.
        k = rs_rank(&p.order, _upper_bound(p.member_agent, p.n_members, q.rr_last))
        return p.member_agent[rs_select(&p.order, k if k < n_ready else 0)]

    cdef int32_t _hook_choose(self, int32_t slot, route_t* r, queue_t* q) noexcept:
        # The slow path: ask the queue's Python hook, and fall back on the
        # strategy when it raises, answers anything but a candidate, or is late.
        cdef int32_t i, m, choice = -1
        cdef contact_t* c = &self.contacts[slot]
        cdef pool_t* p
        entry = self._hooks.get(c.queue)
        if entry is None:
            return self._choose(r, q)
        candidates = []
        for i in range(r.n_pools):
            p = &self.pools[r.pools[i]]
            candidates += [p.member_agent[m] for m in range(p.n_members)
                           if self.ready_epoch[p.member_agent[m]]
                           and (self.agents[p.member_agent[m]].routable >> p.channel) & 1]
        if r.n_pools > 1:
            candidates.sort()
        info = HookContact(self._cid(slot), c.queue, c.priority, Channel(c.channel),
                           c.arrival, self.now - c.entered, tuple(candidates))
        t0 = perf_counter_ns()
        try:
            answer = entry[0](info)
        except Exception:
            answer = None
        took = perf_counter_ns() - t0
        entry[2] += 1
        entry[5] += took
        if took > entry[1]:
            entry[4] += 1
        elif type(answer) is int and answer in candidates:
            choice = answer
        else:
            entry[3] += 1
        if choice < 0:
            return self._choose(r, q)
        return choice

    cdef int _offer(self, int32_t slot, int32_t agent, time_us_t now) noexcept:
        cdef agent_t* a = &self.agents[agent]
        cdef contact_t* c = &self.contacts[slot]
        cdef queue_t* q = &self.queues[c.queue]
        cdef int32_t t
        cdef int32_t b
        if self.ready_epoch[agent]:
            self._pool_remove(agent)
        if self.agents[agent].multi:
            self.chans[agent].load[c.rch] += 1
        self._set_state(a, AS_RESERVED, now)
        a.contact = slot
        a.ring_next = -1
        q.rr_last = agent
        if c.state == CS_OFFERED:
            # A parallel offer: one more agent rings, last in the list.
            b = c.agent
            while self.agents[b].ring_next >= 0:
                b = self.agents[b].ring_next
            self.agents[b].ring_next = agent
            return self._emit(DK_OFFER, now, self._cid(slot), agent, c.queue)
        c.state = CS_OFFERED
        c.agent = agent
        c.offered_at = now
        if q.ring_timeout_us > 0:
            t = self._timer_add(now + q.ring_timeout_us, TK_RING, slot)
            if t < 0:
                return E_NOMEM
            c.timer = t
        return self._emit(DK_OFFER, now, self._cid(slot), agent, c.queue)

    cdef int _contact_waits(self, int32_t slot, time_us_t now) noexcept:
        # The contact is in no heap and has no agent: offer it, or let it wait.
        cdef contact_t* c = &self.contacts[slot]
        cdef route_t* r = &self.routes[c.route]
        cdef queue_t* q = &self.queues[c.queue]
        cdef int32_t i, a, k
        cdef heap_t* h
        # Rank: the earlier the virtual arrival `arrival - priority * weight`, the
        # higher; the same function for every queue, and fixed while it waits.
        cdef time_us_t rank = c.arrival - <time_us_t> c.priority * q.priority_weight_us
        if c.flags & CF_PREFERRED:
            a = self._pref_ready(c)
            if a >= 0:
                return self._offer(slot, a, now)
        elif r.n_cold and self._warm_route(r) != 0:
            return E_NOMEM
        elif self._ready_in(r) > 0:
            i = self._offer(slot, self._hook_choose(slot, r, q) if q.hooked
                            else self._choose(r, q), now)
            k = 1
            while i == 0 and (q.parallel == 0 or k < q.parallel) and self._ready_in(r) > 0:
                i = self._offer(slot, self._choose(r, q), now)
                k += 1
            return i
        if c.flags & CF_EXPIRED:
            # Its maximum wait passed while it rang an agent who did not answer.
            return self._divert(slot, now, TK_MAX_WAIT)
        c.state = CS_WAITING
        if c.flags & CF_PREFERRED:
            for i in range(c.n_pref):
                h = &self.pref_heap[c.pref[i]]
                if h.n >= 32 and h.n == h.cap:
                    # Before it grows: drop the stale entries (amortised O(1)).
                    a = 0
                    for k in range(h.n):
                        if self._pref_live(&h.e[k]):
                            h.e[a] = h.e[k]
                            a += 1
                    h.n = a
                    h_heapify(h, self.pref_pos)
                if h_push(h, rank, c.arrival, c.seq, slot, self.pref_pos) != 0:
                    return E_NOMEM
                self.agents[c.pref[i]].has_pref = 1
        elif h_push(&r.waiting, rank, c.arrival, c.seq, slot, self.contact_pos) != 0:
            return E_NOMEM
        else:
            self._count_waiting(r, 1)
        q.waiting += 1
        if c.flags & CF_CALLBACK:
            q.waiting_callbacks += 1
        return 0

    cdef void _count_waiting(self, const route_t* r, int32_t delta) noexcept:
        cdef int32_t i
        for i in range(r.n_pools):
            self.pool_waiting[r.pools[i]] += delta

    cdef void _unwait(self, int32_t slot) noexcept:
        # Out of its queue's order; a contact waiting for its preferred agents
        # leaves stale entries in their heaps (they check the contact's state).
        cdef contact_t* c = &self.contacts[slot]
        cdef queue_t* q = &self.queues[c.queue]
        if not (c.flags & CF_PREFERRED):
            h_remove(&self.routes[c.route].waiting, self.contact_pos[slot], self.contact_pos)
            self._count_waiting(&self.routes[c.route], -1)
        q.waiting -= 1
        if c.flags & CF_CALLBACK:
            q.waiting_callbacks -= 1

    cdef void _cancel_wait_timers(self, contact_t* c) noexcept:
        if c.step_timer >= 0:
            self._timer_cancel(c.step_timer)
            c.step_timer = -1
        if c.wait_timer >= 0:
            self._timer_cancel(c.wait_timer)
            c.wait_timer = -1
        if c.pref_timer >= 0:
            self._timer_cancel(c.pref_timer)
            c.pref_timer = -1

    cdef int32_t _pref_ready(self, contact_t* c) noexcept:
        # The first of its preferred agents that is READY, or -1.
        cdef int32_t i
        for i in range(c.n_pref):
            if self.ready_epoch[c.pref[i]] and (self.agents[c.pref[i]].routable >> c.rch) & 1:
                return c.pref[i]
        return -1

    cdef bint _pref_live(self, const hentry_t* e) noexcept:
        cdef contact_t* c = &self.contacts[e.id]
        return c.state == CS_WAITING and (c.flags & CF_PREFERRED) != 0 and c.seq == e.c

    cdef int _fire_preferred(self, int32_t slot, time_us_t now) noexcept:
        # The preferred agents' time is over: normal routing from now on.
        cdef contact_t* c = &self.contacts[slot]
        c.pref_timer = -1
        if c.state != CS_WAITING:
            c.flags &= ~CF_PREFERRED
            return 0
        self._unwait(slot)
        c.flags &= ~CF_PREFERRED
        return self._contact_waits(slot, now)

    cdef int _enter_queue(self, int32_t slot, time_us_t now) noexcept:
        # The contact arrives in its queue (first, or by overflow): the queue's
        # limits apply, its step and maximum-wait timers start, then it is offered
        # or waits.
        cdef contact_t* c = &self.contacts[slot]
        cdef queue_t* q = &self.queues[c.queue]
        cdef int32_t t
        c.entered = now
        c.step = 0
        c.route = self.chains[c.chain + 1]
        if q.reject_unstaffed and self._unstaffed(c):
            return self._divert(slot, now, TK_NONE)
        if q.max_waiting and not (c.flags & CF_CALLBACK) \
                and (self.routes[c.route].n_cold == 0
                     or self._warm_route(&self.routes[c.route]) == 0) \
                and (self._pref_ready(c) < 0 if c.flags & CF_PREFERRED
                     else self._ready_in(&self.routes[c.route]) == 0) \
                and q.waiting - q.waiting_callbacks >= q.max_waiting:
            return self._divert(slot, now, TK_NONE)
        if q.n_steps > 1:
            t = self._timer_add(now + q.step_after[1], TK_STEP, slot)
            if t < 0:
                return E_NOMEM
            c.step_timer = t
        if q.max_wait_us > 0 and not (c.flags & CF_CALLBACK):
            t = self._timer_add(now + q.max_wait_us, TK_MAX_WAIT, slot)
            if t < 0:
                return E_NOMEM
            c.wait_timer = t
        return self._contact_waits(slot, now)

    cdef bint _unstaffed(self, const contact_t* c) noexcept:
        # No agent its last step admits is logged in.
        cdef route_t* r = &self.routes[self.chains[c.chain + self.queues[c.queue].n_steps]]
        cdef int32_t i
        for i in range(r.n_pools):
            if self.pools[r.pools[i]].n_logged:
                return False
        return True

    cdef int _divert(self, int32_t slot, time_us_t now, int32_t why) noexcept:
        # The queue cannot keep the contact (in no heap, with no agent): full or
        # unstaffed on arrival (why = TK_NONE), or waited its maximum (TK_MAX_WAIT).
        cdef contact_t* c = &self.contacts[slot]
        cdef queue_t* q = &self.queues[c.queue]
        cdef int32_t kind = q.overflow, target
        cdef int r
        self._cancel_wait_timers(c)
        c.flags &= ~(CF_EXPIRED | CF_PREFERRED)
        if why == TK_NONE and q.reject_unstaffed == 1 and self._unstaffed(c):
            kind = OV_NONE
        if kind == OV_CALLBACK and not (c.flags & CF_CALLBACK):
            # It keeps its place: same rank, same heap, no maximum wait any more.
            c.flags |= CF_CALLBACK
            c.channel = 3           # Channel.CALLBACK
            q.callbacks += 1
            r = self._emit(DK_CALLBACK, now, self._cid(slot), -1, c.queue)
            if r:
                return r
            return self._contact_waits(slot, now)
        if kind == OV_QUEUE:
            target = q.overflow_queue
            q.overflowed += 1
            r = self._emit(DK_OVERFLOW, now, self._cid(slot), -1, target)
            if r:
                return r
            c.queue = target
            c.chain = self.chains[c.chain]
            if not (c.flags & CF_OWN_PRIORITY):
                c.priority = self.queues[target].priority
            self.queues[target].offered += 1
            # Targets are earlier queues, so this recursion ends.
            return self._enter_queue(slot, now)
        if kind == OV_VOICEMAIL:
            q.voicemail += 1
            return self._end(slot, DK_VOICEMAIL, now)
        if why == TK_MAX_WAIT:
            q.timed_out += 1
            return self._end(slot, DK_TIMEOUT, now)
        q.rejected += 1
        return self._end(slot, DK_REJECT, now)

    cdef int _end(self, int32_t slot, int32_t kind, time_us_t now) noexcept:
        cdef int r = self._emit(kind, now, self._cid(slot), -1, self.contacts[slot].queue)
        self._free_contact(slot)
        return r

    cdef int _fire_step(self, int32_t slot, time_us_t now) noexcept:
        # The contact's next requirement step: more agents may take it from now on.
        cdef contact_t* c = &self.contacts[slot]
        cdef queue_t* q = &self.queues[c.queue]
        cdef int32_t t
        c.step_timer = -1
        c.step += 1
        if c.step + 1 < q.n_steps:
            t = self._timer_add(c.entered + q.step_after[c.step + 1], TK_STEP, slot)
            if t < 0:
                return E_NOMEM
            c.step_timer = t
        if c.state != CS_WAITING or c.flags & CF_PREFERRED:
            # Ringing, or waiting for its preferred agents: it takes the new
            # route when it comes back to its queue.
            c.route = self.chains[c.chain + 1 + c.step]
            return 0
        self._unwait(slot)
        c.route = self.chains[c.chain + 1 + c.step]
        return self._contact_waits(slot, now)

    cdef int _fire_max_wait(self, int32_t slot, time_us_t now) noexcept:
        cdef contact_t* c = &self.contacts[slot]
        c.wait_timer = -1
        if c.state != CS_WAITING:
            c.flags |= CF_EXPIRED   # acted on if the offer comes back
            return 0
        self._unwait(slot)
        return self._divert(slot, now, TK_MAX_WAIT)

    cdef void _logged(self, int32_t agent, int32_t delta) noexcept:
        cdef int32_t i
        for i in range(self.memb_off[agent], self._memb_end(agent)):
            self.pools[self.memb[i].pool].n_logged += delta

    cdef int _agent_ready(self, int32_t agent, time_us_t now, int32_t scan,
                          int32_t insert) noexcept:
        # The agent is free for the channels in `scan` and in none of its pools:
        # give it the best waiting contact of those channels over every route it
        # can serve, or put it in its pools for the channels in `insert`.
        cdef agent_t* a = &self.agents[agent]
        cdef pool_t* p
        cdef route_t* r
        cdef int32_t i, j, k, best = -1, slot
        cdef hentry_t* head = NULL
        cdef heap_t* h
        # Its cold pools have no waiting contacts.
        for i in range(self.memb_off[agent], self.memb_off[agent] + self.memb_warm[agent]):
            if not (scan >> (self.pool_kind[self.memb[i].pool] & PK_CHANNEL)) & 1 \
                    or self.pool_waiting[self.memb[i].pool] == 0:
                continue
            p = &self.pools[self.memb[i].pool]
            for j in range(p.n_routes):
                r = &self.routes[p.routes[j]]
                if r.waiting.n and (head == NULL or h_less(&r.waiting.e[0], head)):
                    head = &r.waiting.e[0]
                    best = p.routes[j]
        # Its preferred-agent heap only when something was put in it (has_pref):
        # at 100,000 agents the heap's record is one more miss per agent freed.
        k = -1
        if a.has_pref:
            h = &self.pref_heap[agent]
            while h.n and not self._pref_live(&h.e[0]):
                h_remove(h, 0, self.pref_pos)
            if h.n == 0:
                a.has_pref = 0
            elif scan == ALL_CHANNELS:
                k = 0
            else:
                # Some channels only (a multi-channel agent): the best live entry
                # of those channels, wherever it is in the heap (it holds few).
                for j in range(h.n):
                    if self._pref_live(&h.e[j]) and (scan >> self.contacts[h.e[j].id].rch) & 1 \
                            and (k < 0 or h_less(&h.e[j], &h.e[k])):
                        k = j
        if k >= 0 and (head == NULL or h_less(&h.e[k], head)):
            slot = h.e[k].id
            h_remove(h, k, self.pref_pos)
            self._unwait(slot)
            return self._offer(slot, agent, now)
        if best >= 0:
            slot = head.id
            self._unwait(slot)
            return self._offer(slot, agent, now)
        if not self.agents[agent].multi:
            a.idle_since = now
        return self._pool_insert(agent, insert)

    cdef int32_t _m_mask(self, int32_t agent) noexcept:
        # The channels a multi-channel agent may be offered a contact of now.
        cdef chan_t* ch = &self.chans[agent]
        cdef agent_t* a = &self.agents[agent]
        cdef int32_t x, blocked = 0, m = 0
        if ch.presence != AS_READY or a.pending != NO_PENDING or a.contact >= 0:
            return 0                # one offer rings at a time
        for x in range(N_CHANNELS):
            if ch.load[x]:
                blocked |= ch.blocks[x]
        for x in range(N_CHANNELS):
            if ch.load[x] < ch.cap[x] and not (blocked >> x) & 1:
                m |= 1 << x
        return m

    cdef int _m_settle(self, int32_t agent, time_us_t now) noexcept:
        # The one place a multi-channel agent's state moves: after any change of
        # its presence or its contacts, apply a pending not-ready once nothing is
        # held, set the summary state, and update its pools (dispatching the
        # channels that opened up).
        cdef agent_t* a = &self.agents[agent]
        cdef chan_t* ch = &self.chans[agent]
        cdef int32_t st, m, newly, x
        if a.pending != NO_PENDING and a.contact < 0 and ch.n_active == 0 \
                and ch.n_wrap == 0 and ch.presence == AS_READY:
            ch.presence = AS_NOT_READY
            a.reason = a.pending
            a.pending = NO_PENDING
        if ch.presence == AS_LOGGED_OUT:
            st = AS_LOGGED_OUT
        elif a.contact >= 0:
            st = AS_RESERVED
        elif ch.n_active:
            st = AS_BUSY
        elif ch.n_wrap:
            st = AS_WRAP_UP
        else:
            st = ch.presence
        if st != a.state:
            self._set_state(a, st, now)
        m = self._m_mask(agent)
        if a.routable & ~m:
            self._m_remove(agent, a.routable & ~m)
        newly = m & ~a.routable
        if newly == 0:
            return 0
        # The channels that opened up: their keys from now, then dispatch.
        for x in range(N_CHANNELS):
            if (newly >> x) & 1:
                ch.idle[x] = now
                ch.handled_at[x] = a.handled
                ch.talk_at[x] = a.talk_time_us
        return self._agent_ready(agent, now, newly, newly)

    cdef void _m_cancel_wraps(self, int32_t agent) noexcept:
        # Ends a multi-channel agent's wrap-ups at once (ready, not ready, logout).
        cdef chan_t* ch = &self.chans[agent]
        cdef int32_t t = ch.wrap_head
        while t >= 0:
            self._timer_cancel(t)
            ch.load[self.timers[t].obj & 3] -= 1
            ch.n_wrap -= 1
            t = self.timers[t].next
        ch.wrap_head = -1

    cdef void _m_wrap_ended(self, int32_t agent, int32_t t) noexcept:
        # Wrap-up timer t of a multi-channel agent fired: out of its list.
        cdef chan_t* ch = &self.chans[agent]
        cdef int32_t b = ch.wrap_head
        if b == t:
            ch.wrap_head = self.timers[t].next
            return
        while self.timers[b].next != t:
            b = self.timers[b].next
        self.timers[b].next = self.timers[t].next

    cdef int _free_ringer(self, int32_t agent, int32_t ch, time_us_t now) noexcept:
        # An agent stops ringing (its caller hung up, or another agent answered).
        if self.agents[agent].multi:
            self.chans[agent].load[ch] -= 1
            return self._m_settle(agent, now)
        return self._release(agent, now)

    cdef void _ring_failed(self, int32_t agent, int32_t slot, time_us_t now, int32_t state,
                           int32_t reason) noexcept:
        # An agent's offer ends unanswered: it goes to `state` (NOT_READY with
        # RONA, or LOGGED_OUT); the contact is the caller's to deal with.
        cdef agent_t* a = &self.agents[agent]
        cdef chan_t* ch = &self.chans[agent]
        a.contact = -1
        a.pending = NO_PENDING
        if state == AS_NOT_READY:
            a.reason = reason
            a.rona += 1
            self.queues[self.contacts[slot].queue].ring_no_answer += 1
        if a.multi:
            ch.load[self.contacts[slot].rch] -= 1
            ch.presence = <uint8_t> state
            self._m_settle(agent, now)
        else:
            self._set_state(a, state, now)

    cdef int _release(self, int32_t agent, time_us_t now) noexcept:
        cdef agent_t* a = &self.agents[agent]
        if a.pending != NO_PENDING:
            a.reason = a.pending
            a.pending = NO_PENDING
            self._set_state(a, AS_NOT_READY, now)
            return 0
        self._set_state(a, AS_READY, now)
        return self._agent_ready(agent, now, ALL_CHANNELS, ALL_CHANNELS)

    cdef int _take_back(self, int32_t slot, time_us_t now, int32_t agent_state,
                        int32_t reason) noexcept:
        # An offered contact returns to its queue; its agent goes to agent_state.
        # Every agent still ringing for it goes to agent_state.
        cdef contact_t* c = &self.contacts[slot]
        cdef agent_t* a
        cdef int32_t agent = c.agent, nxt
        if c.timer >= 0:
            self._timer_cancel(c.timer)
            c.timer = -1
        while agent >= 0:
            a = &self.agents[agent]
            nxt = a.ring_next
            a.ring_next = -1
            self._ring_failed(agent, slot, now, agent_state, reason)
            agent = nxt
        c.agent = -1
        c.state = CS_WAITING       # in no heap yet: _contact_waits decides
        return self._contact_waits(slot, now)

    cdef void _unring(self, int32_t slot, int32_t agent) noexcept:
        # One of several agents ringing for the contact stops ringing.
        cdef contact_t* c = &self.contacts[slot]
        cdef int32_t b = c.agent
        if b == agent:
            c.agent = self.agents[agent].ring_next
        else:
            while self.agents[b].ring_next != agent:
                b = self.agents[b].ring_next
            self.agents[b].ring_next = self.agents[agent].ring_next
        self.agents[agent].ring_next = -1
        self.agents[agent].contact = -1

    cdef void _free_contact(self, int32_t slot) noexcept:
        cdef contact_t* c = &self.contacts[slot]
        c.state = CS_FREE
        c.gen += 1
        c.agent = -1
        # Cannot fail: the free list was sized with the slots in c_arrive.
        self.free_slots[self.n_free] = slot
        self.n_free += 1

    # ------------------------------------------------------- C-level event API

    cdef int c_advance(self, time_us_t now) noexcept:
        cdef int32_t t, obj, kind, agent
        cdef time_us_t deadline
        cdef int r
        if now < 0 or now > _MAX_TIME:
            return E_CONFIG
        if now < self.now:
            return E_TIME
        while self.timer_heap.n and self.timer_heap.e[0].a <= now:
            t = self.timer_heap.e[0].id
            deadline = self.timer_heap.e[0].a
            kind = self.timers[t].kind
            obj = self.timers[t].obj
            self._timer_cancel(t)
            self.now = deadline
            if kind == TK_RING:
                self.contacts[obj].timer = -1
                r = 0
                agent = self.contacts[obj].agent
                while r == 0 and agent >= 0:
                    r = self._emit(DK_RONA, deadline, self._cid(obj), agent,
                                   self.contacts[obj].queue)
                    agent = self.agents[agent].ring_next
                if r == 0:
                    r = self._take_back(obj, deadline, AS_NOT_READY, REASON_RONA)
            elif kind == TK_STEP:
                r = self._fire_step(obj, deadline)
            elif kind == TK_MAX_WAIT:
                r = self._fire_max_wait(obj, deadline)
            elif kind == TK_PREFERRED:
                r = self._fire_preferred(obj, deadline)
            elif kind == TK_WRAP_CH:
                self._m_wrap_ended(obj >> 2, t)
                self.chans[obj >> 2].n_wrap -= 1
                self.chans[obj >> 2].load[obj & 3] -= 1
                r = self._emit(DK_WRAP_UP_END, deadline, -1, obj >> 2, -1)
                if r == 0:
                    r = self._m_settle(obj >> 2, deadline)
            else:
                self.agents[obj].timer = -1
                r = self._emit(DK_WRAP_UP_END, deadline, -1, obj, -1)
                if r == 0:
                    r = self._release(obj, deadline)
            if r != 0:
                return r
        self.now = now
        return 0

    cdef time_us_t c_next_deadline(self) noexcept:
        return self.timer_heap.e[0].a if self.timer_heap.n else -1

    cdef int c_login(self, int32_t agent, time_us_t now) noexcept:
        cdef int r
        cdef agent_t* a
        if agent < 0 or agent >= self.n_agents_:
            return E_UNKNOWN_AGENT
        r = self.c_advance(now)
        if r:
            return r
        a = &self.agents[agent]
        if a.state != AS_LOGGED_OUT:
            self.err_state = a.state
            return E_INVALID
        a.reason = 0
        a.pending = NO_PENDING
        self.chans[agent].presence = AS_NOT_READY
        self._set_state(a, AS_NOT_READY, now)
        self._logged(agent, 1)
        return 0

    cdef int c_logout(self, int32_t agent, time_us_t now) noexcept:
        cdef int r
        cdef int32_t slot
        cdef agent_t* a
        cdef chan_t* ch
        if agent < 0 or agent >= self.n_agents_:
            return E_UNKNOWN_AGENT
        r = self.c_advance(now)
        if r:
            return r
        a = &self.agents[agent]
        ch = &self.chans[agent]
        if a.multi:
            if a.state == AS_LOGGED_OUT or ch.n_active:
                self.err_state = a.state
                return E_INVALID
            self._logged(agent, -1)
            self._m_cancel_wraps(agent)
            slot = a.contact
            if slot >= 0 and (self.contacts[slot].agent != agent or a.ring_next >= 0):
                self._unring(slot, agent)
                self._ring_failed(agent, slot, now, AS_LOGGED_OUT, 0)
                return 0
            if slot >= 0:
                return self._take_back(slot, now, AS_LOGGED_OUT, 0)
            a.pending = NO_PENDING
            ch.presence = AS_LOGGED_OUT
            return self._m_settle(agent, now)
        if a.state == AS_LOGGED_OUT or a.state == AS_BUSY:
            self.err_state = a.state
            return E_INVALID
        self._logged(agent, -1)
        if a.state == AS_RESERVED:
            if self.contacts[a.contact].agent != agent or a.ring_next >= 0:
                # Others ring for the same contact: it stays offered to them.
                self._unring(a.contact, agent)
                a.pending = NO_PENDING
                self._set_state(a, AS_LOGGED_OUT, now)
                return 0
            return self._take_back(a.contact, now, AS_LOGGED_OUT, 0)
        if self.ready_epoch[agent]:
            self._pool_remove(agent)
        if a.timer >= 0:
            self._timer_cancel(a.timer)
            a.timer = -1
        a.pending = NO_PENDING
        self._set_state(a, AS_LOGGED_OUT, now)
        return 0

    cdef int c_set_ready(self, int32_t agent, time_us_t now) noexcept:
        cdef int r
        cdef agent_t* a
        cdef chan_t* ch
        if agent < 0 or agent >= self.n_agents_:
            return E_UNKNOWN_AGENT
        r = self.c_advance(now)
        if r:
            return r
        a = &self.agents[agent]
        ch = &self.chans[agent]
        if a.multi:
            if a.state != AS_LOGGED_OUT:
                if a.pending != NO_PENDING and (a.contact >= 0 or ch.n_active):
                    a.pending = NO_PENDING
                    return self._m_settle(agent, now)
                if ch.presence == AS_NOT_READY or ch.n_wrap:
                    self._m_cancel_wraps(agent)
                    a.pending = NO_PENDING
                    ch.presence = AS_READY
                    return self._m_settle(agent, now)
            self.err_state = a.state
            return E_INVALID
        if a.state == AS_RESERVED or a.state == AS_BUSY:
            if a.pending == NO_PENDING:
                self.err_state = a.state
                return E_INVALID
            a.pending = NO_PENDING
            return 0
        if a.state != AS_NOT_READY and a.state != AS_WRAP_UP:
            self.err_state = a.state
            return E_INVALID
        if a.timer >= 0:
            self._timer_cancel(a.timer)
            a.timer = -1
        a.pending = NO_PENDING
        self._set_state(a, AS_READY, now)
        return self._agent_ready(agent, now, ALL_CHANNELS, ALL_CHANNELS)

    cdef int c_set_not_ready(self, int32_t agent, time_us_t now, int32_t reason) noexcept:
        cdef int r
        cdef agent_t* a
        cdef chan_t* ch
        if agent < 0 or agent >= self.n_agents_:
            return E_UNKNOWN_AGENT
        if reason < 0:
            return E_CONFIG
        r = self.c_advance(now)
        if r:
            return r
        a = &self.agents[agent]
        if a.state == AS_LOGGED_OUT:
            self.err_state = a.state
            return E_INVALID
        ch = &self.chans[agent]
        if a.multi:
            if a.contact >= 0 or ch.n_active:
                a.pending = reason
            else:
                self._m_cancel_wraps(agent)
                a.pending = NO_PENDING
                a.reason = reason
                ch.presence = AS_NOT_READY
            return self._m_settle(agent, now)
        if a.state == AS_RESERVED or a.state == AS_BUSY:
            a.pending = reason
            return 0
        if self.ready_epoch[agent]:
            self._pool_remove(agent)
        if a.timer >= 0:
            self._timer_cancel(a.timer)
            a.timer = -1
        a.pending = NO_PENDING
        a.reason = reason
        if a.state != AS_NOT_READY:
            self._set_state(a, AS_NOT_READY, now)
        return 0

    cdef contact_id_t c_arrive(self, int32_t chain, time_us_t now, int32_t priority,
                               int32_t channel, const int32_t* pref, int32_t n_pref,
                               time_us_t pref_us) noexcept:
        # chain: a queue's base_chain, or a chain from Router._chain_for. priority:
        # QUEUE_PRIORITY for the queue's own. pref[0:n_pref]: distinct agents of
        # the queue's tenant (at most MAX_PREFERRED), the only ones who may take
        # it until now + pref_us.
        cdef int r
        cdef int32_t slot, cap
        cdef contact_t* c
        cdef queue_t* q
        cdef contact_id_t cid
        if chain < 0 or chain >= self.n_chains:
            return E_UNKNOWN_QUEUE
        r = self.c_advance(now)
        if r:
            return r
        if self.n_free:
            self.n_free -= 1
            slot = self.free_slots[self.n_free]
        else:
            # Reserve everything a contact may need later, so that no transition
            # can fail half-way for want of memory.
            slot = self.n_slots
            cap = self.cap_slots
            if grow(<void**> &self.contacts, &cap, slot + 1, sizeof(contact_t)) != 0:
                return E_NOMEM
            cap = self.cap_slots
            if grow(<void**> &self.contact_pos, &cap, slot + 1, sizeof(int32_t)) != 0:
                return E_NOMEM
            cap = self.cap_slots
            if grow(<void**> &self.free_slots, &cap, slot + 1, sizeof(int32_t)) != 0:
                return E_NOMEM
            cap = self.cap_slots
            if grow(<void**> &self.pref_pos, &cap, slot + 1, sizeof(int32_t)) != 0:
                return E_NOMEM
            self.cap_slots = cap
            # A ring, a step, a maximum-wait and a preferred-agents timer per
            # contact; a wrap-up per agent.
            if grow(<void**> &self.free_timers, &self.cap_free_timers,
                    4 * (slot + 1) + self.n_agents_, sizeof(int32_t)) != 0:
                return E_NOMEM
            memset(&self.contacts[slot], 0, sizeof(contact_t))   # no stale bytes, ever
            self.contact_pos[slot] = -1
            self.n_slots += 1
        c = &self.contacts[slot]
        c.state = CS_WAITING        # not yet in a heap: _enter_queue decides
        c.queue = self.routes[self.chains[chain + 1]].queue
        q = &self.queues[c.queue]
        c.chain = chain
        c.rch = self.routes[self.chains[chain + 1]].channel
        c.agent = -1
        c.flags = 0
        if priority == QUEUE_PRIORITY:
            c.priority = q.priority
        else:
            c.priority = priority
            c.flags = CF_OWN_PRIORITY
        c.channel = channel
        c.timer = -1
        c.step_timer = -1
        c.wait_timer = -1
        c.pref_timer = -1
        c.n_pref = 0
        if n_pref > 0 and pref_us > 0:
            c.n_pref = n_pref
            memcpy(c.pref, pref, n_pref * sizeof(int32_t))
            c.flags |= CF_PREFERRED
        c.arrival = now
        c.offered_at = -1
        c.answered_at = -1
        c.seq = self.seq
        self.seq += 1
        q.offered += 1
        cid = self._cid(slot)       # before a rejection could end it
        if c.flags & CF_PREFERRED:
            c.pref_timer = self._timer_add(now + pref_us, TK_PREFERRED, slot)
            if c.pref_timer < 0:
                return E_NOMEM
        r = self._enter_queue(slot, now)
        if r:
            return r
        return cid

    cdef int c_accept(self, int32_t agent, contact_id_t contact, time_us_t now) noexcept:
        cdef int r
        cdef int32_t slot, other, b
        cdef agent_t* a
        cdef contact_t* c
        cdef queue_t* q
        cdef time_us_t wait
        if agent < 0 or agent >= self.n_agents_:
            return E_UNKNOWN_AGENT
        slot = self._advance_to(contact, now)
        if slot < 0:
            return slot
        a = &self.agents[agent]
        if a.state != AS_RESERVED or a.contact != slot:
            self.err_state = a.state
            return E_INVALID
        c = &self.contacts[slot]
        q = &self.queues[c.queue]
        if c.timer >= 0:
            self._timer_cancel(c.timer)
            c.timer = -1
        self._cancel_wait_timers(c)
        c.flags &= ~(CF_EXPIRED | CF_PREFERRED)
        c.state = CS_ACTIVE
        c.answered_at = now
        wait = now - c.entered
        q.answered += 1
        q.wait_answered_us += wait
        if wait <= q.sl_threshold_us:
            q.answered_within_sl += 1
        self._set_state(a, AS_BUSY, now)
        if self.agents[agent].multi:
            a.contact = -1          # answered contacts are found by contact.agent
            self.chans[agent].n_active += 1
        # A parallel offer: the others stop ringing at once, in ring order.
        other = c.agent
        c.agent = agent
        while other >= 0:
            b = other
            other = self.agents[b].ring_next
            self.agents[b].ring_next = -1
            if b == agent:
                continue
            self.agents[b].contact = -1
            r = self._emit(DK_RELEASE, now, contact, b, c.queue)
            if r == 0:
                r = self._free_ringer(b, c.rch, now)
            if r:
                return r
        if self.agents[agent].multi:
            return self._m_settle(agent, now)
        return 0

    cdef int c_no_answer(self, int32_t agent, contact_id_t contact, time_us_t now) noexcept:
        cdef int r
        cdef int32_t slot
        cdef agent_t* a
        if agent < 0 or agent >= self.n_agents_:
            return E_UNKNOWN_AGENT
        slot = self._advance_to(contact, now)
        if slot < 0:
            return slot
        a = &self.agents[agent]
        if a.state != AS_RESERVED or a.contact != slot:
            self.err_state = a.state
            return E_INVALID
        if self.contacts[slot].agent != agent or a.ring_next >= 0:
            # Others ring for the same contact: it stays offered to them.
            self._unring(slot, agent)
            self._ring_failed(agent, slot, now, AS_NOT_READY, REASON_RONA)
            return 0
        return self._take_back(slot, now, AS_NOT_READY, REASON_RONA)

    cdef int c_complete(self, int32_t agent, contact_id_t contact, time_us_t now,
                        time_us_t wrap_up_us) noexcept:
        cdef int r
        cdef int32_t slot, t, ch
        cdef agent_t* a
        cdef contact_t* c
        if agent < 0 or agent >= self.n_agents_:
            return E_UNKNOWN_AGENT
        if wrap_up_us < -1:
            return E_CONFIG
        slot = self._advance_to(contact, now)
        if slot < 0:
            return slot
        a = &self.agents[agent]
        c = &self.contacts[slot]
        if self.agents[agent].multi:
            if c.state != CS_ACTIVE or c.agent != agent:
                self.err_state = a.state
                return E_INVALID
            a.talk_time_us += now - c.answered_at
            a.handled += 1
            ch = c.rch
            self.chans[agent].n_active -= 1
            self._free_contact(slot)
            if wrap_up_us < 0:
                wrap_up_us = a.wrap_up_us
            if wrap_up_us > 0:
                t = self._timer_add(now + wrap_up_us, TK_WRAP_CH, agent * 4 + ch)
                if t < 0:
                    return E_NOMEM
                self.timers[t].next = self.chans[agent].wrap_head
                self.chans[agent].wrap_head = t
                self.chans[agent].n_wrap += 1
            else:
                self.chans[agent].load[ch] -= 1
            return self._m_settle(agent, now)
        if a.state != AS_BUSY or a.contact != slot:
            self.err_state = a.state
            return E_INVALID
        a.talk_time_us += now - c.answered_at
        a.handled += 1
        a.contact = -1
        self._free_contact(slot)
        if wrap_up_us < 0:
            wrap_up_us = a.wrap_up_us
        if wrap_up_us > 0:
            self._set_state(a, AS_WRAP_UP, now)
            t = self._timer_add(now + wrap_up_us, TK_WRAP_UP, agent)
            if t < 0:
                return E_NOMEM
            a.timer = t
            return 0
        return self._release(agent, now)

    cdef int c_abandon(self, contact_id_t contact, time_us_t now) noexcept:
        cdef int r
        cdef int32_t slot, agent, other
        cdef contact_t* c
        cdef queue_t* q
        slot = self._advance_to(contact, now)
        if slot < 0:
            return slot
        c = &self.contacts[slot]
        q = &self.queues[c.queue]
        if c.state == CS_ACTIVE:
            self.err_state = c.state
            return E_INVALID
        q.abandoned += 1
        if now - c.entered <= q.sl_threshold_us:
            q.abandoned_within_sl += 1
        self._cancel_wait_timers(c)
        if c.state == CS_WAITING:
            self._unwait(slot)
            self._free_contact(slot)
            return 0
        agent = c.agent
        if c.timer >= 0:
            self._timer_cancel(c.timer)
            c.timer = -1
        self._free_contact(slot)
        while agent >= 0:
            # Every agent ringing for it is released, in ring order.
            other = self.agents[agent].ring_next
            self.agents[agent].ring_next = -1
            self.agents[agent].contact = -1
            r = self._free_ringer(agent, c.rch, now)
            if r:
                return r
            agent = other
        return 0

    cdef int c_request_callback(self, contact_id_t contact, time_us_t now) noexcept:
        cdef int r
        cdef int32_t slot
        cdef contact_t* c
        cdef queue_t* q
        slot = self._advance_to(contact, now)
        if slot < 0:
            return slot
        c = &self.contacts[slot]
        if c.state != CS_WAITING or c.flags & CF_CALLBACK:
            self.err_state = c.state
            return E_INVALID
        # Same heap, same rank: it keeps its place.
        q = &self.queues[c.queue]
        c.flags |= CF_CALLBACK
        c.channel = 3               # Channel.CALLBACK
        q.callbacks += 1
        q.waiting_callbacks += 1
        if c.wait_timer >= 0:
            self._timer_cancel(c.wait_timer)
            c.wait_timer = -1
        return 0

    # ------------------------------------------------------------- Python API

    cdef _raise(self, int code, str op, agent=None, contact=None):
        if code == E_UNKNOWN_AGENT:
            raise UnknownAgent(f"{op}: no agent {agent} (agents are 0..{self.n_agents_ - 1})")
        if code == E_UNKNOWN_QUEUE:
            raise UnknownQueue(f"{op}: no queue {agent}")
        if code == E_UNKNOWN_CONTACT:
            raise UnknownContact(f"{op}: no live contact {contact} (never issued, or ended)")
        if code == E_TIME:
            raise TimeError(f"{op}: now={self._last_now} is earlier than the router's time {self.now}")
        if code == E_CONFIG:
            raise ConfigError(f"{op}: an argument is out of range (now must be in [0, 2**62))")
        if code == E_INVALID:
            if agent is None:
                raise InvalidTransition(
                    f"{op}: contact {contact} is {_CONTACT_STATES[self.err_state].name}")
            what = f"agent {agent} is {_AGENT_STATES[self.err_state].name}"
            if contact is not None:
                what += f" (contact {contact} is not the one it "
                what += "handles)" if op == "complete" else "was offered)"
            raise InvalidTransition(f"{op}: {what}")
        if code == E_NOMEM:
            raise MemoryError(f"{op}: out of memory")
        raise RuntimeError(f"{op}: unexpected result {code}")

    def login(self, agent, now):
        """LOGGED_OUT -> NOT_READY (reason 0). Raises InvalidTransition when logged in."""
        cdef int r = self.c_login(<int32_t> agent if 0 <= agent < self.n_agents_ else -1, _time(now))
        if r:
            self._last_now = now
            self._raise(r, "login", agent)

    def logout(self, agent, now):
        """Log out from NOT_READY, READY or WRAP_UP; from RESERVED the offered
        contact goes back to its queue. Raises InvalidTransition when BUSY."""
        cdef int r = self.c_logout(<int32_t> agent if 0 <= agent < self.n_agents_ else -1, _time(now))
        if r:
            self._last_now = now
            self._raise(r, "logout", agent)

    def set_ready(self, agent, now):
        """NOT_READY or WRAP_UP -> READY (then offered the best waiting contact).
        In RESERVED/BUSY it cancels a pending not-ready."""
        cdef int r = self.c_set_ready(<int32_t> agent if 0 <= agent < self.n_agents_ else -1, _time(now))
        if r:
            self._last_now = now
            self._raise(r, "set_ready", agent)

    def set_not_ready(self, agent, now, reason=0):
        """READY, NOT_READY or WRAP_UP -> NOT_READY(reason >= 0); in RESERVED/BUSY
        the not-ready is pending until the agent is released."""
        if not 0 <= agent < self.n_agents_:
            raise UnknownAgent(f"set_not_ready: no agent {agent}")
        if not 0 <= reason <= 0x7FFFFFFF:
            raise ConfigError(f"set_not_ready: reason must be in [0, 2**31), got {reason}")
        cdef int r = self.c_set_not_ready(
            <int32_t> agent if 0 <= agent < self.n_agents_ else -1, _time(now), <int32_t> reason)
        if r:
            self._last_now = now
            self._raise(r, "set_not_ready", agent)

    def arrive(self, queue, now, *, priority=None, channel=Channel.VOICE,
               require=None, preferred=None, preferred_us=0):
        """A contact arrives in `queue` at `now`; returns its id.

        It is offered at once to the best eligible READY agent (see
        :meth:`take_decisions`) or waits.

        Args:
            priority: overrides the queue's priority, in [-1e6, 1e6].
            channel: a :class:`Channel`.
            require: skill -> minimum level added to every step's requirement
                of the queue (the higher minimum wins per skill).
            preferred: up to 4 agents of the queue's tenant, best first (for
                example the last agents who served this customer): for
                ``preferred_us`` from now only they may take the contact, the
                first of them READY at once, or the first to become READY; then
                normal routing. Skills are not required of them.
            preferred_us: how long the preference holds (> 0 with ``preferred``).

        Raises:
            UnknownQueue, UnknownAgent (a preferred agent), ConfigError, TimeError.
        """
        if not 0 <= queue < self.n_queues_:
            raise UnknownQueue(f"arrive: no queue {queue} (queues are 0..{self.n_queues_ - 1})")
        cdef int32_t q = <int32_t> queue
        cdef int32_t prio = QUEUE_PRIORITY if priority is None else _priority(priority)
        try:
            ch = int(Channel(channel))
        except ValueError:
            raise ConfigError(f"arrive: unknown channel {channel!r}") from None
        cdef int32_t chain = self.queues[q].base_chain
        cdef int32_t pref[4]
        cdef int32_t n_pref = 0
        cdef time_us_t pref_us = 0
        if preferred:
            try:
                agents = [int(a) for a in preferred]
            except (TypeError, ValueError):
                raise ConfigError("arrive: preferred must be a list of agent ids") from None
            for a in agents:
                if not 0 <= a < self.n_agents_:
                    raise UnknownAgent(f"arrive: no agent {a} (preferred)")
                if self.agents[<int32_t> a].tenant != self.queues[q].tenant:
                    raise ConfigError(f"arrive: preferred agent {a} belongs to another tenant")
            if len(agents) > MAX_PREFERRED or len(set(agents)) != len(agents):
                raise ConfigError(
                    f"arrive: preferred must be at most {MAX_PREFERRED} distinct agents")
            pref_us = _duration(preferred_us, "preferred_us")
            if pref_us == 0:
                raise ConfigError("arrive: preferred agents need preferred_us > 0")
            for n_pref in range(len(agents)):
                pref[n_pref] = agents[n_pref]
            n_pref = len(agents)
        if require or ch:
            chain = self._chain_for(q, _requirement(require, "require"), ch)
        if not 0 <= now <= MAX_TIME_US:
            raise ConfigError(f"arrive: now must be in [0, 2**62), got {now}")
        cdef contact_id_t c = self.c_arrive(chain, _time(now), prio, ch, pref, n_pref, pref_us)
        if c < 0:
            self._last_now = now
            self._raise(<int> c, "arrive", queue)
        return c

    def request_callback(self, contact, now):
        """A WAITING caller asks to be called back: the contact becomes a callback
        (channel CALLBACK), keeps its place and rank, no longer times out, and is
        offered later like any contact, as an outbound contact to dial.

        Raises:
            UnknownContact; InvalidTransition when it is not WAITING or is
            already a callback; TimeError, ConfigError.
        """
        cdef int r = self.c_request_callback(_id(contact), _time(now))
        if r:
            self._last_now = now
            self._raise(r, "request_callback", None, contact)

    def accept(self, agent, contact, now):
        """The agent answers the contact offered to it: RESERVED -> BUSY."""
        cdef int r = self.c_accept(<int32_t> agent if 0 <= agent < self.n_agents_ else -1,
                                   _id(contact), _time(now))
        if r:
            self._last_now = now
            self._raise(r, "accept", agent, contact)

    def no_answer(self, agent, contact, now):
        """The agent did not answer: it goes NOT_READY (REASON_RONA) and the contact
        returns to its queue, keeping its arrival time."""
        cdef int r = self.c_no_answer(<int32_t> agent if 0 <= agent < self.n_agents_ else -1,
                                      _id(contact), _time(now))
        if r:
            self._last_now = now
            self._raise(r, "no_answer", agent, contact)

    def complete(self, agent, contact, now, *, wrap_up_us=None):
        """The contact ends: BUSY -> WRAP_UP for `wrap_up_us` (default: the agent's),
        or released at once when that is 0."""
        cdef int64_t wrap = -1
        if not 0 <= agent < self.n_agents_:
            raise UnknownAgent(f"complete: no agent {agent}")
        if wrap_up_us is not None:
            wrap = _duration(wrap_up_us, "wrap_up_us")
        cdef int r = self.c_complete(<int32_t> agent if 0 <= agent < self.n_agents_ else -1,
                                     _id(contact), _time(now), wrap)
        if r:
            self._last_now = now
            self._raise(r, "complete", agent, contact)

    def abandon(self, contact, now):
        """The caller leaves while WAITING or OFFERED (its agent is then released)."""
        cdef int r = self.c_abandon(_id(contact), _time(now))
        if r:
            self._last_now = now
            self._raise(r, "abandon", None, contact)

    def advance(self, now):
        """Fire every timer due at or before `now`, each at its own deadline."""
        cdef int r = self.c_advance(_time(now))
        if r:
            self._last_now = now
            self._raise(r, "advance")

    def next_deadline(self):
        """The earliest pending timer deadline in microseconds, or None."""
        return self.timer_heap.e[0].a if self.timer_heap.n else None

    def take_decisions(self):
        """Return the decisions made since the last call (oldest first) and forget them."""
        cdef int32_t i
        cdef decision_t* d
        out = []
        for i in range(self.n_dec):
            d = &self.dec[i]
            out.append(_tuple_new(Decision, (_KINDS[d.kind], d.time, d.contact, d.agent, d.queue)))
        self.n_dec = 0
        return out

    cdef int32_t _agent_arg(self, object agent, str op) except -1:
        if not 0 <= agent < self.n_agents_:
            raise UnknownAgent(f"{op}: no agent {agent}")
        return <int32_t> agent

    def agent_state(self, agent):
        """The agent's :class:`AgentState`."""
        return _AGENT_STATES[self.agents[self._agent_arg(agent, "agent_state")].state]

    def agent_contact(self, agent):
        """The contact offered to or handled by the agent, or None."""
        cdef int32_t slot = self.agents[self._agent_arg(agent, "agent_contact")].contact
        return None if slot < 0 else self._cid(slot)

    def contact_state(self, contact):
        """A live contact's :class:`ContactState`; UnknownContact once it has ended."""
        cdef int32_t slot = self._slot(_id(contact))
        if slot < 0:
            raise UnknownContact(f"contact_state: no live contact {contact}")
        return _CONTACT_STATES[self.contacts[slot].state]

    def agent_contacts(self, agent):
        """Every contact the agent holds: the one ringing for it (if any) first, then
        those it answered, oldest first (a classic agent holds at most one)."""
        cdef int32_t aid = self._agent_arg(agent, "agent_contacts"), j
        out = []
        if self.agents[aid].contact >= 0:
            out.append(self._cid(self.agents[aid].contact))
        if self.agents[aid].multi:
            active = sorted((self.contacts[j].answered_at, self.contacts[j].seq, j)
                            for j in range(self.n_slots)
                            if self.contacts[j].state == CS_ACTIVE and self.contacts[j].agent == aid)
            out.extend(self._cid(j) for _, _, j in active)
        return tuple(out)

    def agent_load(self, agent):
        """The contacts the agent holds per channel, a tuple indexed by
        :class:`Channel`: a multi-channel agent's ringing, answered and in wrap-up;
        a classic agent's contact (ringing or answered) on its channel."""
        cdef int32_t aid = self._agent_arg(agent, "agent_load")
        cdef chan_t* ch = &self.chans[aid]
        if self.agents[aid].multi:
            return tuple(ch.load[x] for x in range(N_CHANNELS))
        out = [0] * N_CHANNELS
        if self.agents[aid].contact >= 0:
            out[self.contacts[self.agents[aid].contact].rch] = 1
        return tuple(out)

    def contact_channel(self, contact):
        """A live contact's :class:`Channel` (CALLBACK once it became a callback)."""
        cdef int32_t slot = self._slot(_id(contact))
        if slot < 0:
            raise UnknownContact(f"contact_channel: no live contact {contact}")
        return Channel(self.contacts[slot].channel)

    def contact_queue(self, contact):
        """The queue a live contact is in now (it changes when it overflows)."""
        cdef int32_t slot = self._slot(_id(contact))
        if slot < 0:
            raise UnknownContact(f"contact_queue: no live contact {contact}")
        return self.contacts[slot].queue

    def contact_agent(self, contact):
        """The agent a live contact is offered to or handled by, or None."""
        cdef int32_t slot = self._slot(_id(contact))
        if slot < 0:
            raise UnknownContact(f"contact_agent: no live contact {contact}")
        return None if self.contacts[slot].agent < 0 else self.contacts[slot].agent

    cdef object _waiting_key(self, int32_t slot):
        cdef contact_t* c = &self.contacts[slot]
        return (c.arrival - <time_us_t> c.priority * self.queues[c.queue].priority_weight_us,
                c.arrival, c.seq)

    cdef int32_t _waiting_arg(self, object contact, str op) except -1:
        cdef int32_t slot = self._slot(_id(contact))
        if slot < 0:
            raise UnknownContact(f"{op}: no live contact {contact}")
        if self.contacts[slot].state != CS_WAITING:
            raise InvalidTransition(
                f"{op}: contact {contact} is {_CONTACT_STATES[self.contacts[slot].state].name}")
        return slot

    def snapshot(self):
        """The router's whole state as bytes (MessagePack): :meth:`restore` rebuilds
        a router that makes the same decisions from there on as this one would.
        Decision hooks are not included (set them again). O(state)."""
        cdef int32_t i, j
        cdef pool_t* p
        cdef queue_t* q
        cdef route_t* r
        cdef rfifo_t* f
        # Memberships packed, without the free entries after each agent's list.
        cdef int32_t n = self.n_agents_
        cdef int32_t* off = <int32_t*> malloc((n + 1) * sizeof(int32_t))
        cdef member_t* packed = <member_t*> malloc(
            ((self.memb_off[n] if n else 0) + 1) * sizeof(member_t))
        if off == NULL or packed == NULL:
            free(off)
            free(packed)
            raise MemoryError()
        off[0] = 0
        self._memb_copy(packed, off, NULL)
        offsets = _raw(off, (n + 1) * sizeof(int32_t) if n else 0)
        memb = _raw(packed, off[n] * sizeof(member_t))
        free(off)
        free(packed)
        st = {
            "version": SNAPSHOT_VERSION,
            "scalars": [self.now, self.rng, self.seq, self.timer_seq, self.n_agents_,
                        self.n_queues_, self.n_pools, self.n_routes, self.n_chains,
                        self.n_slots, self.n_free, self.n_timer_slots, self.n_free_timers,
                        self.n_dec],
            "agents": _raw(self.agents, self.n_agents_ * sizeof(agent_t)),
            "chans": _raw(self.chans, self.n_agents_ * sizeof(chan_t)),
            "ready_epoch": _raw(self.ready_epoch, self.n_agents_ * sizeof(uint32_t)),
            "memb_off": offsets,
            "memb_warm": _raw(self.memb_warm, self.n_agents_ * sizeof(int32_t)),
            "memb": memb,
            "skills": [_raw(self.agent_skills[i].s, self.agent_skills[i].n * sizeof(skill_t))
                       for i in range(self.n_agents_)],
            "pref": [_raw(self.pref_heap[i].e, self.pref_heap[i].n * sizeof(hentry_t))
                     for i in range(self.n_agents_)],
            "contacts": _raw(self.contacts, self.n_slots * sizeof(contact_t)),
            "contact_pos": _raw(self.contact_pos, self.n_slots * sizeof(int32_t)),
            "free_slots": _raw(self.free_slots, self.n_free * sizeof(int32_t)),
            "timers": _raw(self.timers, self.n_timer_slots * sizeof(timer_t)),
            "timer_pos": _raw(self.timer_pos, self.n_timer_slots * sizeof(int32_t)),
            "free_timers": _raw(self.free_timers, self.n_free_timers * sizeof(int32_t)),
            "timer_heap": _raw(self.timer_heap.e, self.timer_heap.n * sizeof(hentry_t)),
            "dec": _raw(self.dec, self.n_dec * sizeof(decision_t)),
            "chains": _raw(self.chains, self.n_chains * sizeof(int32_t)),
            "pool_ready": _raw(self.pool_ready, self.n_pools * sizeof(int32_t)),
            "pool_cold": _raw(self.pool_cold, self.n_pools * sizeof(uint8_t)),
            "queues": [], "pools": [], "routes": [],
            "pool_index": [[k, v] for k, v in self._pool_index.items()],
            "route_index": [[k, v] for k, v in self._route_index.items()],
            "agents_keys": [[k, v] for k, v in self._agents_keys.items()],
            "chain_index": [[k, v] for k, v in self._chain_index.items()],
            "queue_steps": list(self._queue_steps),
        }
        for i in range(self.n_queues_):
            q = &self.queues[i]
            st["queues"].append([_raw(q, sizeof(queue_t)),
                                 _raw(q.routes, q.n_routes * sizeof(int32_t)),
                                 _raw(q.step_after, q.n_steps * sizeof(time_us_t))])
        for i in range(self.n_pools):
            p = &self.pools[i]
            f = &p.idle
            idle = b"".join(_raw(f_at(f, j), sizeof(rentry_t)) for j in range(f.n))
            st["pools"].append([
                _raw(p, sizeof(pool_t)),
                _raw(p.member_agent, p.n_members * sizeof(int32_t)),
                _raw(p.routes, p.n_routes * sizeof(int32_t)),
                _raw(p.req, p.req_off[p.n_conj] * sizeof(skill_t)),
                _raw(p.req_off, (p.n_conj + 1) * sizeof(int32_t)),
                self._ready_blob(p),
                idle,
                # bits has room for cap_words words (rs_resize counts on it)
                _raw(p.order.bits, max(p.order.n_words, p.order.cap_words) * sizeof(uint64_t)),
                _raw(p.order.words.t, (p.order.words.cap + 1) * sizeof(int32_t)
                     if p.order.words.t != NULL else 0),
            ])
        for i in range(self.n_routes):
            r = &self.routes[i]
            st["routes"].append([_raw(r, sizeof(route_t)),
                                 _raw(r.waiting.e, r.waiting.n * sizeof(hentry_t)),
                                 _raw(r.pools, r.n_pools * sizeof(int32_t))])
        return msgspec_msgpack.encode(st)

    cdef bytes _ready_blob(self, pool_t* p):
        # A heap or keyed pool's entries, as heap entries (a: the first key,
        # b: the idle time).
        cdef rentry_t e
        cdef int32_t k, j
        cdef rfifo_t* f
        parts = [_raw(p.ready.e, p.ready.n * sizeof(rentry_t))]
        for k in range(p.keyed.n):
            f = kb_at(&p.keyed, k)
            for j in range(f.n):
                e = f_at(f, j)[0]
                e.b = e.a
                e.a = p.keyed.base + k
                parts.append(_raw(&e, sizeof(rentry_t)))
        return b"".join(parts)

    @classmethod
    def restore(cls, data):
        """A router rebuilt from :meth:`snapshot` bytes (of this version of agner).

        Raises:
            ConfigError: the bytes are not a snapshot this router can read.
        """
        try:
            st = msgspec_msgpack.decode(data)
            if not isinstance(st, dict) or st.get("version") != SNAPSHOT_VERSION:
                raise ValueError(f"not a version-{SNAPSHOT_VERSION} router snapshot")
            return _restore(cls(), st)
        except (ValueError, TypeError, KeyError, IndexError, msgspec_DecodeError) as exc:
            raise ConfigError(f"restore: {exc}") from None

    def set_decision_hook(self, queue, hook, *, budget_us=1000):
        """Let `hook` choose the agent for the contacts of `queue` (a custom strategy).

        When a contact of the queue is to be offered and eligible agents are
        READY (dispatch case 1), the core calls ``hook(info)`` with a
        :class:`HookContact` (the contact, its queue, priority, channel, arrival,
        wait so far, and ``candidates``: the READY eligible agents by id). It must
        return one of the candidates. If it raises, returns anything else, or
        takes longer than ``budget_us`` of wall-clock time, the queue's own
        strategy decides instead, as if there were no hook (the fallback is
        deterministic; the hook itself must be, for a replay to repeat). Parallel
        offers: the hook chooses the first agent, the strategy the others.
        ``hook=None`` removes it. This is the slow path (a Python call per
        decision): docs/BENCHMARKS.md has its cost. :meth:`hook_stats` counts
        calls, failures and late answers.

        Raises:
            UnknownQueue; ConfigError (hook not callable, budget out of range).
        """
        if not 0 <= queue < self.n_queues_:
            raise UnknownQueue(f"set_decision_hook: no queue {queue}")
        if hook is None:
            self._hooks.pop(queue, None)
            self.queues[<int32_t> queue].hooked = 0
            return
        if not callable(hook):
            raise ConfigError(f"set_decision_hook: {hook!r} is not callable")
        budget = _duration(budget_us, "budget_us")
        self._hooks[queue] = [hook, budget * 1000, 0, 0, 0, 0]
        self.queues[<int32_t> queue].hooked = 1

    def hook_stats(self, queue):
        """``(calls, failures, late, total_ns)`` of the queue's decision hook: calls
        made, answers refused (raised, or not a candidate), answers too late (both
        fell back on the strategy), and the wall-clock time spent in it."""
        if not 0 <= queue < self.n_queues_:
            raise UnknownQueue(f"hook_stats: no queue {queue}")
        entry = self._hooks.get(queue)
        if entry is None:
            return (0, 0, 0, 0)
        return (entry[2], entry[3], entry[4], entry[5])

    def position(self, contact):
        """A WAITING contact's place in its queue: 1 + the contacts of the same queue
        that rank ahead of it (docs/ROUTING.md, the rank key). O(contacts): a query.

        Raises:
            UnknownContact; InvalidTransition when it is not WAITING.
        """
        cdef int32_t slot = self._waiting_arg(contact, "position"), j
        cdef int32_t queue = self.contacts[slot].queue
        mine = self._waiting_key(slot)
        ahead = 0
        for j in range(self.n_slots):
            if self.contacts[j].state == CS_WAITING and self.contacts[j].queue == queue \
                    and self._waiting_key(j) < mine:
                ahead += 1
        return ahead + 1

    def estimated_wait_us(self, contact, now):
        """The expected remaining wait of a WAITING contact, in microseconds, from the
        current state, or None when no eligible agent is staffed.

        ``(ahead + 1) * handle / staffed``: `ahead` are the WAITING contacts (of
        any queue) that need exactly the same agents (its route's agents_key)
        and rank ahead of it; `staffed` its eligible agents logged in and not
        NOT_READY; `handle` their mean handle time so far (talk + wrap-up per
        completed contact), or the queue's ``handle_estimate_us`` before any.
        Agents free up one after another at about ``staffed / handle`` per
        microsecond, and it needs `ahead + 1` of them. Later requirement steps
        and preferred agents are not foreseen. docs/ROUTING.md has its measured
        error. O(contacts + agents of its pool): a query.

        Raises:
            UnknownContact; InvalidTransition when it is not WAITING; TimeError.
        """
        cdef int32_t slot = self._waiting_arg(contact, "estimated_wait_us"), j, m
        if not 0 <= now <= MAX_TIME_US:
            raise ConfigError(f"estimated_wait_us: now must be in [0, 2**62), got {now}")
        if now < self.now:
            raise TimeError(f"estimated_wait_us: now={now} is earlier than the router's time {self.now}")
        cdef contact_t* c = &self.contacts[slot]
        cdef route_t* r = &self.routes[c.route]
        cdef int32_t key = r.agents_key, i
        cdef pool_t* p
        cdef agent_t* a
        cdef int64_t staffed = 0, handled = 0
        cdef double work = 0.0
        for i in range(r.n_pools):
            p = &self.pools[r.pools[i]]
            for m in range(p.n_members):
                a = &self.agents[p.member_agent[m]]
                if a.state != AS_LOGGED_OUT and a.state != AS_NOT_READY:
                    staffed += 1
                    handled += a.handled
                    work += <double> a.talk_time_us + <double> a.handled * <double> a.wrap_up_us
        if staffed == 0:
            return None
        mine = self._waiting_key(slot)
        ahead = 0
        if not (c.flags & CF_PREFERRED):
            for j in range(self.n_slots):
                if self.contacts[j].state == CS_WAITING and j != slot \
                        and not (self.contacts[j].flags & CF_PREFERRED) \
                        and self.routes[self.contacts[j].route].agents_key == key \
                        and self._waiting_key(j) < mine:
                    ahead += 1
        handle = work / handled if handled else <double> self.queues[c.queue].handle_estimate_us
        return <int64_t> floor((ahead + 1) * handle / staffed + 0.5)

    def queue_stats(self, queue, now):
        """Real-time :class:`QueueStats` of a queue at `now` (no timer is fired)."""
        if not 0 <= queue < self.n_queues_:
            raise UnknownQueue(f"queue_stats: no queue {queue}")
        if not 0 <= now <= MAX_TIME_US:
            raise ConfigError(f"queue_stats: now must be in [0, 2**62), got {now}")
        if now < self.now:
            raise TimeError(f"queue_stats: now={now} is earlier than the router's time {self.now}")
        cdef queue_t* q = &self.queues[<int32_t> queue]
        cdef int32_t i, j
        cdef heap_t* h
        cdef time_us_t oldest = now
        cdef int64_t seen = 0
        cdef contact_t* c
        # O(waiting in this queue): a query, not a routing decision.
        for i in range(q.n_routes):
            h = &self.routes[q.routes[i]].waiting
            seen += h.n
            for j in range(h.n):
                if self.contacts[h.e[j].id].entered < oldest:
                    oldest = self.contacts[h.e[j].id].entered
        if seen < q.waiting:
            # Some wait for their preferred agents, in no route: look at them all.
            for j in range(self.n_slots):
                c = &self.contacts[j]
                if c.state == CS_WAITING and c.queue == queue and c.flags & CF_PREFERRED \
                        and c.entered < oldest:
                    oldest = c.entered
        return make_queue_stats(
            q.offered, q.answered, q.abandoned, q.abandoned_within_sl, q.waiting,
            now - oldest, q.answered_within_sl, q.wait_answered_us, q.ring_no_answer,
            overflowed=q.overflowed, voicemail=q.voicemail, rejected=q.rejected,
            timed_out=q.timed_out,
            callbacks=q.callbacks, waiting_callbacks=q.waiting_callbacks)

    def agent_stats(self, agent, now):
        """Real-time :class:`AgentStats` of an agent at `now` (no timer is fired)."""
        cdef int32_t aid = self._agent_arg(agent, "agent_stats")
        if not 0 <= now <= MAX_TIME_US:
            raise ConfigError(f"agent_stats: now must be in [0, 2**62), got {now}")
        if now < self.now:
            raise TimeError(f"agent_stats: now={now} is earlier than the router's time {self.now}")
        cdef agent_t* a = &self.agents[aid]
        times = [a.time_in_state[i] for i in range(N_AGENT_STATES)]
        times[a.state] += now - a.state_since
        reason = a.reason if a.state == AS_NOT_READY else 0
        return make_agent_stats(a.state, reason, a.handled, a.talk_time_us, a.rona, tuple(times))
