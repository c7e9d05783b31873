"""An in-memory unit of work for service-layer tests: it records events and audit rows as the
real one does (common/uow.py's Recorder) and remembers whether it committed; a service's tests
give it their own in-memory repositories as attributes."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from common.uow import Recorder


class FakeUnitOfWork(Recorder):
    def __init__(self, **repositories: Any) -> None:
        super().__init__()
        self.committed = False
        self.rolled_back = False
        self.published: list[Any] = []  # events of committed units, in order
        self.audited: list[Any] = []
        for name, repository in repositories.items():
            setattr(self, name, repository)

    @property
    def conn(self) -> Any:
        return None  # in-memory repositories ignore it

    async def __aenter__(self) -> FakeUnitOfWork:
        self.committed = self.rolled_back = False
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if not self.committed:
            self.rolled_back = True
            self.events, self.audits = [], []

    async def flush(self) -> None:
        self.published += self.events
        self.audited += self.audits
        self.events, self.audits = [], []

    async def commit(self) -> None:
        await self.flush()
        self.committed = True
