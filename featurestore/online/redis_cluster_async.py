"""The server's round trips to a Redis Cluster, on its event loop and within a deadline.

``redis_cluster.ClusterRouter`` on the event loop: commands grouped by the primary of
their slot, one pipelined round trip per node, all nodes at once (``asyncio.gather``),
each node through its own ``AsyncRoundTrips`` (the lean hiredis connection of
``redis_async.py``). The slot map is the blocking router's (one per process); ``MOVED``
updates it and reloads it here with one ``CLUSTER SLOTS`` round trip, ``ASK`` re-sends one
command after ``ASKING``, ``NOSCRIPT`` loads the scripts on that node. A node that fails
(a primary killed, before its replica is promoted) is retried against a reloaded map
until the read's deadline (``read_timeout``), then the read fails with
StoreUnavailableError (HTTP 503): the error window of a failover is bounded by it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from featurestore.errors import StoreUnavailableError
from featurestore.online.redis_async import AsyncRoundTrips
from featurestore.online.redis_cluster import ASKING, CLUSTER_SLOTS, Address, ClusterRouter, cluster_reply
from featurestore.online.redis_protocol import REDIS_ERRORS, unavailable

__all__ = ["AsyncClusterRoundTrips"]


class AsyncClusterRoundTrips:
    """Round trips routed by slot on the running event loop, giving up after ``timeout`` s."""

    def __init__(self, router: ClusterRouter, url: str, project: str, what: str, timeout: float):
        self.router = router
        self.timeout = timeout
        self._url, self._project, self._what = url, project, what
        self._nodes: dict[Address, AsyncRoundTrips] = {}

    async def run(self, slots: Sequence[int], commands: Sequence[bytes]) -> list:
        """Each command (packed) to its slot's primary; the replies in order. Raises
        StoreUnavailableError when the cluster fails, answers an error or misses the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        replies: list = [None] * len(commands)
        todo = list(range(len(commands)))
        asking: dict[int, Address] = {}
        failure: BaseException | None = None
        try:
            while True:
                try:
                    if self.router.slots.stale:
                        await self._refresh(deadline)
                    groups: dict[Address, list[int]] = {}
                    for i in todo:
                        groups.setdefault(asking.get(i) or self.router.node(slots[i]), []).append(i)
                except REDIS_ERRORS as exc:  # no node answered, or a slot has no node: a failover
                    failure = exc
                else:
                    todo, failure = await self._round(groups, commands, replies, asking, deadline)
                if not todo:
                    break
                if failure is not None:  # a node down or the cluster changing: a short pause, within the deadline
                    await asyncio.sleep(min(0.02, max(0.0, deadline - loop.time())))
                if loop.time() >= deadline:
                    raise TimeoutError
        except TimeoutError:
            cause = f" (last error: {failure})" if failure is not None else ""
            raise StoreUnavailableError(
                f"the {self._what} did not answer within {self.timeout:g} s (online_store.read_timeout){cause}; "
                "check that the cluster is up (a failover takes cluster-node-timeout and an election)") from None
        for reply in replies:
            if isinstance(reply, Exception):
                raise unavailable(reply, self._what)
        return replies

    async def each_primary(self, command: bytes) -> None:
        """``command`` (a PING) on every primary within the deadline."""
        deadline = asyncio.get_running_loop().time() + self.timeout
        try:
            if self.router.slots.stale:
                await self._refresh(deadline)
            await asyncio.gather(*(self._node(a).send([command], deadline) for a in self.router.slots.primaries()))
        except TimeoutError:
            raise StoreUnavailableError(f"the {self._what} did not answer within {self.timeout:g} s") from None
        except REDIS_ERRORS as exc:
            raise unavailable(exc, self._what) from None

    async def aclose(self) -> None:
        nodes, self._nodes = list(self._nodes.values()), {}
        for node in nodes:
            await node.aclose()

    # -- internals -------------------------------------------------------------------

    async def _round(self, groups: dict[Address, list[int]], commands: Sequence[bytes], replies: list,
                     asking: dict[int, Address], deadline: float) -> tuple[list[int], BaseException | None]:
        order = list(groups.items())
        payloads = [[ASKING + commands[i] if i in asking else commands[i] for i in indices] for _, indices in order]
        redirected = dict(asking)
        asking.clear()
        answers = await self._send_all([address for address, _ in order], payloads, deadline)
        retry: list[int] = []
        failure: BaseException | None = None
        for (address, indices), answer in zip(order, answers):
            if isinstance(answer, TimeoutError):
                raise answer
            if isinstance(answer, BaseException):
                if not isinstance(answer, REDIS_ERRORS):
                    raise answer
                failure = answer
                retry += indices
                continue
            answer = iter(answer)
            loads = False
            for i in indices:
                if i in redirected:
                    next(answer)  # ASKING's OK
                reply = replies[i] = next(answer)
                what = cluster_reply(reply)
                if what is None:
                    continue
                word, slot, to = what
                retry.append(i)
                if word == "MOVED":
                    self.router.slots.moved(slot, to)
                elif word == "ASK":
                    asking[i] = to
                elif word == "NOSCRIPT":
                    loads = True
                else:
                    failure = reply
            if loads:
                await self._node(address).send(self.router.load_commands, deadline)
        if failure is not None:
            self.router.slots.stale = True
        return sorted(set(retry)), failure

    async def _send_all(self, addresses: list[Address], payloads: list[list[bytes]], deadline: float) -> list:
        """Each node's commands at once; per node its replies or the exception it raised."""
        if len(addresses) == 1:  # one node (a read of one entity): no task to schedule
            try:
                return [await self._node(addresses[0]).send(payloads[0], deadline)]
            except Exception as exc:  # noqa: BLE001 - handed back like gather's return_exceptions
                return [exc]
        return await asyncio.gather(*(self._node(a).send(p, deadline) for a, p in zip(addresses, payloads)),
                                    return_exceptions=True)

    async def _refresh(self, deadline: float) -> None:
        failure: BaseException | None = None
        for address in self.router.slots.candidates():
            try:
                (reply,) = await self._node(address).send([CLUSTER_SLOTS], deadline)
            except REDIS_ERRORS as exc:
                failure = exc
                continue
            failure = self.router.slots.accept(reply, address)
            if failure is None:
                return
        raise failure or ConnectionError(f"no node of the {self._what} answered")

    def _node(self, address: Address) -> AsyncRoundTrips:
        node = self._nodes.get(address)
        if node is None:
            node = self._nodes[address] = AsyncRoundTrips(self._url, self._project, self._what, self.timeout,
                                                          address=address)
        return node
