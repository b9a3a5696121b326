"""Behaviour: decayed popularity, recent and purchased products, bought together, popular queries; following the log."""

from __future__ import annotations

import math
import random
import time

import pytest

from shopray.config import EventsConfig
from shopray.events import Behaviour, Event, EventLog, SqliteEventLog

from .conftest import BACKENDS, open_log

DAY = 86400.0
TYPES = ["view", "click", "add_to_cart", "purchase"]


def ev(session: str, product: str, type: str = "view", **fields) -> Event:
    return Event(session_id=session, type=type, product_id=product, **fields)


@pytest.fixture
def log(tmp_path):
    with SqliteEventLog(tmp_path / "events.sqlite") as log:
        yield log


def behaviour(log: EventLog, **config) -> Behaviour:
    b = Behaviour(log, EventsConfig(**config))
    b.refresh()
    return b


def test_an_event_one_half_life_old_weighs_half_and_types_weigh_as_configured(log):
    now = time.time()
    log.append([ev("s1", "old", ts=now - 3600), ev("s2", "new", ts=now), ev("s3", "bought", "purchase", ts=now), ev("s4", "clicked", "click", ts=now - 7200)], now)
    b = behaviour(log, half_life_h=1)
    assert b.popularity(["old", "new", "bought", "clicked", "unseen"]) == pytest.approx({"old": 1 / 16, "new": 1 / 8, "bought": 1.0, "clicked": 1 / 16, "unseen": 0.0})
    assert b.popular(2, exclude=["bought"]) == [("new", pytest.approx(1 / 8)), ("clicked", pytest.approx(1 / 16))]


def test_popularity_survives_events_far_apart_in_time(log):
    now = time.time()
    log.append([ev("s1", "ancient", ts=now - 9 * 365 * DAY), ev("s1", "new", ts=now), ev("s2", "new", "click", ts=now)], now)
    b = behaviour(log, half_life_h=1)  # tens of thousands of half-lives: the scaled sums must not overflow
    assert b.popularity(["ancient", "new"]) == {"ancient": 0.0, "new": 1.0}


def test_recent_keeps_the_latest_occurrence_last_and_is_capped(log):
    now = time.time()
    log.append([ev("s1", p, ts=now - 10 + i) for i, p in enumerate(["a", "b", "a", "c", "d", "b", "e"])] + [ev("s2", "z", ts=now)], now)
    b = behaviour(log, recent_per_session=4)
    assert b.recent("s1") == ["c", "d", "b", "e"]
    assert b.recent("s1", k=2) == ["b", "e"]
    assert b.recent("nobody") == []
    assert (b.sessions, b.events) == (2, 8)


def test_purchased_holds_only_purchases(log):
    log.append([ev("s1", "a", "purchase"), ev("s1", "b", "add_to_cart"), ev("s1", "c", "click"), ev("s2", "d", "purchase")], time.time())
    assert behaviour(log).purchased("s1") == {"a"}


def test_bought_together_counts_sessions_not_events(log):
    now = time.time()
    log.append([
        ev("s1", "a", "add_to_cart", ts=now), ev("s1", "b", "add_to_cart", ts=now), ev("s1", "a", "purchase", ts=now), ev("s1", "b", "purchase", ts=now),
        ev("s2", "a", "add_to_cart", ts=now), ev("s2", "c", "purchase", ts=now),
        ev("s3", "b", "purchase", ts=now), ev("s3", "a", "add_to_cart", ts=now),
        ev("s4", "a", "view", ts=now), ev("s4", "d", "click", ts=now),  # looking is not buying
    ], now)
    b = behaviour(log)
    assert b.bought_together(["a"], k=5) == [("b", 2.0), ("c", 1.0)]
    assert b.bought_together(["a", "c"], k=5) == [("b", 2.0)]  # the given products are never suggested
    assert b.bought_together(["b", "c"], k=5, exclude=["x"]) == [("a", 3.0)]
    assert b.bought_together(["a"], k=5, exclude=["b"]) == [("c", 1.0)]


def test_neighbours_per_product_are_capped(log):
    now = time.time()
    log.append([ev(f"s{i}", p, "purchase", ts=now) for i in range(6) for p in ("hub", f"x{i}")] + [ev("s9", "hub", "purchase"), ev("s9", "x5", "purchase")], now)
    together = behaviour(log, neighbours_per_product=3).bought_together(["hub"], k=10)
    assert len(together) == 3 and together[0] == ("x5", 2.0)


def test_popular_queries_are_normalised_and_counted(log):
    queries = ["Running  Shoes", "running shoes", "\tBoots\n", " ", None, "running shoes"]
    log.append([ev("s1", f"p{i}", query=q) for i, q in enumerate(queries)], time.time())
    assert behaviour(log).popular_queries(5) == [("running shoes", 3), ("boots", 1)]


def test_follow_picks_up_a_new_event_within_a_second(log):
    b = behaviour(log)
    log.append([ev("s1", "fresh")], time.time())
    deadline = time.monotonic() + 1.0
    while b.recent("s1") != ["fresh"] and time.monotonic() < deadline:
        b.follow(every_s=0.1)
        time.sleep(0.01)
    assert b.recent("s1") == ["fresh"]
    assert b.popular(1) == [("fresh", 1.0)]


def test_erasing_a_session_forgets_its_contributions_at_the_next_refresh(log):
    now = time.time()
    log.append([ev("s1", "a", "purchase", query="secret", ts=now), ev("s1", "b", "purchase", ts=now), ev("s2", "c", "view", query="shoes", ts=now)], now)
    b = behaviour(log)
    assert b.popular(1)[0][0] == "a" and b.bought_together(["a"], 1) == [("b", 1.0)]
    log.erase_session("s1")
    assert b.refresh() == 1  # rebuilt from the start of the log
    assert b.popularity(["a", "b", "c"]) == {"a": 0.0, "b": 0.0, "c": 1.0}
    assert (b.recent("s1"), b.purchased("s1"), b.bought_together(["a"], 5), b.popular_queries(5)) == ([], set(), [], [("shoes", 1)])
    assert (b.sessions, b.events) == (1, 1)


def random_batches(seed: int, n: int, now: float) -> list[list[Event]]:
    rng = random.Random(seed)
    queries = ["Running Shoes", "running  shoes", "red dress", "\tboots", "", None, None, None]
    batches: list[list[Event]] = []
    sent: list[Event] = []
    while len(sent) < n:
        batch: list[Event] = []
        for _ in range(rng.randint(1, 80)):
            if sent and rng.random() < 0.05:
                batch.append(rng.choice(sent))  # resent from an earlier batch
            elif batch and rng.random() < 0.03:
                batch.append(rng.choice(batch))  # repeated inside the batch
            else:
                batch.append(Event(
                    session_id=f"s{rng.randrange(120)}", type=rng.choices(TYPES, weights=[60, 25, 10, 5])[0], product_id=f"p{rng.randrange(200)}",
                    query=rng.choice(queries), ts=now - rng.uniform(0, 12 * DAY) if rng.random() < 0.8 else None,
                    event_id=f"e{rng.getrandbits(40)}" if rng.random() < 0.5 else None,
                ))
        batches.append(batch)
        sent += batch
    return batches


def features(b: Behaviour) -> dict:
    products, sessions = [f"p{i}" for i in range(200)], [f"s{i}" for i in range(120)]
    return {
        "popularity": b.popularity(products),
        "popular": b.popular(40, exclude=["p1"]),
        "recent": {s: b.recent(s) for s in sessions},
        "purchased": {s: b.purchased(s) for s in sessions},
        "together": {p: b.bought_together([p, "p2"], 10, exclude=["p3"]) for p in products},
        "queries": b.popular_queries(10),
        "counts": (b.events, b.sessions),
    }


def test_both_backends_give_the_same_features_for_the_same_events(request, tmp_path):
    now = time.time()
    batches = random_batches(seed=7, n=3000, now=now)
    config = EventsConfig(recent_per_session=8, neighbours_per_product=5, half_life_h=24)
    tailed, rebuilt = {}, {}
    for backend in BACKENDS:
        with open_log(backend, request, tmp_path) as log:
            b = Behaviour(log, config)
            for i, batch in enumerate(batches):
                log.append(batch, now + i)
                if i == len(batches) // 2:
                    b.refresh()
            b.refresh()
            tailed[backend] = features(b)
            assert features(behaviour(log, **config.model_dump())) == tailed[backend]  # tailing agrees with reading the log at once
            assert log.erase_session("s7") > 0 and log.purge(now - 10 * DAY) > 0
            b.refresh()
            rebuilt[backend] = features(b)
    assert tailed["sqlite"] == tailed["redis"]
    assert rebuilt["sqlite"] == rebuilt["redis"]
    after = rebuilt["sqlite"]
    assert tailed["sqlite"]["recent"]["s7"] and after["recent"]["s7"] == []
    assert 2000 < after["counts"][0] < tailed["sqlite"]["counts"][0] < 3000
    assert sum(map(bool, after["together"].values())) > 100 and after["queries"][0][0] == "running shoes"


def test_log_popularity_is_a_log_ratio_to_the_top_product_and_zero_without_events(log):
    now = time.time()
    # Decayed weighted counts at `now`: "top" 8 purchases = 64, "some" one click = 2, "old" one view two half-lives ago = 1/4.
    log.append([ev(f"s{i}", "top", "purchase", ts=now) for i in range(8)] + [ev("s9", "some", "click", ts=now), ev("s9", "old", ts=now - 7200)], now)
    b = behaviour(log, half_life_h=1)
    got = b.log_popularity(["top", "some", "old", "unseen"], now=now)
    assert got == pytest.approx([1.0, math.log1p(2) / math.log1p(64), math.log1p(0.25) / math.log1p(64), 0.0])
    # Linear popularity puts "some" at 1/32: the log keeps it well clear of a product without events.
    assert got[1] > 0.25 > b.popularity(["some"])["some"]
    # The whole log decays together, so the ratios hold an hour later only approximately, and stay ordered.
    later = b.log_popularity(["top", "some", "old", "unseen"], now=now + 3600)
    assert later[0] == pytest.approx(1.0) and later[0] > later[1] > later[2] > later[3] == 0.0


def test_log_popularity_of_an_empty_log_is_zero(log):
    assert behaviour(log).log_popularity(["a", "b"]).tolist() == [0.0, 0.0]


def test_popularity_only_matches_the_full_features_and_holds_no_session(log):
    now = time.time()
    rng = random.Random(4)
    log.append([ev(f"s{rng.randrange(30)}", f"p{rng.randrange(50)}", rng.choice(TYPES), query="drill", ts=now - rng.random() * 3 * DAY)
                for _ in range(2000)], now)
    full, lean = behaviour(log), Behaviour(log, EventsConfig(), popularity_only=True)
    lean.refresh()
    products = [f"p{i}" for i in range(60)]
    assert lean.log_popularity(products, now=now).tolist() == pytest.approx(full.log_popularity(products, now=now).tolist())
    assert lean.popular(10) == full.popular(10) and lean.events == full.events == 2000
    assert full.sessions == 30 and lean.sessions == 0 and lean.popular_queries(1) == [] and lean.recent("s1") == []
