"""The call through the relay, with real aiortc clients speaking docs/protocol.md."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.keys import CALLS
from signaling.ids import participant_id, room_id, track_id
from signaling.relay import feedback
from tests.conftest import Platform, Templates, cloned_database
from tests.helpers import district_item, take, ticket_called, until, window_of
from tests.relay_internals import fast_receive_active, never_decoded, never_encoded
from tests.rtc_client import CallClient


@pytest.fixture
async def database_url(templates: Templates, tmp_path: Path) -> AsyncIterator[str]:
    """Media tests run on SQLite only: the database is not what they exercise."""
    async with cloned_database("sqlite", templates, tmp_path) as url:
        yield url


@pytest.fixture
async def called(platform: Platform):
    """worker1's ticket, called by clerk1: (ticket, worker api, clerk api)."""
    return await ticket_called(platform, "视频群众")


@pytest.fixture
async def clients(platform: Platform):
    made: list[CallClient] = []

    async def make(api) -> CallClient:
        made.append(await CallClient(platform.base, api.token).connect())
        return made[-1]

    yield make
    for c in made:
        await c.close()


def relay_of(platform: Platform):
    return platform.app[CALLS].relay


async def test_worker_and_clerk_see_and_hear_each_other_through_the_relay(platform, called, clients) -> None:
    ticket, worker_api, clerk_api = called
    worker, clerk = await clients(worker_api), await clients(clerk_api)
    joined = await worker.join(ticket["id"])
    assert joined["role"] == "worker" and joined["participant_id"] == participant_id(worker_api.user['id'])
    assert (await clerk.join(ticket["id"]))["role"] == "clerk"
    assert "sdp" in await worker.publish()
    assert "sdp" in await clerk.publish()
    w_cam, c_cam = track_id(participant_id(worker_api.user['id']), "camera"), track_id(participant_id(clerk_api.user['id']), "camera")
    await clerk.wait_frames(w_cam, 20)
    await worker.wait_frames(c_cam, 20)
    await clerk.wait_frames(track_id(participant_id(worker_api.user['id']), "microphone"), 20)
    await worker.wait_frames(track_id(participant_id(clerk_api.user['id']), "microphone"), 20)

    # Passthrough: every video payload the clerk received is one the worker's encoder produced.
    received = clerk.received_payloads[w_cam]
    assert len(received) > 20
    assert all(p in worker.sent_payloads for p in received)
    relay = relay_of(platform)
    room = relay.rooms[room_id(ticket['id'])]
    for participant in room.participants.values():
        for source in participant.sources.values():
            assert never_decoded(source.receiver), "the relay never feeds a decoder"
            assert fast_receive_active(source.receiver), "packets skip aiortc's receive queue"
        for outlet in participant.outlets:
            assert never_encoded(outlet.sender.sender), "the relay never creates an encoder"
    labels = {t["track_id"]: t for t in worker.track_by_mid.values()}
    assert labels[c_cam]["role"] == "clerk" and labels[c_cam]["source"] == "camera"


async def test_a_subscriber_keyframe_request_reaches_the_publisher(called, clients) -> None:
    ticket, worker_api, clerk_api = called
    worker, clerk = await clients(worker_api), await clients(clerk_api)
    await worker.join(ticket["id"])
    await clerk.join(ticket["id"])
    await worker.publish(audio=False)
    await clerk.wait_frames(track_id(participant_id(worker_api.user['id']), "camera"), 10)
    await asyncio.sleep(0.6)
    before = worker.keyframe_requests
    await clerk.request_keyframe()

    async def arrived() -> None:
        while worker.keyframe_requests == before:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(arrived(), 5)


async def test_screen_share_arrives_as_a_second_labelled_video_track(called, clients) -> None:
    ticket, worker_api, clerk_api = called
    worker, clerk = await clients(worker_api), await clients(clerk_api)
    await worker.join(ticket["id"])
    await clerk.join(ticket["id"])
    await clerk.publish()
    clerk_id = clerk_api.user["id"]
    await worker.wait_frames(track_id(participant_id(clerk_id), "camera"), 5)
    await clerk.publish(screen=True)
    await worker.wait_frames(track_id(participant_id(clerk_id), "screen"), 10)
    await worker.wait_frames(track_id(participant_id(clerk_id), "camera"), 10)
    screen = [t for t in worker.track_by_mid.values() if t.get("source") == "screen"]
    assert screen and screen[0]["kind"] == "video" and screen[0]["role"] == "clerk"


async def test_strangers_and_wrong_tickets_are_refused(platform, called, clients) -> None:
    ticket, worker_api, clerk_api = called
    stranger = await clients(await platform.login("worker2"))
    other_clerk = await clients(await platform.login("clerk2"))
    for client in (stranger, other_clerk):
        reply = await client.join(ticket["id"])
        assert reply["error"]["code"] == "ticket_not_found"
    worker = await clients(worker_api)
    assert (await worker.join(999999))["error"]["code"] == "ticket_not_found"
    waiting = await take(worker_api, (await district_item(worker_api, "SB"))["id"], "还在排队")
    assert (await worker.join(waiting["id"]))["error"]["code"] == "call_not_open"
    worker.ticket_id = ticket["id"]
    not_joined = await worker.request("publish", {"ticket_id": ticket["id"], "type": "offer",
                                                  "sdp": "v=0 not joined", "sources": {"0": "camera"}})
    assert not_joined["error"]["code"] == "not_in_call"
    await worker.join(ticket["id"])
    garbage = await worker.request("publish", {"ticket_id": ticket["id"], "type": "offer",
                                               "sdp": "this is not sdp at all", "sources": {"0": "camera"}})
    assert garbage["error"]["code"] in ("malformed_sdp", "negotiation_failed")
    shapeless = await worker.request("publish", {"ticket_id": "x"})
    assert shapeless["error"]["code"] == "invalid_input"
    assert relay_of(platform).rooms[room_id(ticket['id'])].participants[participant_id(worker_api.user['id'])].publish_pc is None


async def test_call_chat_is_stored_on_the_case(platform, called, clients) -> None:
    ticket, worker_api, clerk_api = called
    worker, clerk = await clients(worker_api), await clients(clerk_api)
    await worker.join(ticket["id"])
    await clerk.join(ticket["id"])
    sent = await clerk.request("chat", {"ticket_id": ticket["id"], "text": "请把身份证正面对准摄像头"})
    assert sent["ok"] and sent["message"]["author_role"] == "clerk"

    async def delivered() -> None:
        while not worker.named("chat_message"):
            await asyncio.sleep(0.02)

    await asyncio.wait_for(delivered(), 5)
    history = await clerk_api.get(f"/api/tickets/{ticket['id']}/messages")
    assert [m["text"] for m in history.body] == ["请把身份证正面对准摄像头"]


async def test_a_dropped_socket_rejoins_its_place_and_media_flows_again(platform, called, clients) -> None:
    ticket, worker_api, clerk_api = called
    worker, clerk = await clients(worker_api), await clients(clerk_api)
    await worker.join(ticket["id"])
    await clerk.join(ticket["id"])
    await worker.publish()
    await clerk.publish()
    w_cam = track_id(participant_id(worker_api.user['id']), "camera")
    await clerk.wait_frames(w_cam, 5)
    await worker.close()  # the network went away: socket and peer connections gone
    await asyncio.sleep(0.5)
    assert participant_id(worker_api.user['id']) in relay_of(platform).rooms[room_id(ticket['id'])].participants
    again = await clients(worker_api)
    reply = await again.join(ticket["id"])
    assert reply["rejoined"] is True
    await again.publish()
    await clerk.wait_frames(w_cam, 20)
    await again.wait_frames(track_id(participant_id(clerk_api.user['id']), "camera"), 20)
    assert (await worker_api.get(f"/api/tickets/{ticket['id']}")).body["status"] == "called"


async def test_a_broken_subscription_of_one_participant_does_not_fail_another_leave_or_publish(
        platform, called, clients) -> None:
    """A leave or publish renegotiates everyone else's subscription; one that cannot (its
    connection closed under it) is left to resubscribe, and the leave or publish still holds.
    (Before, the leaver got internal_error and stayed in the room.)"""
    ticket, worker_api, clerk_api = called
    worker, clerk = await clients(worker_api), await clients(clerk_api)
    await worker.join(ticket["id"])
    await clerk.join(ticket["id"])
    await worker.publish(size=(160, 120))
    await clerk.publish(size=(160, 120))
    await worker.wait_frames(track_id(participant_id(clerk_api.user['id']), "camera"), 5)
    room = relay_of(platform).rooms[room_id(ticket['id'])]
    broken = room.participants[participant_id(worker_api.user['id'])].subscribe_pc
    assert broken is not None
    await broken.close()

    left = await clerk.request("leave", {"ticket_id": ticket["id"]})
    assert left.get("ok"), left
    assert participant_id(clerk_api.user['id']) not in room.participants
    assert "error" not in await clerk.join(ticket["id"])
    assert "sdp" in await clerk.publish(size=(160, 120))
    resubscribed = await worker.request("resubscribe", {"ticket_id": ticket["id"]})
    assert resubscribed.get("ok"), resubscribed
    await worker.wait_frames(track_id(participant_id(clerk_api.user['id']), "camera"), 5, timeout=30)


async def test_completing_the_ticket_closes_the_call_and_frees_everything(platform, called, clients) -> None:
    ticket, worker_api, clerk_api = called
    worker, clerk = await clients(worker_api), await clients(clerk_api)
    await worker.join(ticket["id"])
    await clerk.join(ticket["id"])
    await worker.publish()
    await clerk.publish()
    await clerk.wait_frames(track_id(participant_id(worker_api.user['id']), "camera"), 5)
    await clerk_api.post(f"/api/tickets/{ticket['id']}/start")
    await clerk_api.post(f"/api/tickets/{ticket['id']}/complete", {"result": "consultation_only"})

    async def closed() -> None:
        while not worker.named("call_closed"):
            await asyncio.sleep(0.02)

    await asyncio.wait_for(closed(), 5)
    assert relay_of(platform).counts() == {"rooms": 0, "participants": 0, "peer_connections": 0}
    assert (await worker.join(ticket["id"]))["error"]["code"] == "call_not_open"


async def watching_worker_camera(platform, called, clients):  # type: ignore[no-untyped-def]
    """The worker publishes its camera alone, the clerk has decoded 30 frames of it: (worker,
    clerk, the camera's track id, the relay's source for it)."""
    ticket, worker_api, clerk_api = called
    worker, clerk = await clients(worker_api), await clients(clerk_api)
    await worker.join(ticket["id"])
    await clerk.join(ticket["id"])
    await worker.publish(audio=False)
    w_cam = track_id(participant_id(worker_api.user['id']), "camera")
    await clerk.wait_frames(w_cam, 30)
    return worker, clerk, w_cam, relay_of(platform).source(room_id(ticket['id']), w_cam)


async def test_one_lost_packet_does_not_freeze_the_subscriber(platform, called, clients) -> None:
    worker, clerk, w_cam, source = await watching_worker_camera(platform, called, clients)
    lost = worker.drop_one_video_packet()
    await clerk.wait_frames(w_cam, 30)
    assert "seq" in lost, "a packet was really dropped"
    times = clerk.frame_times[w_cam]
    after = [t for t in times if t >= lost["at"] - 0.1]
    longest = max(b - a for a, b in zip(after, after[1:], strict=False))
    assert longest < 0.3, f"video froze for {longest * 1000:.0f} ms after one lost packet"
    assert lost.get("retransmissions_dropped", 0) >= 1, "the relay asked again, and that was lost too"
    assert source.gaps_skipped >= 1


async def test_a_lost_retransmission_is_asked_for_again_before_the_relay_gives_up(platform, called, clients) -> None:
    worker, clerk, w_cam, source = await watching_worker_camera(platform, called, clients)
    skipped, recovered = source.gaps_skipped, source.gaps_recovered
    lost = worker.drop_one_video_packet(retransmissions=1)
    await clerk.wait_frames(w_cam, clerk.received[w_cam] + 30)
    assert lost.get("retransmissions_dropped") == 1 and lost.get("retransmissions_sent", 0) >= 1, lost
    assert source.gaps_skipped == skipped, "repaired by the second NACK, not skipped to a keyframe"
    assert source.gaps_recovered > recovered


async def test_a_packet_whose_first_two_repairs_are_lost_is_repaired_by_the_third_nack(platform, called, clients) -> None:
    """On a lossy line a NACK or its retransmission is lost now and then (one in ~17 at 3 % each
    way): the relay asks up to three times before it gives the packet up for a keyframe wait."""
    worker, clerk, w_cam, source = await watching_worker_camera(platform, called, clients)
    skipped, recovered, asked = source.gaps_skipped, source.gaps_recovered, source.nacks_sent
    lost = worker.drop_one_video_packet(retransmissions=2)
    await clerk.wait_frames(w_cam, clerk.received[w_cam] + 30)
    assert lost.get("retransmissions_dropped") == 2 and lost.get("retransmissions_sent", 0) >= 1, lost
    assert source.nacks_sent - asked == feedback.REPAIR_ROUNDS, "aiortc's NACK, then two of the relay's own"
    assert source.gaps_skipped == skipped, "repaired by the third NACK, not skipped to a keyframe"
    assert source.gaps_recovered > recovered


async def test_a_keyframe_request_lost_on_the_way_is_sent_again(platform, called, clients) -> None:
    """A packet lost for good (every retransmission too): the relay resumes at the next keyframe and
    asks the publisher for one. On a bad line that request may be lost as well; the relay asks
    again every two round trips (at least every 0.5 s) until the keyframe comes, rather than leave
    the subscriber frozen until a keyframe nobody asked for."""
    worker, clerk, w_cam, source = await watching_worker_camera(platform, called, clients)
    skipped = source.gaps_skipped
    keyframes = worker.ignore_keyframe_requests(1)
    lost = worker.drop_one_video_packet(retransmissions=None)
    await until(lambda: source.gaps_skipped > skipped, 5, "the relay giving the packet up")
    await clerk.wait_frames(w_cam, 10, timeout=5)
    assert "seq" in lost and keyframes["lost"] == 1, (lost, keyframes)
    assert keyframes["asked"] >= 2, "the lost request was made again"


async def test_fifty_calls_leave_no_peer_connection_task_or_track_behind(platform, clients) -> None:
    import gc

    from aiortc import RTCPeerConnection

    worker_api = await platform.login("worker1")
    clerk_api = await platform.login("clerk1")
    item = await district_item(worker_api, "MZ")

    async def one_call(n: int) -> None:
        ticket = await take(worker_api, item["id"], f"群众{n}")
        await clerk_api.post(f"/api/windows/{window_of(clerk_api)}/call-next")
        worker, clerk = await clients(worker_api), await clients(clerk_api)
        await worker.join(ticket["id"])
        await clerk.join(ticket["id"])
        await worker.publish()
        await clerk.publish()
        await clerk.wait_frames(track_id(participant_id(worker_api.user['id']), "camera"), 3)
        await worker.wait_frames(track_id(participant_id(clerk_api.user['id']), "camera"), 3)
        await clerk_api.post(f"/api/tickets/{ticket['id']}/cancel", {"reason": "测试"})
        for c in (worker, clerk):
            await c.close()

    def census() -> tuple[int, int]:
        gc.collect()
        pcs = sum(1 for o in gc.get_objects() if isinstance(o, RTCPeerConnection))
        # Engine.IO keeps a ping task per closed socket until its next ping interval: not ours.
        tasks = [t for t in asyncio.all_tasks() if "_send_ping" not in getattr(t.get_coro(), "__qualname__", "")]
        return pcs, len(tasks)

    await one_call(0)
    await asyncio.sleep(1)
    before = census()
    for n in range(1, 51):
        await one_call(n)
    await asyncio.sleep(1)
    after = census()
    assert relay_of(platform).counts() == {"rooms": 0, "participants": 0, "peer_connections": 0}
    assert after[0] <= before[0], f"peer connections grew from {before[0]} to {after[0]}"
    assert after[1] <= before[1] + 2, f"tasks grew from {before[1]} to {after[1]}"


async def test_a_subscriber_nack_is_answered_from_the_relay_history(called, clients) -> None:
    ticket, worker_api, clerk_api = called
    worker, clerk = await clients(worker_api), await clients(clerk_api)
    await worker.join(ticket["id"])
    await clerk.join(ticket["id"])
    await worker.publish(audio=False)
    await clerk.wait_frames(track_id(participant_id(worker_api.user['id']), "camera"), 10)
    clerk.drop_incoming["armed"] = True

    async def retransmitted() -> None:
        while clerk.drop_incoming.get("retransmitted") != clerk.drop_incoming.get("seq"):
            await asyncio.sleep(0.02)

    await asyncio.wait_for(retransmitted(), 5)
