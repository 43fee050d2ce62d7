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
from libc.stdlib cimport free, malloc, realloc

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


def run(Router r, const int32_t[::1] arrival_queue, int64_t dt_us, int64_t handle_us,
        int64_t patience_us, int64_t break_us, int rona_per_mille, uint64_t seed,
        const int32_t[::1] arrival_chain=None):
    """Drive `r` (agents logged in and ready, decisions taken) through the workload.

    `arrival_chain`, if given, is each arrival's step chain (``Router._chain_for``:
    its queue and channel) instead of its queue's voice chain.

    Returns (events, offers, checksum): every router call counts as an event;
    checksum folds the sequence of offered agents, to compare drivers.
    """
    cdef int64_t n = arrival_queue.shape[0], i = 0, ab = 0, events = 0, offers = 0
    cdef int64_t n_agents = r.n_agents_
    cdef uint64_t checksum = 0
    cdef ring_t active, breaks
    cdef int64_t* arrived = <int64_t*> malloc((n if n else 1) * sizeof(int64_t))
    cdef int64_t* live = NULL
    cdef int64_t live_cap = 0
    cdef time_us_t t_arr, t_act, t_brk, t_ab, t_dl, t
    cdef contact_id_t c
    cdef int64_t slot, k
    cdef int64_t* p
    # Contacts in progress at once: one per classic agent, its capacities' sum
    # for a multi-channel one.
    cdef int64_t held = 0, x
    for k in range(n_agents):
        if r.chans[k].multi:
            for x in range(4):
                held += r.chans[k].cap[x]
        else:
            held += 1
    if arrived == NULL or ring_init(&active, held + 1) or ring_init(&breaks, n_agents + 1):
        raise MemoryError()
    # live[slot]: id of the unanswered contact in that slot, -1 when answered or gone
    live_cap = n_agents * 2 + 1024
    live = <int64_t*> malloc(live_cap * sizeof(int64_t))
    if live == NULL:
        raise MemoryError()
    try:
        while i < n:
            t_arr = (i + 1) * dt_us
            t_act = active.t[active.head] if active.n else NEVER
            t_brk = breaks.t[breaks.head] if breaks.n else NEVER
            t_ab = (ab + 1) * dt_us + patience_us if ab < i else NEVER
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
                    raise RuntimeError("advance refused")
            elif t == t_act:
                if r.c_complete(<int32_t> active.a[active.head], active.b[active.head], t, -1) != 0:
                    raise RuntimeError("complete refused")
                ring_pop(&active)
            elif t == t_brk:
                if r.c_set_ready(<int32_t> breaks.a[breaks.head], t) != 0:
                    raise RuntimeError("set_ready refused")
                ring_pop(&breaks)
            elif t == t_ab:
                c = arrived[ab]
                ab += 1
                if live[slot_of(c)] != c:
                    continue            # answered: nothing happens, no event
                if r.c_abandon(c, t) != 0:
                    raise RuntimeError("abandon refused")
                live[slot_of(c)] = -1
            else:
                if arrival_chain is None:
                    c = r.c_arrive(r.queues[arrival_queue[i]].base_chain, t, QUEUE_PRIORITY, 0,
                                   NULL, 0, 0)
                else:
                    k = arrival_chain[i]
                    c = r.c_arrive(k, t, QUEUE_PRIORITY,
                                   r.routes[r.chains[k + 1]].channel, NULL, 0, 0)
                if c < 0:
                    raise RuntimeError("arrive refused")
                slot = slot_of(c)
                if slot >= live_cap:
                    k = slot * 2 + 1
                    p = <int64_t*> realloc(live, k * sizeof(int64_t))
                    if p == NULL:
                        raise MemoryError()
                    live = p
                    live_cap = k
                live[slot] = c
                arrived[i] = c
                i += 1
            events += 1
            if r.n_dec:
                if handle_decisions(r, &active, &breaks, live, seed, &offers, &checksum,
                                    &events, handle_us, break_us, rona_per_mille):
                    raise RuntimeError("accept or no_answer refused")
    finally:
        free(arrived)
        free(live)
        ring_free(&active)
        ring_free(&breaks)
    return events, offers, checksum


