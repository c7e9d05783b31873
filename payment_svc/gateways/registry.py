"""The gateways of one payment service process: each adapter with its own breaker, built from
settings once at start-up (a breaker only means something if it lives as long as the process)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from common.settings import Settings
from payment_svc.domain.circuit_breaker import CircuitBreaker
from payment_svc.domain.gateway_order import GatewayName
from payment_svc.gateways.razorpay_gateway import RazorpayGateway
from payment_svc.gateways.resilient import ResilientGateway
from payment_svc.gateways.stripe_gateway import StripeGateway
from payment_svc.tuning import GatewayTuning


class Gateways(Mapping[str, ResilientGateway]):
    def __init__(self, gateways: Mapping[GatewayName, ResilientGateway]) -> None:
        self._gateways = dict(gateways)

    def __getitem__(self, name: str) -> ResilientGateway:
        return self._gateways[name]  # type: ignore[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._gateways)

    def __len__(self) -> int:
        return len(self._gateways)

    async def close(self) -> None:
        """Close each adapter's pooled HTTP client (on shutdown)."""
        for gateway in self._gateways.values():
            close = getattr(gateway.inner, "close", None)
            if close is not None:
                await close()


def build_gateways(settings: Settings) -> Gateways:
    tuning = GatewayTuning.from_settings(settings)

    def breaker() -> CircuitBreaker:
        return CircuitBreaker(failure_threshold=tuning.breaker_failures, cooldown_s=tuning.breaker_cooldown_s)

    razorpay = RazorpayGateway(key_id=settings.razorpay_key_id, key_secret=settings.razorpay_key_secret,
                               base_url=settings.razorpay_base_url, checkout_template=settings.razorpay_checkout_url,
                               tuning=tuning)
    stripe = StripeGateway(api_key=settings.stripe_api_key, base_url=settings.stripe_base_url,
                           page_url=settings.payment_page_url, tuning=tuning)
    return Gateways({
        "razorpay": ResilientGateway(razorpay, breaker(), tuning),
        "stripe": ResilientGateway(stripe, breaker(), tuning),
    })
