"""Read-through cache of what the cart service renders, in Redis; PostgreSQL stays the truth.

Keys:
  cart:{token}                                              "{version}|{owner}|{fresh_until_ms}|" + Cart bytes,
                                                            or the tombstone "{version}|"
  pricing:{token}:{country}:{state}:{currency}             "{version}|" + Estimate bytes, until the quote's own
                                                            expires_at
  discount:{token}:{version}                               ListDiscountsResponse bytes, DISCOUNT_TTL

CartService fills entries after each read and, after each committed change, writes the new cart
(or a tombstone) under its new version (ConvertCart, ReleaseCart and the sweeper write tombstones);
CachedCartApi (api/cart.py) answers GetCart, EstimateCart and ListDiscounts from them, checking
ownership on every hit exactly as cart_svc/access.py does.
Estimates and discount listings are reached only through the version held in a fresh cart:{token},
so a change makes them unreachable without deleting anything: a discount listing's key names the
version; an estimate's value starts with it, so that one MGET reads the cart and its estimate
together (an estimate of another version is a miss, and the next estimate overwrites it).

Why writers *set a versioned value* instead of DEL, and readers set only through a version guard:
with "writer DELs after commit, reader SET NX", a reader that read version 2 from PostgreSQL just
before a writer committed 3 can SET after the writer's DEL (the key is absent, so NX passes), and
version 2 is then served for the whole TTL, even to the client that made change 3. Here every
SET goes through one Lua script that keeps the stored value when its version is newer (or equal
and not a tombstone), so once the writer has stored version 3, no slower reader can put 2 back.
Tombstones outlive any in-flight reader (TOMBSTONE_TTL >> MAX_FILL_DELAY, a reader whose read is
older than that does not fill). If storing the new version fails (Redis down), the token is kept
and retried before this process reads the cache again; other processes may then serve the old
cart until its entry ends, which is why no cart entry lives longer than PRICING_TTL.

Staleness that no write invalidates (accepted, per the PRD's PRICING_TTL / DISCOUNT_TTL): a cart
entry and an estimate show prices, so admin changes to catalog prices, coupons, sales or exchange
rates, and sale/coupon windows opening or closing, appear after at most PRICING_TTL (5 min); the
discount listing after at most DISCOUNT_TTL (1 h). No entry is served at or after the cart's
expires_at, so an open cart past its expiry always reads "expired". A cached estimate keeps the
expires_at of the quote it was made as (always in the future when served).
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import Callable, Iterable

import redis.asyncio as aioredis

from cart_svc.api import messages
from cart_svc.service import CartView, DiscountCandidate, EstimateView
from common.cache import SafeCache, create_redis
from common.clock import utc_now
from common.metrics import CACHE_LOOKUPS
from common.settings import Settings

TOMBSTONE_TTL_MS = 10 * 60 * 1000
MAX_FILL_DELAY = datetime.timedelta(seconds=5)
MAX_UNSENT = 10_000

# KEYS[1] key; ARGV: version, value, ttl_ms. Stores unless the stored version is newer, or equal
# and a full value (an equal-version tombstone gives way to the full value).
_GUARDED_SET = """
local current = redis.call('GET', KEYS[1])
if current then
  local stored = tonumber(string.match(current, '^(%d+)|'))
  local offered = tonumber(ARGV[1])
  if stored and (stored > offered or (stored == offered and current ~= ARGV[1] .. '|')) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""


@dataclasses.dataclass(frozen=True)
class CartHead:
    version: int
    owner: str | None
    body: bytes


def _canonical(token: str) -> str:
    """One key per cart however the client spells its UUID, or a spelling would escape invalidation."""
    return str(uuid.UUID(token))


def cart_key(token: str) -> str:
    return f"cart:{_canonical(token)}"


def estimate_key(token: str, country: str, state: str, currency: str) -> str:
    return f"pricing:{_canonical(token)}:{country}:{state}:{currency}"


def discounts_key(token: str, version: int) -> str:
    return f"discount:{_canonical(token)}:{version}"


def _counted(cache: str, value: bytes | None) -> bytes | None:
    CACHE_LOOKUPS.labels(cache, "miss" if value is None else "hit").inc()
    return value


def _ms(moment: datetime.datetime) -> int:
    return int(moment.timestamp() * 1000)


class CartCache:
    def __init__(self, cache: SafeCache, settings: Settings, clock: Callable[[], datetime.datetime] = utc_now) -> None:
        self._cache = cache
        self._clock = clock
        self._cart_ttl = datetime.timedelta(seconds=min(settings.cart_ttl, settings.pricing_ttl))
        self._discount_ttl_ms = settings.discount_ttl * 1000
        self._guarded_set = cache.client.register_script(_GUARDED_SET)
        self._unsent: dict[str, int] = {}  # token -> version whose tombstone Redis has not taken yet

    async def close(self) -> None:
        await self._cache.close()

    # -- hits (CachedCartApi) ----------------------------------------------------------------------
    async def head(self, token: str) -> CartHead | None:
        if self._unsent and not await self._send_unsent():
            CACHE_LOOKUPS.labels("cart", "miss").inc()
            return None
        return self._head(await self._cache.get(cart_key(token)))

    async def head_and_estimate(self, token: str, country: str, state: str,
                                currency: str) -> tuple[CartHead | None, bytes | None]:
        """The cart's head and its estimate for this billing and currency, in one round trip."""
        if self._unsent and not await self._send_unsent():
            CACHE_LOOKUPS.labels("cart", "miss").inc()
            return None, None
        raw, priced = await self._cache.get_many(cart_key(token), estimate_key(token, country, state, currency))
        head = self._head(raw)
        if head is None:
            return None, None
        version, _, body = (priced or b"").partition(b"|")
        return head, _counted("estimate", body if version == b"%d" % head.version else None)

    def _head(self, raw: bytes | None) -> CartHead | None:
        parts = raw.split(b"|", 3) if raw else []
        if len(parts) != 4 or not (parts[0].isdigit() and parts[2].isdigit()) or int(parts[2]) <= _ms(self._clock()):
            CACHE_LOOKUPS.labels("cart", "miss").inc()
            return None  # absent, a tombstone, unreadable, or at/after the cart's expiry: ask PostgreSQL
        CACHE_LOOKUPS.labels("cart", "hit").inc()
        return CartHead(int(parts[0]), parts[1].decode() or None, parts[3])

    async def discounts(self, head: CartHead, token: str) -> bytes | None:
        return _counted("discounts", await self._cache.get(discounts_key(token, head.version)))

    # -- fills (CartService) -----------------------------------------------------------------------
    async def cart_read(self, view: CartView) -> None:
        if self._clock() - view.now <= MAX_FILL_DELAY and self._cacheable(view):
            await self._store(view)

    async def cart_written(self, view: CartView) -> None:
        """After commit: the new version replaces whatever is cached, or is retried until it does."""
        token, version = view.cart.token, view.cart.version
        stored = await self._store(view) if self._cacheable(view) else await self._send_tombstones({token: version})
        if not stored:
            self._keep_unsent({token: version})

    async def carts_closed(self, versions: Iterable[tuple[str, int]]) -> None:
        """After commit: tombstones for carts that changed without a rendered view (merged away, swept)."""
        marks = dict(versions)
        if marks and not await self._send_tombstones(marks):
            self._keep_unsent(marks)

    async def estimate_read(self, version: int, token: str, country: str, state: str, currency: str, view: EstimateView) -> None:
        ttl_ms = _ms(view.expires_at) - _ms(self._clock())
        await self._cache.set(estimate_key(token, country, state, currency),
                              b"%d|" % version + messages.estimate_message(view).SerializeToString(), ttl_ms)

    async def discounts_read(self, version: int, token: str, candidates: list[DiscountCandidate]) -> None:
        await self._cache.set(discounts_key(token, version),
                              messages.discounts_message(candidates).SerializeToString(), self._discount_ttl_ms)

    # -- helpers -----------------------------------------------------------------------------------
    def _fresh_until(self, view: CartView) -> datetime.datetime:
        return min(view.cart.expires_at, view.now + self._cart_ttl)

    def _cacheable(self, view: CartView) -> bool:
        return self._fresh_until(view) > self._clock()

    async def _store(self, view: CartView) -> bool:
        fresh_until, version = self._fresh_until(view), view.cart.version
        header = b"%d|%s|%d|" % (version, (view.cart.user_id or "").encode(), _ms(fresh_until))
        value = header + messages.cart_message(view).SerializeToString()
        ttl_ms = max(1, _ms(fresh_until) - _ms(self._clock()))  # PX 0 is an error; 1 ms is a harmless miss
        return await self._cache.run("set", lambda client: self._guarded_set(
            keys=[cart_key(view.cart.token)], args=[version, value, ttl_ms], client=client)) is not None

    async def _send_tombstones(self, marks: dict[str, int]) -> bool:
        async def send(client: aioredis.Redis) -> object:
            if len(marks) == 1:  # one EVALSHA; a pipeline would first ask SCRIPT EXISTS (a round trip more)
                [(token, version)] = marks.items()
                return await self._guarded_set(keys=[cart_key(token)], args=[version, b"%d|" % version, TOMBSTONE_TTL_MS],
                                               client=client)
            async with client.pipeline(transaction=False) as pipe:
                for token, version in marks.items():
                    await self._guarded_set(keys=[cart_key(token)], args=[version, b"%d|" % version, TOMBSTONE_TTL_MS], client=pipe)
                return await pipe.execute()

        return await self._cache.run("invalidate", send) is not None

    async def _send_unsent(self) -> bool:
        marks = dict(self._unsent)  # left in place until sent, so concurrent readers also wait for it
        if not await self._send_tombstones(marks):
            return False
        for token, version in marks.items():
            if self._unsent.get(token) == version:
                del self._unsent[token]
        return True

    def _keep_unsent(self, marks: dict[str, int]) -> None:
        for token, version in marks.items():
            self._unsent[token] = max(version, self._unsent.get(token, 0))
        while len(self._unsent) > MAX_UNSENT:  # bounded memory; the oldest then heal by TTL (≤ PRICING_TTL)
            del self._unsent[next(iter(self._unsent))]


def build_cart_cache(settings: Settings) -> CartCache:
    return CartCache(SafeCache(create_redis(settings)), settings)

