# The simulator's discrete-event loop: it feeds the routing core virtual time.
#
# Events (arrivals, completions, abandons) sit in a heap keyed on (time,
# sequence), so same-time events run first-in first-out and a run repeats
# exactly for a seed; the router's own timers (wrap-up, ring) are merged in
# through Router.c_next_deadline. Random variates come from a xoshiro256**
# generator in C. Nothing per event is a Python object or an allocation:
# storage grows with the contacts in the system, never with the calls run.
#
# Each queue's contacts arrive on its channel (voice, chat, ...), on the router's
# step chain for that channel; a multi-channel agent holds several at once and
# each completes on its own event.
#
# Offers are answered at once (a simulated agent picks up), so a contact's wait
# ends at its OFFER decision. Statistics count the contacts that arrive after
# the warm-up, per queue they arrived in (an overflow to another queue does not
# move them: the caller called this one) and per interval of the day they arrived in;
# sim/engine.py turns them into the planner's figures. Arrival rates may change
# by interval (a daily profile, repeating): arrivals are then drawn by thinning
# a Poisson stream at the queue's highest rate, which is exact.

from libc.math cimport cos, exp, log, log1p, sqrt, M_PI
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memset

from agner.core._structs cimport grow
from agner.core._types cimport (
    AS_BUSY, AS_LOGGED_OUT, AS_NOT_READY, AS_RESERVED, AS_WRAP_UP, CF_CALLBACK, CS_WAITING,
    DK_CALLBACK, DK_OFFER, DK_OVERFLOW, DK_REJECT, DK_TIMEOUT, DK_VOICEMAIL, DK_WRAP_UP_END,
    N_CHANNELS, QUEUE_PRIORITY, contact_id_t, slot_of, time_us_t,
)
from agner.core.router cimport Router

import numpy as np

cdef enum:
    EV_ARRIVAL = 0            # x: queue
    EV_COMPLETE = 1           # x: contact, y: agent
    EV_ABANDON = 2            # x: contact
    EV_SHIFT_START = 3        # y: agent
    EV_SHIFT_END = 4          # y: agent

cdef enum:
    REASON_SHIFT_END = 1      # the not-ready reason of an agent whose shift is over

cdef enum:
    D_NONE = 0                # never (patience absent)
    D_DETERMINISTIC = 1       # p0
    D_EXPONENTIAL = 2         # p0 = mean
    D_LOGNORMAL = 3           # p0 = mu, p1 = sigma of the underlying normal
    D_GAMMA = 4               # p0 = shape k, p1 = scale theta
    D_EMPIRICAL = 5           # samples[0:n], drawn uniformly

#: Distribution kinds, as sim/engine.py names them.
DIST_KINDS = {"none": D_NONE, "deterministic": D_DETERMINISTIC,
              "exponential": D_EXPONENTIAL, "lognormal": D_LOGNORMAL,
              "gamma": D_GAMMA, "empirical": D_EMPIRICAL}


cdef struct dist_t:
    int32_t kind
    double p0
    double p1
    double* samples           # seconds, for D_EMPIRICAL
    int32_t n


cdef struct ev_t:
    time_us_t t
    int64_t seq
    int64_t x
    int32_t kind
    int32_t y


cdef struct qstat_t:
    int64_t offered
    int64_t answered
    int64_t abandoned
    int64_t delayed           # not offered at the moment it arrived
    int64_t answered_within
    int64_t overflowed        # moved on to another queue (counted here still)
    int64_t voicemail         # ended in voicemail
    int64_t rejected          # ended: a queue was full or unstaffed
    int64_t timed_out         # ended: a queue's maximum wait, nowhere to go
    int64_t callbacks         # became callbacks
    double wait_answered_s
    double wait_abandoned_s
    double wait_diverted_s    # waits that ended in voicemail, rejection or time-out


cdef packed struct rec_t:
    # One contact's record, written when it ends (answered and completed, or
    # abandoned). Field order and types match RECORD_DTYPE below.
    int64_t arrival_us
    int64_t answered_us       # -1: abandoned
    int64_t ended_us
    int32_t queue
    int32_t agent             # -1: not answered
    int32_t outcome           # OUTCOMES index

#: The numpy dtype of the record chunks passed to the records sink.
RECORD_DTYPE = np.dtype([("arrival_us", "<i8"), ("answered_us", "<i8"), ("ended_us", "<i8"),
                         ("queue", "<i4"), ("agent", "<i4"), ("outcome", "<i4")])

#: How a contact ended, by a record's `outcome`.
OUTCOMES = ("answered", "abandoned", "voicemail", "rejected", "timed_out")

cdef enum:
    OUT_ANSWERED = 0
    OUT_ABANDONED = 1
    OUT_VOICEMAIL = 2
    OUT_REJECTED = 3
    OUT_TIMED_OUT = 4

cdef enum:
    REC_CHUNK = 65536


cdef inline bint ev_less(const ev_t* x, const ev_t* y) noexcept nogil:
    return x.t < y.t or (x.t == y.t and x.seq < y.seq)


cdef class EventLoop:
    """Drives a Router with random arrivals, talk times and patience.

    Built and run by sim/engine.py; see there for the meaning of the arguments.
    """
    cdef Router r
    cdef uint64_t s[4]
    cdef bint have_spare
    cdef double spare
    cdef ev_t* heap
    cdef int32_t n_ev
    cdef int32_t cap_ev
    cdef int64_t seq
    cdef int32_t n_queues
    cdef int32_t n_int                # intervals of the day (1: no profile)
    cdef time_us_t interval_us        # their length (0: no profile)
    cdef double* rate                 # arrivals per second, [queue * n_int + interval]
    cdef double* rate_max             # per queue: the thinning stream's rate
    cdef unsigned char* constant      # per queue: one rate all day, no thinning
    cdef int32_t* slot_interval       # per contact slot: interval it arrived in
    cdef dist_t* handle
    cdef dist_t* patience
    cdef time_us_t* threshold         # service-level threshold per queue
    cdef int32_t* chain               # per queue: the router's step chain its contacts arrive on
    cdef int32_t* channel             # per queue: its contacts' channel
    cdef qstat_t* st
    cdef time_us_t* arrived_at        # per contact slot
    cdef unsigned char* counted       # per contact slot: arrived after warm-up
    cdef int32_t cap_slots
    cdef unsigned char* off_shift     # per agent: its shift is over, log out when free
    # Contacts held (ringing, answered, in wrap-up) x time, per agent: what its
    # occupancy cannot tell of a multi-channel agent. `held_now` is the count
    # since `held_since`; _touch books it whenever the agent may have changed.
    cdef int64_t* held_area
    cdef time_us_t* held_since
    cdef int32_t* held_now
    cdef int32_t n_agents
    cdef bint started                 # the first arrivals are scheduled
    cdef time_us_t* answered_at       # per contact slot, for the records
    cdef int32_t* slot_queue          # per contact slot, for the records
    cdef rec_t* rec                   # records not yet handed to the sink
    cdef int32_t n_rec
    cdef object sink                  # callable(numpy chunk) or None: no records
    cdef time_us_t warmup
    cdef readonly int64_t arrivals
    cdef readonly int64_t events
    cdef object _keep                 # numpy arrays the C pointers point into

    def __cinit__(self, Router router, rates, handle, patience, thresholds_us,
                  int64_t seed, int64_t warmup_us, int64_t interval_us=0, shifts=(),
                  records=None, chains=None, channels=None):
        # records: None, or a callable given chunks (numpy arrays of RECORD_DTYPE)
        # of the records of contacts that arrived after the warm-up.
        # shifts: (agent, start_us, end_us) triples; the agent is logged out
        # outside them (agents with no shift are the caller's to log in).
        # rates[q]: a number (all day), or one number per interval of the day.
        # chains[q], channels[q]: the step chain (Router._chain_for) and channel
        # of queue q's arrivals; None: the queue's voice chain, voice.
        cdef int32_t q, i
        self.r = router
        self.n_queues = len(rates)
        if self.n_queues != router.n_queues_:
            raise ValueError("one arrival rate per queue of the router is needed")
        lengths = {len(x) for x in rates if not isinstance(x, (int, float))}
        if len(lengths) > 1:
            raise ValueError("every arrival profile needs the same number of intervals")
        self.n_int = lengths.pop() if lengths else 1
        if self.n_int < 1 or (self.n_int > 1 and interval_us <= 0):
            raise ValueError("an arrival profile needs intervals of a length > 0")
        self.interval_us = interval_us if interval_us > 0 else 0
        cdef int64_t cells = <int64_t> self.n_queues * self.n_int
        self.rate = <double*> malloc(cells * sizeof(double))
        self.rate_max = <double*> malloc(self.n_queues * sizeof(double))
        self.constant = <unsigned char*> malloc(self.n_queues)
        self.handle = <dist_t*> malloc(self.n_queues * sizeof(dist_t))
        self.patience = <dist_t*> malloc(self.n_queues * sizeof(dist_t))
        self.threshold = <time_us_t*> malloc(self.n_queues * sizeof(time_us_t))
        self.st = <qstat_t*> malloc(cells * sizeof(qstat_t))
        self.chain = <int32_t*> malloc(self.n_queues * sizeof(int32_t))
        self.channel = <int32_t*> malloc(self.n_queues * sizeof(int32_t))
        if not (self.rate and self.rate_max and self.constant and self.handle
                and self.patience and self.threshold and self.st and self.chain
                and self.channel):
            raise MemoryError()
        memset(self.st, 0, cells * sizeof(qstat_t))
        self._keep = []
        if (chains is None) != (channels is None):
            raise ValueError("give chains and channels together")
        if chains is not None and not (len(chains) == len(channels) == self.n_queues):
            raise ValueError("one chain and one channel per queue of the router are needed")
        for q in range(self.n_queues):
            row = [float(rates[q])] * self.n_int if isinstance(rates[q], (int, float)) \
                else [float(x) for x in rates[q]]
            for i in range(self.n_int):
                if not row[i] >= 0:
                    raise ValueError(f"queue {q}: arrival rates must be >= 0")
                self.rate[q * self.n_int + i] = row[i]
            self.rate_max[q] = max(row)
            self.constant[q] = min(row) == max(row)
            self.threshold[q] = int(thresholds_us[q])
            if chains is None:
                self.chain[q] = router.queues[q].base_chain
                self.channel[q] = 0
            else:
                if not (0 <= chains[q] < router.n_chains and 0 <= channels[q] < N_CHANNELS):
                    raise ValueError(f"queue {q}: bad chain {chains[q]} or channel {channels[q]}")
                self.chain[q] = chains[q]
                self.channel[q] = channels[q]
            self._dist(&self.handle[q], handle[q])
            self._dist(&self.patience[q], patience[q])
        self.warmup = warmup_us
        self._seed(<uint64_t> seed)
        self.sink = records
        if records is not None:
            self.rec = <rec_t*> malloc(REC_CHUNK * sizeof(rec_t))
            if self.rec == NULL:
                raise MemoryError()
        self.off_shift = <unsigned char*> malloc(router.n_agents_ + 1)
        self.n_agents = router.n_agents_
        self.held_area = <int64_t*> malloc((self.n_agents + 1) * sizeof(int64_t))
        self.held_since = <time_us_t*> malloc((self.n_agents + 1) * sizeof(time_us_t))
        self.held_now = <int32_t*> malloc((self.n_agents + 1) * sizeof(int32_t))
        if not (self.off_shift and self.held_area and self.held_since and self.held_now):
            raise MemoryError()
        memset(self.off_shift, 0, router.n_agents_ + 1)
        for i in range(self.n_agents):
            self.held_area[i] = 0
            self.held_since[i] = router.now
            self.held_now[i] = self._held(i)
        for agent, start, end in shifts:
            if not (0 <= agent < router.n_agents_ and 0 <= start < end):
                raise ValueError(f"bad shift {(agent, start, end)}")
            if self._push(start, EV_SHIFT_START, 0, agent) or self._push(end, EV_SHIFT_END, 0, agent):
                raise MemoryError()

    def __dealloc__(self):
        free(self.rate)
        free(self.rate_max)
        free(self.constant)
        free(self.slot_interval)
        free(self.off_shift)
        free(self.held_area)
        free(self.held_since)
        free(self.held_now)
        free(self.answered_at)
        free(self.slot_queue)
        free(self.rec)
        free(self.handle)
        free(self.patience)
        free(self.threshold)
        free(self.chain)
        free(self.channel)
        free(self.st)
        free(self.heap)
        free(self.arrived_at)
        free(self.counted)

    cdef _dist(self, dist_t* d, spec):
        kind, p0, p1, samples = spec
        d.kind = DIST_KINDS[kind]
        d.p0 = p0
        d.p1 = p1
        d.samples = NULL
        d.n = 0
        cdef double[::1] view
        if d.kind == D_EMPIRICAL:
            arr = np.ascontiguousarray(samples, dtype=np.float64)
            self._keep.append(arr)
            view = arr
            d.samples = &view[0]
            d.n = <int32_t> arr.shape[0]

    # -- random variates ---------------------------------------------------

    cdef void _seed(self, uint64_t seed) noexcept:
        cdef int i
        cdef uint64_t z
        for i in range(4):
            # SplitMix64 spreads the one seed over the generator's state.
            seed += <uint64_t> 0x9E3779B97F4A7C15
            z = seed
            z = (z ^ (z >> 30)) * <uint64_t> 0xBF58476D1CE4E5B9
            z = (z ^ (z >> 27)) * <uint64_t> 0x94D049BB133111EB
            self.s[i] = z ^ (z >> 31)

    cdef inline uint64_t _next(self) noexcept:
        # xoshiro256**
        cdef uint64_t result = ((self.s[1] * 5) << 7 | (self.s[1] * 5) >> 57) * 9
        cdef uint64_t t = self.s[1] << 17
        self.s[2] ^= self.s[0]
        self.s[3] ^= self.s[1]
        self.s[1] ^= self.s[2]
        self.s[0] ^= self.s[3]
        self.s[2] ^= t
        self.s[3] = (self.s[3] << 45) | (self.s[3] >> 19)
        return result

    cdef inline double _uniform(self) noexcept:
        # In [0, 1), 53 random bits.
        return (self._next() >> 11) * (1.0 / 9007199254740992.0)

    cdef inline double _normal(self) noexcept:
        cdef double u, v, r
        if self.have_spare:
            self.have_spare = False
            return self.spare
        u = 1.0 - self._uniform()
        v = self._uniform()
        r = sqrt(-2.0 * log(u))
        self.spare = r * cos(2.0 * M_PI * v - M_PI / 2.0)    # = r sin(2 pi v)
        self.have_spare = True
        return r * cos(2.0 * M_PI * v)

    cdef double _gamma(self, double k) noexcept:
        # Marsaglia and Tsang; for k < 1 through Gamma(k + 1) * U^(1/k).
        cdef double d, c, x, v, u
        if k < 1.0:
            return self._gamma(k + 1.0) * exp(log(1.0 - self._uniform()) / k)
        d = k - 1.0 / 3.0
        c = 1.0 / sqrt(9.0 * d)
        while True:
            x = self._normal()
            v = 1.0 + c * x
            if v <= 0.0:
                continue
            v = v * v * v
            u = 1.0 - self._uniform()
            if log(u) < 0.5 * x * x + d - d * v + d * log(v):
                return d * v

    cdef double _draw_s(self, const dist_t* d) noexcept:
        """A variate in seconds; a negative result means never."""
        if d.kind == D_EXPONENTIAL:
            return -d.p0 * log1p(-self._uniform())
        if d.kind == D_DETERMINISTIC:
            return d.p0
        if d.kind == D_LOGNORMAL:
            return exp(d.p0 + d.p1 * self._normal())
        if d.kind == D_GAMMA:
            return self._gamma(d.p0) * d.p1
        if d.kind == D_EMPIRICAL:
            return d.samples[<int32_t> (self._uniform() * d.n)]
        return -1.0

    cdef inline time_us_t _us(self, double seconds) noexcept:
        # At least 1 us, so that what follows an event is strictly later.
        cdef time_us_t t = <time_us_t> (seconds * 1e6 + 0.5)
        return t if t > 0 else 1

    # -- the event heap ----------------------------------------------------

    cdef int _push(self, time_us_t t, int32_t kind, int64_t x, int32_t y) noexcept:
        cdef int32_t i, p
        cdef ev_t e
        if self.n_ev == self.cap_ev and grow(<void**> &self.heap, &self.cap_ev, self.n_ev + 1,
                                            sizeof(ev_t)) != 0:
            return -1
        e.t = t
        e.seq = self.seq
        e.x = x
        e.kind = kind
        e.y = y
        self.seq += 1
        i = self.n_ev
        self.n_ev += 1
        while i > 0:
            p = (i - 1) >> 1
            if not ev_less(&e, &self.heap[p]):
                break
            self.heap[i] = self.heap[p]
            i = p
        self.heap[i] = e
        return 0

    cdef void _pop(self) noexcept:
        cdef ev_t x
        cdef int32_t i = 0, c, n
        self.n_ev -= 1
        n = self.n_ev
        if n == 0:
            return
        x = self.heap[n]
        while True:
            c = 2 * i + 1
            if c >= n:
                break
            if c + 1 < n and ev_less(&self.heap[c + 1], &self.heap[c]):
                c += 1
            if not ev_less(&self.heap[c], &x):
                break
            self.heap[i] = self.heap[c]
            i = c
        self.heap[i] = x

    # -- running -------------------------------------------------------------

    cdef int _remember(self, contact_id_t c, time_us_t t) noexcept:
        cdef int64_t slot = slot_of(c)
        cdef int32_t cap
        if slot >= self.cap_slots:
            cap = self.cap_slots
            if grow(<void**> &self.arrived_at, &cap, <int32_t> slot + 1, sizeof(time_us_t)) != 0:
                return -1
            cap = self.cap_slots
            if grow(<void**> &self.counted, &cap, <int32_t> slot + 1, sizeof(unsigned char)) != 0:
                return -1
            cap = self.cap_slots
            if grow(<void**> &self.slot_interval, &cap, <int32_t> slot + 1,
                    sizeof(int32_t)) != 0:
                return -1
            cap = self.cap_slots
            if grow(<void**> &self.answered_at, &cap, <int32_t> slot + 1,
                    sizeof(time_us_t)) != 0:
                return -1
            cap = self.cap_slots
            if grow(<void**> &self.slot_queue, &cap, <int32_t> slot + 1, sizeof(int32_t)) != 0:
                return -1
            self.cap_slots = cap
        self.arrived_at[slot] = t
        self.counted[slot] = t >= self.warmup
        self.slot_interval[slot] = self._interval(t)
        return 0

    cdef int _record(self, int64_t slot, time_us_t ended, int32_t agent,
                     int32_t outcome) noexcept:
        cdef rec_t* x
        if self.sink is None or not self.counted[slot]:
            return 0
        if self.n_rec == REC_CHUNK and self._flush() != 0:
            return -1
        x = &self.rec[self.n_rec]
        x.arrival_us = self.arrived_at[slot]
        x.answered_us = self.answered_at[slot] if agent >= 0 else -1
        x.ended_us = ended
        x.queue = self.slot_queue[slot]
        x.agent = agent
        x.outcome = outcome
        self.n_rec += 1
        return 0

    cdef int _flush(self) except -1:
        # Hands a copy of the buffered records to the sink; the buffer is reused.
        if self.n_rec:
            chunk = np.frombuffer(
                (<char*> self.rec)[:self.n_rec * sizeof(rec_t)], dtype=RECORD_DTYPE).copy()
            self.n_rec = 0
            self.sink(chunk)
        return 0

    cdef inline int32_t _interval(self, time_us_t t) noexcept:
        if self.interval_us == 0:
            return 0
        return <int32_t> ((t // self.interval_us) % self.n_int)

    cdef inline time_us_t _next_candidate(self, int32_t q, time_us_t t) noexcept:
        # The next arrival of queue q's stream at its highest rate.
        return t + self._us(-log1p(-self._uniform()) / self.rate_max[q])

    cdef inline int32_t _held(self, int32_t a) noexcept:
        # Contacts the agent holds now: a multi-channel agent's load on every
        # channel; a classic agent's one while reserved, busy or in wrap-up.
        cdef Router r = self.r
        cdef int32_t st, x, n = 0
        if r.agents[a].multi:
            for x in range(N_CHANNELS):
                n += r.chans[a].load[x]
            return n
        st = r.agents[a].state
        return 1 if st == AS_RESERVED or st == AS_BUSY or st == AS_WRAP_UP else 0

    cdef inline void _touch(self, int32_t a, time_us_t t) noexcept:
        # Called at time t after every call or decision that may have changed
        # what the agent holds, so that held_now was its count since held_since.
        if 0 <= a < self.n_agents:
            self.held_area[a] += self.held_now[a] * (t - self.held_since[a])
            self.held_since[a] = t
            self.held_now[a] = self._held(a)

    cdef int _decisions(self) noexcept:
        # Answer every offer at once and book its wait; book the contacts the
        # router sends on or ends.
        cdef int32_t i = 0, q, kind
        cdef int64_t slot
        cdef contact_id_t c
        cdef time_us_t t, wait
        cdef qstat_t* s
        cdef Router r = self.r      # one reference per batch of decisions, not per event
        while i < r.n_dec:
            kind = r.dec[i].kind
            if kind == DK_OFFER:
                c = r.dec[i].contact
                t = r.dec[i].time
                slot = slot_of(c)
                if r.agents[r.dec[i].agent].contact != slot \
                        or r.agents[r.dec[i].agent].state != AS_RESERVED:
                    # A parallel offer another agent has already answered (the
                    # router released this one, and may have offered it more).
                    self._touch(r.dec[i].agent, t)
                    i += 1
                    continue
                q = self.slot_queue[slot]
                if r.c_accept(r.dec[i].agent, c, t) != 0:
                    return -1
                self.answered_at[slot] = t
                self.events += 1
                if self.counted[slot]:
                    wait = t - self.arrived_at[slot]
                    s = &self.st[q * self.n_int + self.slot_interval[slot]]
                    s.answered += 1
                    s.wait_answered_s += wait * 1e-6
                    if wait > 0:
                        s.delayed += 1
                    if wait <= self.threshold[q]:
                        s.answered_within += 1
                if self._push(t + self._us(self._draw_s(&self.handle[q])), EV_COMPLETE, c,
                              r.dec[i].agent) != 0:
                    return -1
            elif kind == DK_WRAP_UP_END:
                if self.off_shift[r.dec[i].agent] and self._leave(r.dec[i].agent,
                                                                  r.dec[i].time) != 0:
                    return -1
            elif kind == DK_OVERFLOW or kind == DK_CALLBACK or kind == DK_VOICEMAIL \
                    or kind == DK_REJECT or kind == DK_TIMEOUT:
                # OVERFLOW, CALLBACK, or an end: VOICEMAIL, REJECT, TIMEOUT. The
                # contact's slot is still ours: the loop reuses none mid-batch.
                slot = slot_of(r.dec[i].contact)
                t = r.dec[i].time
                if self.counted[slot]:
                    s = &self.st[self.slot_queue[slot] * self.n_int + self.slot_interval[slot]]
                    if kind == DK_OVERFLOW:
                        s.overflowed += 1
                    elif kind == DK_CALLBACK:
                        s.callbacks += 1
                    else:
                        if kind == DK_VOICEMAIL:
                            s.voicemail += 1
                        elif kind == DK_REJECT:
                            s.rejected += 1
                        else:
                            s.timed_out += 1
                        if t > self.arrived_at[slot]:
                            s.delayed += 1
                        s.wait_diverted_s += (t - self.arrived_at[slot]) * 1e-6
                if kind == DK_VOICEMAIL or kind == DK_REJECT or kind == DK_TIMEOUT:
                    if self._record(slot, t, -1, OUT_VOICEMAIL if kind == DK_VOICEMAIL else (
                            OUT_REJECTED if kind == DK_REJECT else OUT_TIMED_OUT)) != 0:
                        return -1
            self._touch(r.dec[i].agent, r.dec[i].time)
            i += 1
        r.n_dec = 0
        return 0

    cdef int _leave(self, int32_t agent, time_us_t t) noexcept:
        # An agent whose shift is over logs out as soon as it has no contact;
        # while it has one, a pending not-ready keeps new offers away.
        cdef int32_t st = self.r.agents[agent].state
        if st == AS_LOGGED_OUT:
            return 0
        if st == AS_BUSY or st == AS_RESERVED:
            return self.r.c_set_not_ready(agent, t, REASON_SHIFT_END)
        return self.r.c_logout(agent, t)

    def run(self, int64_t max_arrivals, int64_t until_us):
        """Run until `max_arrivals` contacts have arrived after the warm-up, or
        until virtual time `until_us` (whichever comes first; -1: no limit).
        Returns the virtual time reached. May be called again to go on."""
        cdef Router r = self.r
        cdef ev_t e
        cdef time_us_t dl, t
        cdef contact_id_t c
        cdef int32_t q
        cdef double pat
        cdef qstat_t* st
        cdef int64_t slot
        if not self.started:
            self.started = True
            for q in range(self.n_queues):
                if self.rate_max[q] > 0 and self._push(
                        self._next_candidate(q, r.now), EV_ARRIVAL, q, 0) != 0:
                    raise MemoryError()
        while self.n_ev or r.timer_heap.n:
            dl = r.c_next_deadline()
            if self.n_ev == 0 or (dl >= 0 and dl <= self.heap[0].t):
                t = dl
                if until_us >= 0 and t > until_us:
                    break
                if r.c_advance(t) != 0:
                    raise RuntimeError("the router refused to advance")
                self.events += 1
            else:
                e = self.heap[0]
                if until_us >= 0 and e.t > until_us:
                    break
                if e.kind == EV_ARRIVAL and max_arrivals >= 0 and self.arrivals >= max_arrivals \
                        and e.t >= self.warmup:
                    break
                self._pop()
                t = e.t
                if e.kind == EV_ARRIVAL:
                    q = <int32_t> e.x
                    if self._push(self._next_candidate(q, t), EV_ARRIVAL, q, 0) != 0:
                        raise MemoryError()
                    if not self.constant[q] and self._uniform() * self.rate_max[q] >= \
                            self.rate[q * self.n_int + self._interval(t)]:
                        continue            # thinned out: no arrival, no event
                    c = r.c_arrive(self.chain[q], t, QUEUE_PRIORITY, self.channel[q], NULL, 0, 0)
                    if c < 0 or self._remember(c, t) != 0:
                        raise RuntimeError("the router refused an arrival")
                    slot = slot_of(c)
                    self.slot_queue[slot] = q
                    if self.counted[slot]:
                        self.arrivals += 1
                        self.st[q * self.n_int + self.slot_interval[slot]].offered += 1
                    pat = self._draw_s(&self.patience[q])
                    if pat >= 0 and self._push(t + self._us(pat), EV_ABANDON, c, q) != 0:
                        raise MemoryError()
                elif e.kind == EV_COMPLETE:
                    slot = slot_of(e.x)
                    if r.c_complete(e.y, e.x, t, -1) != 0:
                        raise RuntimeError("the router refused a completion")
                    if self._record(slot, t, e.y, OUT_ANSWERED) != 0:
                        raise MemoryError()
                    if self.off_shift[e.y] and self._leave(e.y, t) != 0:
                        raise RuntimeError("the router refused a shift end")
                    self._touch(e.y, t)
                elif e.kind == EV_SHIFT_START:
                    self.off_shift[e.y] = 0
                    if r.agents[e.y].state == AS_LOGGED_OUT:
                        if r.c_login(e.y, t) != 0 or r.c_set_ready(e.y, t) != 0:
                            raise RuntimeError("the router refused a shift start")
                    elif r.agents[e.y].state == AS_NOT_READY:
                        # back-to-back shifts: still finishing the last contact
                        if r.c_set_ready(e.y, t) != 0:
                            raise RuntimeError("the router refused a shift start")
                    else:
                        r.c_set_ready(e.y, t)   # cancels a pending not-ready, if any
                    self._touch(e.y, t)
                elif e.kind == EV_SHIFT_END:
                    self.off_shift[e.y] = 1
                    if self._leave(e.y, t) != 0:
                        raise RuntimeError("the router refused a shift end")
                    self._touch(e.y, t)
                else:
                    slot = r._slot(e.x)
                    if slot < 0 or r.contacts[slot].state != CS_WAITING \
                            or r.contacts[slot].flags & CF_CALLBACK:
                        continue          # answered or ended meanwhile, or a callback
                    q = self.slot_queue[slot]
                    if r.c_abandon(e.x, t) != 0:
                        raise RuntimeError("the router refused an abandon")
                    if self._record(slot, t, -1, OUT_ABANDONED) != 0:
                        raise MemoryError()
                    if self.counted[slot]:
                        st = &self.st[q * self.n_int + self.slot_interval[slot]]
                        st.abandoned += 1
                        st.delayed += 1
                        st.wait_abandoned_s += (t - self.arrived_at[slot]) * 1e-6
                self.events += 1
            if r.n_dec and self._decisions() != 0:
                raise RuntimeError("the router refused an answer")
        if self.sink is not None:
            self._flush()
        return r.now

    def held_us(self, agents, int64_t now):
        """Contacts held x time (microseconds) by `agents` up to `now` (not
        earlier than the last event): ringing, answered or in wrap-up."""
        cdef int64_t total = 0
        cdef int32_t a
        for x in agents:
            a = x
            if not 0 <= a < self.n_agents:
                raise ValueError(f"no agent {a} in this loop")
            if now < self.held_since[a]:
                raise ValueError("held_us: now is before the agent's last event")
            total += self.held_area[a] + self.held_now[a] * (now - self.held_since[a])
        return total

    @property
    def n_intervals(self):
        """Intervals of the day the counters are kept for (1 without a profile)."""
        return self.n_int

    def queue_counts(self, int32_t q, int32_t interval=-1):
        """Counters of queue q for contacts that arrived after the warm-up, in one
        interval of the day or (-1) in all."""
        cdef int32_t i
        cdef qstat_t tot
        memset(&tot, 0, sizeof(qstat_t))
        for i in range(self.n_int):
            if interval >= 0 and i != interval:
                continue
            s = &self.st[q * self.n_int + i]
            tot.offered += s.offered
            tot.answered += s.answered
            tot.abandoned += s.abandoned
            tot.delayed += s.delayed
            tot.answered_within += s.answered_within
            tot.overflowed += s.overflowed
            tot.voicemail += s.voicemail
            tot.rejected += s.rejected
            tot.timed_out += s.timed_out
            tot.callbacks += s.callbacks
            tot.wait_answered_s += s.wait_answered_s
            tot.wait_abandoned_s += s.wait_abandoned_s
            tot.wait_diverted_s += s.wait_diverted_s
        return {
            "offered": tot.offered,
            "answered": tot.answered,
            "abandoned": tot.abandoned,
            "delayed": tot.delayed,
            "answered_within": tot.answered_within,
            "overflowed": tot.overflowed,
            "voicemail": tot.voicemail,
            "rejected": tot.rejected,
            "timed_out": tot.timed_out,
            "callbacks": tot.callbacks,
            "wait_answered_s": tot.wait_answered_s,
            "wait_abandoned_s": tot.wait_abandoned_s,
            "wait_diverted_s": tot.wait_diverted_s,
        }
