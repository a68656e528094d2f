"""The fleet bench's detection watcher, in a process of its own so that its polling is not counted in
the tracker's CPU: polls the database every 50 ms for RESTARTING events until ``--until`` (epoch),
then prints ``{app_id: first seen (epoch)}`` as one JSON line.
Run: ``python -m bench.fleet_events --database <sqlite file> --until <epoch>``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--until", type=float, required=True)
    args = parser.parse_args()
    db = sqlite3.connect(args.database, timeout=30)
    seen: dict[int, float] = {}
    last = 0
    while time.time() < args.until:
        rows = db.execute(
            "SELECT id, app_id FROM app_events WHERE id > ? AND to_state = 'RESTARTING'", (last,)
        ).fetchall()
        now = time.time()
        for event_id, app_id in rows:
            seen.setdefault(app_id, now)
            last = max(last, event_id)
        time.sleep(0.05)
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    main()
