"""Hypothesis state machine: LockTable against a plain model, on an injected clock.

Single-threaded, so requests never wait: a request that would wait raises
DeadlockError when its owner is among the holders (it would wait on itself)
and LockTimeout with timeout=0 otherwise.
"""

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from ringhash import DeadlockError, LeaseLost, LockTable, LockTimeout

NAMES = st.sampled_from(["a", "b", "c"])
OWNERS = st.sampled_from(["o1", "o2", "o3"])
MODES = st.sampled_from(["exclusive", "shared"])
TTLS = st.sampled_from([None, 1.0, 2.5, 10.0])


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


class LockModel(RuleBasedStateMachine):
    leases = Bundle("leases")

    def __init__(self):
        super().__init__()
        self.clock = Clock()
        self.table = LockTable(clock=self.clock)
        # name -> {token: (mode, owner, expires_at)}
        self.model: dict[str, dict[int, tuple]] = {}
        self.last_token = 0
        self.lost_calls = []

    def expire_model(self):
        for name in list(self.model):
            held = self.model[name]
            for token, (_, _, exp) in list(held.items()):
                if exp is not None and exp <= self.clock.now:
                    del held[token]
            if not held:
                del self.model[name]

    def model_holds(self, lease):
        return lease.token in self.model.get(lease.name, {})

    @rule(target=leases, name=NAMES, owner=OWNERS, mode=MODES, ttl=TTLS, wait=st.booleans())
    def acquire(self, name, owner, mode, ttl, wait):
        self.expire_model()
        held = self.model.get(name, {})
        compatible = not held or (
            mode == "shared" and all(m == "shared" for m, _, _ in held.values())
        )
        timeout = 5.0 if wait else 0
        if compatible:
            lease = self.table.acquire(
                name,
                mode=mode,
                ttl=ttl,
                owner=owner,
                timeout=timeout,
                on_lost=self.lost_calls.append,
            )
            assert lease.token > self.last_token
            self.last_token = lease.token
            exp = None if ttl is None else self.clock.now + ttl
            assert lease.expires_at == exp
            self.model.setdefault(name, {})[lease.token] = (mode, owner, exp)
            return lease
        if not wait:
            assert self.table.try_acquire(name, mode=mode, ttl=ttl, owner=owner) is None
            try:
                self.table.acquire(name, mode=mode, ttl=ttl, owner=owner, timeout=0)
                raise AssertionError("granted an incompatible request")
            except LockTimeout:
                pass
        elif any(o == owner for _, o, _ in held.values()):
            try:
                self.table.acquire(name, mode=mode, ttl=ttl, owner=owner, timeout=timeout)
                raise AssertionError("granted an incompatible request")
            except DeadlockError:
                pass
        return None  # a request that would really wait is not made single-threaded

    @rule(lease=consumes(leases))
    def release(self, lease):
        if lease is None:
            return
        self.expire_model()
        if self.model_holds(lease):
            lease.release()
            del self.model[lease.name][lease.token]
            if not self.model[lease.name]:
                del self.model[lease.name]
        else:
            try:
                lease.release()
                raise AssertionError("released a lost lease")
            except LeaseLost:
                pass

    @rule(lease=leases, ttl=st.sampled_from([0.5, 3.0]))
    def extend(self, lease, ttl):
        if lease is None:
            return
        self.expire_model()
        if self.model_holds(lease):
            lease.extend(ttl)
            mode, owner, _ = self.model[lease.name][lease.token]
            self.model[lease.name][lease.token] = (mode, owner, self.clock.now + ttl)
        else:
            try:
                lease.extend(ttl)
                raise AssertionError("extended a lost lease")
            except LeaseLost:
                pass

    @rule(dt=st.sampled_from([0.25, 1.0, 3.0]))
    def advance(self, dt):
        self.clock.now += dt

    @rule(lease=leases)
    def check_valid(self, lease):
        if lease is None:
            return
        self.expire_model()
        assert lease.valid == self.model_holds(lease)

    @invariant()
    def same_holders(self):
        self.expire_model()
        for name in ["a", "b", "c"]:
            got = {x.token: (x.mode, x.owner, x.expires_at) for x in self.table.holders(name)}
            assert got == self.model.get(name, {})
        st_ = self.table.stats()
        assert st_.holders == sum(len(h) for h in self.model.values())
        assert st_.waiters == 0
        assert len(self.table) == len(self.model)
        # on_lost was called once for each lease that expired while held.
        assert st_.expiries == len(self.lost_calls)


TestLockModel = LockModel.TestCase
