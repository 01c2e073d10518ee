"""``python -m podpod_scraping.demo.quiet_dagster ARGS``: the ``dagster`` CLI, quieter.

The demo and ``make ui`` run the real Dagster CLI; this only silences the warnings a
newcomer cannot act on (beta, preview, and "superseded by dg" notices). Everything else,
the CLI's own behaviour included, is unchanged.
"""

from __future__ import annotations

import sys
import warnings


def main(argv: list[str]) -> int:
    import dagster as dg
    from dagster._cli import main as dagster_main  # what the `dagster` console script runs

    for category in (dg.BetaWarning, dg.PreviewWarning, dg.SupersessionWarning):
        warnings.filterwarnings("ignore", category=category)
    sys.argv = ["dagster", *argv]
    result = dagster_main()
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
