"""Draw docs/scaling.png from the raw numbers of the last ``bench.serving`` run.

Run from the project root (needs matplotlib: ``pip install -e '.[bench]'``)::

    .venv/bin/python -m bench.plot_scaling

``bench.serving`` draws the plot itself when matplotlib is installed; this draws it
afterwards from ``bench/out/serving.json`` (the same measurements, nothing re-measured)
and adds the image to the ``serving-scaling`` section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import json
import sys

from . import common, serving

IMAGE_LINE = "![latency and memory against articles](scaling.png)"


def main() -> int:
    raw = common.OUT_DIR / "serving.json"
    try:
        scaling = json.loads(raw.read_text(encoding="utf-8"))["scaling"]
    except (OSError, ValueError, KeyError):
        sys.exit(f"bench.plot_scaling: no scaling figures in {raw}; run python -m bench.serving first")
    if not serving.plot(scaling, common.REPO / "docs" / "scaling.png"):
        sys.exit("bench.plot_scaling: matplotlib is not installed (pip install -e '.[bench]')")
    text = common.BENCHMARKS_MD.read_text(encoding="utf-8")
    start, end = "<!-- bench:serving-scaling:start -->", "<!-- bench:serving-scaling:end -->"
    body = text.split(start, 1)[1].split(end, 1)[0].strip()
    if IMAGE_LINE not in body:
        common.update_section("serving-scaling", body + "\n\n" + IMAGE_LINE)
    print(f"wrote docs/scaling.png from {len(scaling)} measured corpus sizes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
