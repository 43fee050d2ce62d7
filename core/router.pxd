# The routing core's C-level face: structs and the cdef methods that the event
# loop (core/) and the benchmark workload call with no Python object per event.
# The semantics are those of docs/ROUTING.md; router.pyx implements them.

cimport cython
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t

from agner.core._types cimport (
    agent_id_t, contact_id_t, decision_t, queue_id_t, time_us_t,
)
from agner.core._structs cimport (
    heap_t, hentry_t, kbuck_t, rankset_t, rentry_t, rfifo_t, rheap_t,
)


cdef struct skill_t:
    int32_t skill
    int32_t level


cdef struct member_t:
    # 8 bytes, so that an agent's memberships take as few cache lines as can be:
    # the pool's channel and kind are in Router.pool_kind.
    int32_t pool
    int32_t arg               # a bitset pool (ROUND_ROBIN, LINEAR, RANDOM): the agent's
                              # index in it; MOST_SKILLED: the agent's best sum of
                              # levels over one conjunction; other pools: 0


cdef struct agent_t:
    # Exactly two cache lines, allocated on a 64-byte boundary. The first holds
    # what routing reads; the second what a state change or a statistic reads.
    # The agent's pool memberships are not here but in Router.memb, at an
    # address computed from the agent id alone, so both load in parallel.
    # A classic agent's routing never reads its chan_t (Router.chans): whether
    # it is multi-channel, and its routable channels, are here.
    int32_t state             # agent_state_t
    int32_t pending           # pending not-ready reason, NO_PENDING when none
    int32_t contact           # slot of the offered/held contact, -1 when none
    int32_t timer             # timer slot of the running wrap-up, -1 when none
    uint32_t epoch            # times it became idle: tells live pool entries
    int32_t reason            # not-ready reason (meaningful in NOT_READY)
    time_us_t idle_since
    int64_t handled
    time_us_t talk_time_us
    time_us_t state_since
    int32_t rona
    uint8_t multi             # a multi-channel agent (its channels in Router.chans)
    uint8_t routable          # channels whose pools it is in now (bitmask)
    uint8_t has_pref          # set while contacts may wait for it as a preferred agent
    uint8_t _pad
    # second line
    time_us_t wrap_up_us      # default wrap-up after complete
    time_us_t time_in_state[6]
    int32_t tenant
    int32_t ring_next         # the next agent ringing for the same contact, -1: none


cdef struct chan_t:
    # An agent's channels. The classic agent (agent_t.multi = 0) has capacity 1
    # on every channel and any contact blocks them all: the one-contact state
    # machine. A multi-channel agent holds up to cap[ch] contacts of each
    # channel at once (ringing, answered or in wrap-up: load[ch]) unless a
    # channel it holds blocks it (blocks[x]: the channels closed while it holds
    # a contact of channel x).
    time_us_t idle[4]         # multi: when it last became free for each channel
    int64_t handled_at[4]     # multi: its handled count then (FEWEST_CONTACTS key)
    time_us_t talk_at[4]      # multi: its talk time then (LEAST_TALK_TIME key)
    uint32_t epoch[4]         # multi: the epoch of its entries in each channel's pools
    uint8_t cap[4]
    uint8_t load[4]
    uint8_t blocks[4]
    uint8_t presence          # multi: AS_LOGGED_OUT, AS_NOT_READY or AS_READY
    uint8_t _pad[3]
    int32_t n_active          # multi: contacts answered and not yet completed
    int32_t n_wrap            # multi: wrap-ups running
    int32_t wrap_head         # multi: the first of their timers (timer_t.next), -1: none


cdef struct skills_t:
    skill_t* s                # sorted by skill; read when a pool is built
    int32_t n


cdef struct pool_t:
    # The agents of one tenant that first become eligible at one requirement
    # step, with the READY ones ordered for one strategy. Members are in
    # increasing agent id order. The requirement is a list of conjunctions
    # (skill -> minimum level), one per step of a chain, in step order:
    # conjunction k is req[req_off[k]:req_off[k + 1]]. An agent is a member when
    # the first conjunction it meets is conjunction `step`, so the pools of one
    # chain are disjoint and a route of step k spans the pools of steps 0..k:
    # an agent is in one pool per chain, however many steps widen it.
    # Three cache lines, 64-byte aligned (Router.pools): a push or a choice in a
    # heap pool touches the first line only, in a bitset pool the first two.
    # Its READY agents are counted in Router.pool_ready, not here.
    # A pool that is pushed into far more than it is read goes cold
    # (Router.pool_cold): its READY order is dropped and no longer kept, and is
    # rebuilt from its members when a contact next needs it.
    # The first cache line: what a push and a choice read.
    int32_t strategy
    int32_t channel           # the channel of the contacts it serves
    rfifo_t idle              # LONGEST_IDLE
    rheap_t ready             # LEAST_TALK_TIME; the keyed ones' keys out of reach
    int32_t unread            # pushes since it was last read
    int32_t cold_after        # it goes cold when unread exceeds this
    int32_t n_keyed           # entries in `keyed`
    int32_t use_keyed         # FEWEST_CONTACTS, MOST_SKILLED with KB_MIN_MEMBERS or more
    kbuck_t keyed             # their fifo per key
    int32_t n_logged          # members logged in
    int32_t step
    # second line
    rankset_t order           # ROUND_ROBIN, LINEAR, RANDOM: READY members
    int32_t* member_agent
    int32_t n_members
    int32_t cap_members
    int32_t* routes           # routes whose contacts this pool's agents serve
    int32_t n_routes
    int32_t cap_routes
    # third line
    skill_t* req
    int32_t* req_off
    int32_t n_conj
    int32_t tenant


cdef struct route_t:
    # The WAITING contacts of one queue at one step of a chain, and the pools
    # (steps 0..k of the chain) whose agents may take them.
    int32_t queue
    int32_t channel           # of its pools and its contacts (their `rch`)
    int32_t* pools
    int32_t n_pools
    int32_t agents_key        # equal for routes whose pools admit the same agents
    heap_t waiting            # key (rank, arrival, sequence), id = slot; see _rank
    int32_t n_cold            # of its pools, the cold ones (Router.pool_cold)


cdef struct queue_t:
    int32_t strategy
    int32_t priority
    int32_t base_chain        # the step routes of contacts with no extra requirement
    int32_t rr_last           # ROUND_ROBIN memory: last agent offered to
    int32_t tenant
    int32_t n_steps
    time_us_t* step_after     # n_steps times since entering the queue, [0] = 0
    time_us_t ring_timeout_us
    time_us_t sl_threshold_us
    time_us_t priority_weight_us  # the wait one priority level is worth
    time_us_t max_wait_us     # 0: no maximum
    int32_t max_waiting       # 0: no limit (callbacks do not count)
    int32_t overflow          # overflow_kind_t
    int32_t overflow_queue    # OV_QUEUE: the target (an earlier queue)
    int32_t reject_unstaffed  # on arrival with no eligible agent logged in: 0 wait, 1 reject, 2 overflow
    int32_t parallel          # agents one contact rings at once; 0: every eligible idle one
    int32_t hooked            # a Python decision hook chooses its agents (Router._hooks)
    time_us_t handle_estimate_us  # estimated wait: the handle time to assume without history
    int32_t* routes
    int32_t n_routes
    int32_t cap_routes
    int64_t offered
    int64_t answered
    int64_t abandoned
    int64_t abandoned_within_sl
    int64_t answered_within_sl
    int64_t waiting
    int64_t waiting_callbacks
    int64_t ring_no_answer
    int64_t overflowed        # sent on to another queue
    int64_t voicemail
    int64_t rejected
    int64_t timed_out
    int64_t callbacks         # contacts that became callbacks here
    time_us_t wait_answered_us


cdef struct contact_t:
    uint32_t gen
    int32_t state             # contact_state_t
    int32_t queue
    int32_t route
    int32_t agent             # -1 unless OFFERED or ACTIVE; OFFERED: the first of the
                              # agents ringing for it, linked by agent_t.ring_next
    int32_t priority
    int32_t channel
    int32_t timer             # ring timer slot, -1 when none
    int32_t chain             # its step routes in this queue (Router.chains)
    int32_t step
    int32_t step_timer        # -1 when none
    int32_t wait_timer        # maximum wait, -1 when none
    int32_t pref_timer        # end of the preferred agents' time, -1 when none
    int32_t flags             # contact_flag_t
    int32_t n_pref
    int32_t pref[4]           # preferred agents, best first (MAX_PREFERRED)
    int32_t rch               # the channel it is routed as (its routes' pools)
    int32_t _pad2
    time_us_t arrival         # first arrival: its rank keeps it across queues
    time_us_t entered         # arrival in this queue: steps, limits, statistics
    time_us_t offered_at
    time_us_t answered_at
    int64_t seq               # arrival order, breaks ties between equal keys


cdef struct timer_t:
    int32_t kind              # timer_kind_t; TK_NONE when the slot is free
    int32_t obj
    int32_t next              # TK_WRAP_CH: the agent's next wrap-up timer, -1: none


@cython.final
cdef class Router:
    cdef readonly time_us_t now
    cdef uint64_t rng
    cdef int64_t seq
    cdef int64_t timer_seq

    cdef agent_t* agents
    cdef chan_t* chans
    cdef skills_t* agent_skills
    # Pool memberships of every agent, agent after agent (CSR): agent a's are
    # in memb[memb_off[a]:memb_off[a + 1]], followed there by free entries
    # (pool -1), room where a new pool's memberships go without moving anyone
    # else's. A new pool costs O(its members), except when a member has no room
    # left: then the whole array is laid out again with room for a quarter more
    # each (amortised O(1) a membership). Walks never reach the free entries.
    cdef member_t* memb
    cdef int32_t* memb_off
    cdef int32_t cap_memb
    # memb_warm[a]: agent a's memberships are split in two parts, a warm one
    # first (by strategy) and a cold one; pushes, removals and the search for a
    # waiting contact walk the warm part only. A pool's memberships go to the
    # warm part when it warms, and back when an agent's walk meets them cold.
    cdef int32_t* memb_warm
    # ready_epoch[a]: the agent's epoch while it is idle in its pools, else 0.
    # Stale pool entries are recognised here, in 4 bytes an agent that stay in
    # cache, rather than in the agent's record.
    cdef uint32_t* ready_epoch
    cdef int32_t n_agents_
    cdef int32_t cap_agents
    cdef queue_t* queues
    cdef int32_t n_queues_
    cdef int32_t cap_queues
    cdef pool_t* pools
    cdef int32_t n_pools
    cdef int32_t cap_pools
    # pool_waiting[p]: the contacts WAITING in the routes of pool p. An agent that
    # becomes READY skips the pools whose routes are empty from this small array,
    # without touching the pools or their routes.
    cdef int32_t* pool_waiting
    cdef int32_t cap_pool_waiting
    # pool_ready[p]: the READY agents of pool p, exact whatever stale entries
    # its heap holds. Kept apart from the pools so that an agent leaving READY
    # touches no heap pool's record, only this small array.
    cdef int32_t* pool_ready
    cdef int32_t cap_pool_ready
    # pool_cold[p]: pool p keeps no READY order and no READY count (no pushes,
    # no bitset updates) until a contact of one of its routes is dispatched;
    # no contact waits in its routes meanwhile (pool_waiting[p] == 0).
    cdef uint8_t* pool_cold
    cdef int32_t cap_pool_cold
    # pool_kind[p]: pool p's channel (bits 0-1) and PK_RANKED when it is a
    # bitset pool; read beside pool_cold[p] in every walk over an agent's
    # memberships, so that these need not hold them.
    cdef uint8_t* pool_kind
    cdef int32_t cap_pool_kind
    cdef route_t* routes
    cdef int32_t n_routes
    cdef int32_t cap_routes
    # Step chains: chains[c] is the chain to follow on overflow (-1: none), and
    # chains[c + 1 + k] the route of step k, for the queue's n_steps steps.
    cdef int32_t* chains
    cdef int32_t n_chains
    cdef int32_t cap_chains

    cdef contact_t* contacts
    cdef int32_t* contact_pos     # slot -> index in its route's heap
    cdef int32_t n_slots
    cdef int32_t cap_slots
    cdef int32_t* free_slots
    cdef int32_t n_free
    cdef int32_t cap_free

    cdef timer_t* timers
    cdef int32_t* timer_pos
    cdef int32_t n_timer_slots
    cdef int32_t cap_timer_slots
    cdef int32_t* free_timers
    cdef int32_t n_free_timers
    cdef int32_t cap_free_timers
    cdef heap_t timer_heap        # key (deadline, creation order, 0)

    # Decisions since the last take: the C-level driver reads dec[0:n_dec]
    # and sets n_dec = 0.
    cdef decision_t* dec
    cdef int32_t n_dec
    cdef int32_t cap_dec

    # Per agent: the contacts WAITING for it as one of their preferred agents,
    # a lazy heap on the rank key (stale entries dropped at the top), and the
    # position array its heap operations need but nothing reads.
    cdef heap_t* pref_heap
    cdef int32_t* pref_pos

    # Why the last call was refused, for the Python layer's message.
    cdef int32_t err_state

    cdef dict _pool_index         # (tenant, step conjunctions, step, strategy, channel) -> pool
    cdef dict _route_index        # (queue, step conjunctions, step, channel) -> route id
    cdef dict _agents_keys        # (tenant, strategy, requirements so far, channel) -> key
    cdef dict _chain_index        # (queue, extra requirement) -> chain
    cdef dict _hooks              # queue -> [hook, budget_ns, calls, failures, slow, ns]
    cdef list _queue_steps        # queue -> its steps' requirement tuples
    cdef object _last_now         # the refused `now`, for TimeError's message

    # -- configuration (may allocate; not on the hot path) --
    cdef int c_add_agent(self, const skill_t* skills, int32_t n, time_us_t wrap_up_us,
                         int32_t tenant, const uint8_t* cap, const uint8_t* blocks) noexcept
    cdef int c_add_queue(self, int32_t strategy, int32_t priority, time_us_t ring_timeout_us,
                         time_us_t sl_threshold_us, int32_t tenant) noexcept
    cdef int c_add_route(self, int32_t queue, const int32_t* pools, int32_t n_pools,
                         int32_t agents_key) noexcept
    cdef int c_add_pool(self, int32_t strategy, int32_t tenant, int32_t channel,
                        const skill_t* req, const int32_t* req_off, int32_t n_conj,
                        const int32_t* steps, int32_t n_steps) noexcept

    # -- events: 0 or an err_t; arrive returns the contact id or an err_t --
    cdef int c_login(self, int32_t agent, time_us_t now) noexcept
    cdef int c_logout(self, int32_t agent, time_us_t now) noexcept
    cdef int c_set_ready(self, int32_t agent, time_us_t now) noexcept
    cdef int c_set_not_ready(self, int32_t agent, time_us_t now, int32_t reason) noexcept
    cdef contact_id_t c_arrive(self, int32_t chain, time_us_t now, int32_t priority,
                               int32_t channel, const int32_t* pref, int32_t n_pref,
                               time_us_t pref_us) noexcept
    cdef int c_request_callback(self, contact_id_t contact, time_us_t now) noexcept
    cdef int c_accept(self, int32_t agent, contact_id_t contact, time_us_t now) noexcept
    cdef int c_no_answer(self, int32_t agent, contact_id_t contact, time_us_t now) noexcept
    cdef int c_complete(self, int32_t agent, contact_id_t contact, time_us_t now,
                        time_us_t wrap_up_us) noexcept
    cdef int c_abandon(self, contact_id_t contact, time_us_t now) noexcept
    cdef int c_advance(self, time_us_t now) noexcept
    cdef time_us_t c_next_deadline(self) noexcept

    # -- internals --
    cdef int32_t _slot(self, contact_id_t contact) noexcept
    cdef int32_t _advance_to(self, contact_id_t contact, time_us_t now) noexcept
    cdef contact_id_t _cid(self, int32_t slot) noexcept
    cdef void _set_state(self, agent_t* a, int32_t state, time_us_t now) noexcept
    cdef int _emit(self, int32_t kind, time_us_t t, contact_id_t c, int32_t agent,
                   int32_t queue) noexcept
    cdef int _timer_add(self, time_us_t deadline, int32_t kind, int32_t obj) noexcept
    cdef void _timer_cancel(self, int32_t t) noexcept
    cdef int32_t _pool_add_member(self, int32_t pid, int32_t agent, int64_t score,
                                  bint keep_order) noexcept
    cdef int _pool_insert_one(self, int32_t pid, int32_t m, int32_t agent, int32_t score,
                              bint keep_order) noexcept
    cdef inline int _pool_put(self, pool_t* p, int32_t m, int32_t agent, int32_t score,
                              time_us_t idle, int64_t handled, time_us_t talk,
                              uint32_t epoch, bint keep_order) noexcept
    cdef inline int _pool_push(self, int32_t pid, int32_t m, int32_t agent, int32_t score,
                               time_us_t idle, int64_t handled, time_us_t talk,
                               uint32_t epoch, bint keep_order) noexcept
    cdef int _pool_warm(self, int32_t pid) noexcept
    cdef void _pool_cool(self, int32_t pid) noexcept
    cdef int32_t _memb_move(self, int32_t agent, int32_t pid, bint warm) noexcept
    cdef inline int32_t _memb_key(self, int32_t agent, int32_t pid) noexcept
    cdef void _memb_order(self, int32_t agent) noexcept
    cdef inline void _memb_set(self, member_t* mb, int32_t pid, int32_t m,
                               int64_t score) noexcept
    cdef inline int32_t _memb_end(self, int32_t agent) noexcept
    cdef int64_t _memb_copy(self, member_t* dst, int32_t* offs,
                            const int32_t* member_of) noexcept
    cdef int _memb_room(self, const int32_t* member_of) noexcept
    cdef inline void _memb_demote(self, int32_t agent, member_t* mb) noexcept
    cdef int _warm_route(self, const route_t* r) noexcept
    cdef int _pool_insert(self, int32_t agent, int32_t mask) noexcept
    cdef void _leave_pools(self, int32_t agent, int32_t mask) noexcept
    cdef void _pool_remove(self, int32_t agent) noexcept
    cdef int32_t _ready_in(self, const route_t* r) noexcept
    cdef int32_t _choose(self, route_t* r, queue_t* q) noexcept
    cdef int32_t _choose_in(self, int32_t pid, queue_t* q) noexcept
    cdef int32_t _hook_choose(self, int32_t slot, route_t* r, queue_t* q) noexcept
    cdef bint _live(self, const pool_t* p, const rentry_t* e) noexcept
    cdef void _m_remove(self, int32_t agent, int32_t mask) noexcept
    cdef int _compact(self, int32_t pid) noexcept
    cdef int32_t _compact_fifo(self, const pool_t* p, rfifo_t* f) noexcept
    cdef inline int32_t _entries(self, const pool_t* p) noexcept
    cdef inline int _keyed_put(self, pool_t* p, int64_t key, time_us_t idle, int32_t agent,
                               uint32_t epoch, bint keep_order) noexcept
    cdef int _sort_pool(self, pool_t* p) noexcept
    cdef inline void _top(self, int32_t pid, rentry_t* out) noexcept
    cdef bytes _ready_blob(self, pool_t* p)
    cdef int _offer(self, int32_t slot, int32_t agent, time_us_t now) noexcept
    cdef int _contact_waits(self, int32_t slot, time_us_t now) noexcept
    cdef int _enter_queue(self, int32_t slot, time_us_t now) noexcept
    cdef bint _unstaffed(self, const contact_t* c) noexcept
    cdef int _divert(self, int32_t slot, time_us_t now, int32_t why) noexcept
    cdef int _end(self, int32_t slot, int32_t kind, time_us_t now) noexcept
    cdef void _unwait(self, int32_t slot) noexcept
    cdef void _count_waiting(self, const route_t* r, int32_t delta) noexcept
    cdef void _cancel_wait_timers(self, contact_t* c) noexcept
    cdef int _fire_step(self, int32_t slot, time_us_t now) noexcept
    cdef int _fire_max_wait(self, int32_t slot, time_us_t now) noexcept
    cdef void _logged(self, int32_t agent, int32_t delta) noexcept
    cdef int32_t _pref_ready(self, contact_t* c) noexcept
    cdef bint _pref_live(self, const hentry_t* e) noexcept
    cdef int _fire_preferred(self, int32_t slot, time_us_t now) noexcept
    cdef int _agent_ready(self, int32_t agent, time_us_t now, int32_t scan,
                          int32_t insert) noexcept
    cdef int32_t _m_mask(self, int32_t agent) noexcept
    cdef int _m_settle(self, int32_t agent, time_us_t now) noexcept
    cdef void _m_cancel_wraps(self, int32_t agent) noexcept
    cdef void _m_wrap_ended(self, int32_t agent, int32_t t) noexcept
    cdef int _free_ringer(self, int32_t agent, int32_t ch, time_us_t now) noexcept
    cdef void _ring_failed(self, int32_t agent, int32_t slot, time_us_t now, int32_t state,
                           int32_t reason) noexcept
    cdef int _release(self, int32_t agent, time_us_t now) noexcept
    cdef int _take_back(self, int32_t slot, time_us_t now, int32_t agent_state,
                        int32_t reason) noexcept
    cdef void _unring(self, int32_t slot, int32_t agent) noexcept
    cdef void _free_contact(self, int32_t slot) noexcept
    cdef uint64_t _next_random(self) noexcept
    cdef _raise(self, int code, str op, agent=*, contact=*)
    cdef int32_t _agent_arg(self, object agent, str op) except -1
    cdef object _waiting_key(self, int32_t slot)
    cdef int32_t _waiting_arg(self, object contact, str op) except -1
