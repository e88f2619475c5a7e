"""What the payload codec costs a target run: encode and decode time of TargetRunInput
payloads with and without sensitive inputs (the same converter the worker uses).

    .venv/bin/python bench/codec_cost.py [--count 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from domain.inputs import SensitiveValues  # noqa: E402
from workflows.codec import new_key_entry, parse_keyring  # noqa: E402
from workflows.converter import data_converter  # noqa: E402
from workflows.messages import TargetRunInput  # noqa: E402


async def measure(values: list[TargetRunInput]) -> tuple[float, float, float]:
    converter = data_converter(parse_keyring(new_key_entry("bench")))
    started = time.perf_counter()
    payloads = await converter.encode(values)
    encoded = time.perf_counter() - started
    started = time.perf_counter()
    await converter.decode(payloads, [TargetRunInput] * len(values))
    decoded = time.perf_counter() - started
    size = sum(len(p.SerializeToString()) for p in payloads) / len(payloads)
    return encoded / len(values), decoded / len(values), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    count = parser.parse_args().count
    secrets = SensitiveValues({"token": "x" * 64, "password": "y" * 32})
    for name, sensitive in (("with sensitive inputs", secrets), ("without", None)):
        values = [TargetRunInput(f"target-{i}", "stage", "enterprise", 600, "stage-workflow",
                                 sensitive=sensitive) for i in range(count)]
        encode, decode, size = asyncio.run(measure(values))
        print(f"{name}: encode {encode * 1e6:.1f} us, decode {decode * 1e6:.1f} us per "
              f"payload, {size:.0f} bytes ({count} payloads)")


if __name__ == "__main__":
    main()
