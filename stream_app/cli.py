"""``stream-app``: the one command line of the project.

    stream-app worker              run the Faust worker (creates the topics first)
    stream-app simulate --rate 500 --duration 60
    stream-app topics              create the contract's topics and exit
"""
from __future__ import annotations

import asyncio
import logging
import sys

import click

from stream_app.settings import get_settings


@click.group()
def main() -> None:
    """Real-time stream processor for short-video marketing."""


@main.command()
@click.option("--log-level", default=None, help="debug, info, warning (default: SV_LOG_LEVEL)")
@click.option("--web-port", type=int, default=None, help="HTTP port (default: SV_WEB_PORT or 6066)")
def worker(log_level: str | None, web_port: int | None) -> None:
    """Run the stream-processing worker."""
    from stream_app.topics import ensure_topics

    settings = get_settings()
    asyncio.run(ensure_topics(settings))
    from stream_app.app import app

    level = (log_level or settings.log_level).lower()
    level = {"warning": "warn", "critical": "crit"}.get(level, level)
    argv = [sys.argv[0], "worker", "-l", level,
            "--web-port", str(web_port or settings.web_port), "--web-host", settings.web_host]
    sys.argv = argv
    app.main()


@main.command()
def topics() -> None:
    """Create the contract's topics (idempotent) and exit."""
    from stream_app.topics import ensure_topics

    created = asyncio.run(ensure_topics(get_settings()))
    click.echo(f"created: {', '.join(created) or 'nothing (all exist)'}")


@main.command()
@click.option("--rate", type=float, default=200.0, show_default=True, help="events per second")
@click.option("--duration", type=float, default=60.0, show_default=True,
              help="seconds to run; 0 = until interrupted")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--users", type=int, default=2000, show_default=True)
@click.option("--videos", type=int, default=500, show_default=True)
def simulate(rate: float, duration: float, seed: int, users: int, videos: int) -> None:
    """Produce simulated live traffic (catalog records, then events) to Kafka."""
    from stream_app.simulate import run_simulation

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sent = asyncio.run(run_simulation(get_settings(), rate=rate, duration=duration, seed=seed,
                                      n_users=users, n_videos=videos))
    click.echo(f"produced {sent} events")


if __name__ == "__main__":
    main()
