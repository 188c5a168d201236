"""The dispatcher's HTTP clients, one per subscription, against a receiver on loopback."""

import asyncio
import threading

from complaintcore.webhooks.clients import SubscriptionClients
from webhook_support import Receiver, wait_for


async def _post(clients: SubscriptionClients, subscription_id: str, url: str) -> int:
    response = await clients.for_subscription(subscription_id).post(url, content=b"{}")
    return response.status_code


async def test_each_subscription_has_its_own_client_kept_for_its_next_send() -> None:
    async with SubscriptionClients(5.0, 4) as clients:
        first = clients.for_subscription("sub-a")
        assert clients.for_subscription("sub-a") is first
        assert clients.for_subscription("sub-b") is not first
        assert len(clients) == 2


async def test_a_subscription_s_sends_share_at_most_its_own_connections() -> None:
    """Eight sends at once through one subscription allowed two: two connections, the others
    wait for them; later sends reuse them."""
    hold = threading.Event()
    with Receiver(hold=hold) as receiver:
        async with SubscriptionClients(5.0, 2) as clients:
            sends = [asyncio.create_task(_post(clients, "sub-a", receiver.url)) for _ in range(8)]
            await wait_for(lambda: len(receiver.received) == 2, timeout_s=5)
            await asyncio.sleep(0.2)  # room for a third connection, were the pool not bounded
            assert (receiver.connections, len(receiver.received)) == (2, 2)
            hold.set()
            assert await asyncio.gather(*sends) == [200] * 8
            assert await _post(clients, "sub-a", receiver.url) == 200
    assert receiver.connections == 2


async def test_one_subscription_held_up_leaves_another_its_connections() -> None:
    """A receiver that keeps one subscription's two sends waiting (all it may have): another
    subscription's send goes through at once, on a connection of its own (one pool for both,
    bounded at two, would have kept it waiting)."""
    hold = threading.Event()
    with Receiver(hold=hold) as slow_receiver, Receiver() as receiver:
        async with SubscriptionClients(5.0, 2) as clients:
            slow = [asyncio.create_task(_post(clients, "slow", slow_receiver.url)) for _ in (1, 2)]
            await wait_for(lambda: len(slow_receiver.received) == 2, timeout_s=5)
            async with asyncio.timeout(2):
                assert await _post(clients, "fast", receiver.url) == 200
            hold.set()
            assert await asyncio.gather(*slow) == [200, 200]


async def test_beyond_the_kept_number_the_least_recently_used_idle_clients_close() -> None:
    async with SubscriptionClients(5.0, 2, keep=3) as clients:
        made = {name: clients.for_subscription(name) for name in "abcde"}
        clients.for_subscription("a")  # used again: now the most recent

        await clients.close_idle(busy={"b"})  # two too many: c and d, the oldest idle

        assert len(clients) == 3
        assert {name for name, client in made.items() if client.is_closed} == {"c", "d"}
        assert clients.for_subscription("c") is not made["c"]  # made again when needed

        await clients.close_idle(busy=set("abce"))  # one too many, none idle: none closed
        assert len(clients) == 4


async def test_leaving_the_block_closes_every_client() -> None:
    async with SubscriptionClients(5.0, 2) as clients:
        made = [clients.for_subscription(name) for name in ("a", "b", "c")]
    assert all(client.is_closed for client in made)
    assert len(clients) == 0
