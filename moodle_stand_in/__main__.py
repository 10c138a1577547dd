"""``python -m moodle_stand_in --port 8099 --state-file PATH``: serve the stand-in until killed.

The token comes only from the MOODLE_STAND_IN_TOKEN environment variable, never from a flag or a
file, so it does not show up in process listings or in the repository.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path

from . import MoodleStandIn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m moodle_stand_in", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8099, help="0 picks a free port (default 8099)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state-file", type=Path, help="JSON file keeping users across restarts")
    args = parser.parse_args(argv)
    token = os.environ.get("MOODLE_STAND_IN_TOKEN")
    if not token:
        parser.error("set the MOODLE_STAND_IN_TOKEN environment variable")

    site = MoodleStandIn(token, state_path=args.state_file, host=args.host, port=args.port).start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print(f"listening on {site.base_url}", flush=True)
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        site.stop()


if __name__ == "__main__":
    main()
