# Shared C types of the routing core, declared once (see ../shared/STYLE.md, 1).

from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t

ctypedef int64_t time_us_t      # microseconds; the core never reads a clock
ctypedef int32_t agent_id_t     # dense, 0..n_agents-1
ctypedef int32_t queue_id_t     # dense, 0..n_queues-1
ctypedef int64_t contact_id_t   # (generation << 32) | slot; never reused


cdef inline int64_t slot_of(contact_id_t contact) noexcept nogil:
    # The cast keeps this C arithmetic: to Cython, an untyped literal above
    # 2**31 is a Python int, and `contact & 0xFFFFFFFF` would build objects.
    return contact & <int64_t> 0xFFFFFFFF

cdef enum agent_state_t:
    AS_LOGGED_OUT = 0
    AS_NOT_READY = 1
    AS_READY = 2
    AS_RESERVED = 3
    AS_BUSY = 4
    AS_WRAP_UP = 5

cdef enum:
    N_AGENT_STATES = 6
    REASON_RONA = -1
    NO_PENDING = -2            # agent.pending: no not-ready is pending
    # c_arrive's priority: the queue's own, which the contact then takes from
    # each queue it overflows to (an explicit priority stays with it).
    QUEUE_PRIORITY = -2147483648

cdef enum contact_state_t:
    CS_WAITING = 0
    CS_OFFERED = 1
    CS_ACTIVE = 2
    CS_FREE = 3                # slot not in use

cdef enum strategy_t:
    ST_LONGEST_IDLE = 0
    ST_ROUND_ROBIN = 1
    ST_FEWEST_CONTACTS = 2
    ST_LEAST_TALK_TIME = 3
    ST_MOST_SKILLED = 4
    ST_RANDOM = 5
    ST_LINEAR = 6
    N_STRATEGIES = 7

cdef enum decision_kind_t:
    DK_OFFER = 1
    DK_RONA = 2
    DK_WRAP_UP_END = 3
    DK_RELEASE = 4             # a parallel offer withdrawn: another agent took it
    DK_OVERFLOW = 5            # the contact moved to `queue`, keeping its id
    DK_VOICEMAIL = 6           # the contact ends: sent to voicemail
    DK_CALLBACK = 7            # the contact became a callback, keeping its place
    DK_REJECT = 8              # the contact ends: its queue was full or unstaffed
    DK_TIMEOUT = 9             # the contact ends: it waited the maximum, nowhere to go

cdef enum timer_kind_t:
    TK_NONE = 0
    TK_RING = 1                # obj: contact slot
    TK_WRAP_UP = 2             # obj: agent id
    TK_STEP = 3                # obj: contact slot; its next requirement step
    TK_MAX_WAIT = 4            # obj: contact slot; its queue's maximum wait
    TK_PREFERRED = 5           # obj: contact slot; the end of its preferred agents' time
    TK_WRAP_CH = 6             # obj: agent * 4 + channel; a multi-channel agent's wrap-up

# Where a queue sends a contact it cannot keep (full, waited too long, unstaffed).
cdef enum overflow_kind_t:
    OV_NONE = 0                # nowhere: rejected (full, unstaffed) or timed out
    OV_QUEUE = 1               # another queue of the same tenant
    OV_VOICEMAIL = 2
    OV_CALLBACK = 3            # stays in place as a callback

cdef enum contact_flag_t:
    CF_CALLBACK = 1            # a callback: an outbound contact to dial
    CF_EXPIRED = 2             # its maximum wait passed while it was offered
    CF_OWN_PRIORITY = 4        # priority given on arrival, kept across queues
    CF_PREFERRED = 8           # only its preferred agents may take it, for now

cdef enum:
    MAX_PREFERRED = 4          # preferred agents a contact may carry
    N_CHANNELS = 4             # Channel: VOICE, CHAT, EMAIL, CALLBACK
    CH_VOICE = 0
    CH_CHAT = 1
    CH_EMAIL = 2
    CH_CALLBACK = 3
    ALL_CHANNELS = 15

# ready_epoch of a multi-channel agent in some pool: its epochs are per channel.
cdef enum:
    MULTI_MARK = 0xFFFFFFFF

# Results of the C-level API: 0 on success, one of these on refusal. A refused
# call has changed nothing but the timers it fired.
cdef enum err_t:
    E_OK = 0
    E_UNKNOWN_AGENT = -1
    E_UNKNOWN_QUEUE = -2
    E_UNKNOWN_CONTACT = -3
    E_INVALID = -4
    E_CONFIG = -5
    E_TIME = -6
    E_NOMEM = -7

cdef struct decision_t:
    int64_t time
    int64_t contact
    int32_t kind
    int32_t agent
    int32_t queue
