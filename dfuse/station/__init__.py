"""Production flashing: a station that flashes every board as it arrives, stamps each
one, and keeps a flash record a whole line of stations can share.

* :class:`Station` (:mod:`dfuse.station.core`): wait for boards, flash each in its own
  worker, record it;
* :mod:`dfuse.station.stamps`: per-board data (serial, unique ID, counter, image hash,
  time) merged into the image before planning;
* :class:`RecordStore` (:mod:`dfuse.station.store`): the flash record in SQLite or
  PostgreSQL (SQLAlchemy Core; the ``station`` extra), and the shared counters;
* :mod:`dfuse.station.uid`: where a part keeps its unique ID.

The station is a layer above :mod:`dfuse.device`: it uses the public device API like
any application would.
"""

from dfuse.station.core import (
    BoardEvent,
    Recording,
    Station,
    StationSummary,
    flash_board,
    recording,
)
from dfuse.station.stamps import (
    BoardFacts,
    StampedImage,
    StampError,
    StampSpec,
    StampValue,
    apply_stamps,
    parse_stamp,
)
from dfuse.station.store import FlashRecord, RecordStore, default_store_path

__all__ = [
    "BoardEvent",
    "BoardFacts",
    "FlashRecord",
    "RecordStore",
    "Recording",
    "StampError",
    "StampSpec",
    "StampValue",
    "StampedImage",
    "Station",
    "StationSummary",
    "apply_stamps",
    "default_store_path",
    "flash_board",
    "parse_stamp",
    "recording",
]
