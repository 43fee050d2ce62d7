# The router benchmark's workload, driven through the C-level API.
#
# A small event loop of its own: arrivals every `dt`, answered at once (or, for
# `rona_per_mille` of offers, not answered, the agent back after `break_us`),
# talk for `handle_us`, abandonment after `patience_us` in queue, and the
# router's own timers (wrap-up). Handle time, patience and break are fixed so
# that each pending list is first-in first-out: the loop costs O(1) per event
# and the router is what is measured. sim/routerbench.py runs the very same
# workload through the Python API, so the three drivers can be checked against
# each other decision for decision.

from libc.stdint cimport int32_t, int64_t, uint64_t
from cpython.ref cimport PyObject
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memset

from agner.core._types cimport (
    AS_RESERVED, DK_OFFER, QUEUE_PRIORITY, contact_id_t, slot_of, time_us_t,
)
from agner.core.router cimport Router


cdef inline uint64_t mix(uint64_t x) noexcept nogil:
    # SplitMix64's finaliser: decides, per offer, whether it goes unanswered.
    x += <uint64_t> 0x9E3779B97F4A7C15
    x = (x ^ (x >> 30)) * <uint64_t> 0xBF58476D1CE4E5B9
    x = (x ^ (x >> 27)) * <uint64_t> 0x94D049BB133111EB
    return x ^ (x >> 31)


cdef struct ring_t:
    int64_t* t
    int64_t* a
    int64_t* b
    int64_t head
    int64_t n
    int64_t cap


cdef int ring_init(ring_t* r, int64_t cap) noexcept:
    r.t = <int64_t*> malloc(cap * sizeof(int64_t))
    r.a = <int64_t*> malloc(cap * sizeof(int64_t))
    r.b = <int64_t*> malloc(cap * sizeof(int64_t))
    r.head = 0
    r.n = 0
    r.cap = cap
    return 0 if (r.t != NULL and r.a != NULL and r.b != NULL) else -1


cdef void ring_free(ring_t* r) noexcept:
    free(r.t)
    free(r.a)
    free(r.b)


cdef inline void ring_push(ring_t* r, int64_t t, int64_t a, int64_t b) noexcept:
    cdef int64_t i = r.head + r.n
    if i >= r.cap:
        i -= r.cap
    r.t[i] = t
    r.a[i] = a
    r.b[i] = b
    r.n += 1


cdef inline void ring_pop(ring_t* r) noexcept:
    r.head += 1
    if r.head == r.cap:
        r.head = 0
    r.n -= 1


cdef int64_t NEVER = 0x7FFFFFFFFFFFFFFF


cdef int handle_decisions(Router r, ring_t* active, ring_t* breaks, int64_t* live,
                          uint64_t seed, int64_t* offers, uint64_t* checksum,
                          int64_t* events, time_us_t handle_us, time_us_t break_us,
                          int rona_per_mille) noexcept:
    cdef int32_t i = 0, agent
    cdef contact_id_t contact
    cdef time_us_t t
    while i < r.n_dec:
        # Re-read through r.dec: a call below may append (and reallocate).
        if r.dec[i].kind == DK_OFFER:
            agent = r.dec[i].agent
            contact = r.dec[i].contact
            t = r.dec[i].time
            if r.agents[agent].contact != slot_of(contact) or r.agents[agent].state != AS_RESERVED:
                i += 1              # a parallel offer another agent has answered
                continue
            checksum[0] = checksum[0] * <uint64_t> 1000003 + <uint64_t> (agent + 1)
            offers[0] += 1
            events[0] += 1
            if <int> (mix(seed + <uint64_t> offers[0]) % 1000) < rona_per_mille:
                if r.c_no_answer(agent, contact, t) != 0:
                    return -1
                ring_push(breaks, t + break_us, agent, 0)
            else:
                if r.c_accept(agent, contact, t) != 0:
                    return -1
                live[slot_of(contact)] = -1
                ring_push(active, t + handle_us, agent, contact)
        i += 1
    r.n_dec = 0
    return 0


cdef struct drive_t:
    # One center's run: its arrivals, its pending completions, breaks and
    # abandons, and what it has counted so far.
    const int32_t* queue      # arrival i's queue
    const int32_t* chain      # arrival i's step chain, or NULL: its queue's voice chain
    int64_t n                 # arrivals
    int64_t i                 # arrivals so far
    int64_t ab                # abandon checks so far (arrival ab is the next)
    int64_t events
    int64_t offers
    uint64_t checksum
    ring_t active             # (completion time, agent, contact)
    ring_t breaks             # (back-from-break time, agent, -)
    int64_t* arrived          # arrival i's contact id
    int64_t* live             # live[slot]: the unanswered contact there, -1 when none
    int64_t live_cap
    int64_t dt_us
    int64_t handle_us
    int64_t patience_us
    int64_t break_us
    int rona_per_mille
    uint64_t seed


cdef enum:
    DR_NOMEM = -1
    DR_ADVANCE = -2
    DR_COMPLETE = -3
    DR_SET_READY = -4
    DR_ABANDON = -5
    DR_ARRIVE = -6
    DR_ANSWER = -7

cdef dict _REFUSED = {
    DR_ADVANCE: "advance refused", DR_COMPLETE: "complete refused",
    DR_SET_READY: "set_ready refused", DR_ABANDON: "abandon refused",
    DR_ARRIVE: "arrive refused", DR_ANSWER: "accept or no_answer refused",
}


cdef int drive_init(drive_t* d, Router r, const int32_t[::1] arrival_queue,
                    const int32_t[::1] arrival_chain, int64_t dt_us, int64_t handle_us,
                    int64_t patience_us, int64_t break_us, int rona_per_mille,
                    uint64_t seed) noexcept:
    """Set `d` up to drive `r` (agents logged in and ready, decisions taken).
    The arrays must outlive `d`. -1 when memory is short (drive_free then)."""
    cdef int64_t n_agents = r.n_agents_, k, x
    # Contacts in progress at once: one per classic agent, its capacities' sum
    # for a multi-channel one.
    cdef int64_t held = 0
    memset(d, 0, sizeof(drive_t))
    d.n = arrival_queue.shape[0]
    d.queue = &arrival_queue[0] if d.n else NULL
    d.chain = &arrival_chain[0] if arrival_chain is not None and d.n else NULL
    d.dt_us = dt_us
    d.handle_us = handle_us
    d.patience_us = patience_us
    d.break_us = break_us
    d.rona_per_mille = rona_per_mille
    d.seed = seed
    for k in range(n_agents):
        if r.agents[k].multi:
            for x in range(4):
                held += r.chans[k].cap[x]
        else:
            held += 1
    d.arrived = <int64_t*> malloc((d.n if d.n else 1) * sizeof(int64_t))
    d.live_cap = n_agents * 2 + 1024
    d.live = <int64_t*> malloc(d.live_cap * sizeof(int64_t))
    if d.arrived == NULL or d.live == NULL:
        return -1
    if ring_init(&d.active, held + 1) or ring_init(&d.breaks, n_agents + 1):
        return -1
    return 0


cdef void drive_free(drive_t* d) noexcept:
    free(d.arrived)
    free(d.live)
    ring_free(&d.active)
    ring_free(&d.breaks)
    d.arrived = NULL
    d.live = NULL


cdef inline int drive_step(drive_t* d, Router r) noexcept:
    """The center's next event: 1 when all arrivals are in, else 0, or a DR_ code."""
    cdef time_us_t t_arr, t_act, t_brk, t_ab, t_dl, t
    cdef contact_id_t c
    cdef int64_t slot, k
    cdef int64_t* p
    if d.i >= d.n:
        return 1
    t_arr = (d.i + 1) * d.dt_us
    t_act = d.active.t[d.active.head] if d.active.n else NEVER
    t_brk = d.breaks.t[d.breaks.head] if d.breaks.n else NEVER
    t_ab = (d.ab + 1) * d.dt_us + d.patience_us if d.ab < d.i else NEVER
    t_dl = r.c_next_deadline()
    if t_dl < 0:
        t_dl = NEVER
    # Ties in a fixed order: timers, completions, breaks, abandons, arrivals.
    t = t_dl
    if t_act < t:
        t = t_act
    if t_brk < t:
        t = t_brk
    if t_ab < t:
        t = t_ab
    if t_arr < t:
        t = t_arr
    if t == t_dl:
        if r.c_advance(t) != 0:
            return DR_ADVANCE
    elif t == t_act:
        if r.c_complete(<int32_t> d.active.a[d.active.head], d.active.b[d.active.head],
                        t, -1) != 0:
            return DR_COMPLETE
        ring_pop(&d.active)
    elif t == t_brk:
        if r.c_set_ready(<int32_t> d.breaks.a[d.breaks.head], t) != 0:
            return DR_SET_READY
        ring_pop(&d.breaks)
    elif t == t_ab:
        c = d.arrived[d.ab]
        d.ab += 1
        if d.live[slot_of(c)] != c:
            return 0            # answered: nothing happens, no event
        if r.c_abandon(c, t) != 0:
            return DR_ABANDON
        d.live[slot_of(c)] = -1
    else:
        if d.chain == NULL:
            c = r.c_arrive(r.queues[d.queue[d.i]].base_chain, t, QUEUE_PRIORITY, 0,
                           NULL, 0, 0)
        else:
            k = d.chain[d.i]
            c = r.c_arrive(k, t, QUEUE_PRIORITY, r.routes[r.chains[k + 1]].channel,
                           NULL, 0, 0)
        if c < 0:
            return DR_ARRIVE
        slot = slot_of(c)
        if slot >= d.live_cap:
            k = slot * 2 + 1
            p = <int64_t*> realloc(d.live, k * sizeof(int64_t))
            if p == NULL:
                return DR_NOMEM
            d.live = p
            d.live_cap = k
        d.live[slot] = c
        d.arrived[d.i] = c
        d.i += 1
    d.events += 1
    if r.n_dec:
        if handle_decisions(r, &d.active, &d.breaks, d.live, d.seed, &d.offers,
                            &d.checksum, &d.events, d.handle_us, d.break_us,
                            d.rona_per_mille):
            return DR_ANSWER
    return 0


cdef _refused(int code):
    if code == DR_NOMEM:
        raise MemoryError()
    raise RuntimeError(_REFUSED[code])


def run(Router r, const int32_t[::1] arrival_queue, int64_t dt_us, int64_t handle_us,
        int64_t patience_us, int64_t break_us, int rona_per_mille, uint64_t seed,
        const int32_t[::1] arrival_chain=None):
    """Drive `r` (agents logged in and ready, decisions taken) through the workload.

    `arrival_chain`, if given, is each arrival's step chain (``Router._chain_for``:
    its queue and channel) instead of its queue's voice chain.

    Returns (events, offers, checksum): every router call counts as an event;
    checksum folds the sequence of offered agents, to compare drivers.
    """
    cdef drive_t d
    cdef int code = 0
    try:
        if drive_init(&d, r, arrival_queue, arrival_chain, dt_us, handle_us, patience_us,
                      break_us, rona_per_mille, seed) != 0:
            raise MemoryError()
        while code == 0:
            code = drive_step(&d, r)
        if code < 0:
            _refused(code)
        return d.events, d.offers, d.checksum
    finally:
        drive_free(&d)


def run_many(list routers, list arrival_queues, int64_t dt_us, int64_t handle_us,
             int64_t patience_us, int64_t break_us, int rona_per_mille, uint64_t seed):
    """Drive several independent centers at once, one event of a center picked
    at random (seeded) at a time, until each has had all its arrivals.

    The routing work per event is that of one center alone; the memory touched
    is that of all of them. Returns [(events, offers, checksum)] per center, as
    `run` would for each alone.
    """
    cdef Py_ssize_t n = len(routers), k
    cdef drive_t* d = <drive_t*> calloc(n if n else 1, sizeof(drive_t))
    cdef int64_t* left = <int64_t*> malloc((n if n else 1) * sizeof(int64_t))
    cdef PyObject** rs = <PyObject**> malloc((n if n else 1) * sizeof(PyObject*))
    cdef int64_t n_left = 0, j, draws = 0
    cdef const int32_t[::1] q
    cdef int code
    if len(arrival_queues) != n:
        raise ValueError("one arrival list per router")
    try:
        if d == NULL or left == NULL or rs == NULL:
            raise MemoryError()
        for k in range(n):
            q = arrival_queues[k]
            rs[k] = <PyObject*> routers[k]
            if drive_init(&d[k], <Router> routers[k], q, None, dt_us, handle_us,
                          patience_us, break_us, rona_per_mille, seed) != 0:
                raise MemoryError()
            left[n_left] = k
            n_left += 1
        while n_left:
            draws += 1
            j = <int64_t> (mix(seed ^ (<uint64_t> draws << 20)) % <uint64_t> n_left)
            k = left[j]
            code = drive_step(&d[k], <Router> rs[k])
            if code == 1:
                n_left -= 1
                left[j] = left[n_left]
            elif code < 0:
                _refused(code)
        return [(d[k].events, d[k].offers, d[k].checksum) for k in range(n)]
    finally:
        if d != NULL:
            for k in range(n):
                drive_free(&d[k])
        free(d)
        free(left)
        free(rs)
