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


@main.command()
@click.option("--log", "log_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="interaction log: MovieLens u.data (or RecBole .inter) or KuaiRand-style CSV")
@click.option("--format", "fmt", type=click.Choice(["movielens", "kuairand"]), default=None,
              help="log format (default: detected)")
@click.option("--mapping", default=None,
              help='JSON column mapping for other logs, e.g. {"user_id": 0, "video_id": 1, "ts": 3, "rating": 2}')
@click.option("--simulated", is_flag=True, help="evaluate on simulated traffic with latent tastes")
@click.option("--events", "n_events", type=int, default=200_000, show_default=True,
              help="simulated events (with --simulated)")
@click.option("--max-events", type=int, default=None, help="read at most this many log events")
@click.option("--k", type=int, default=10, show_default=True)
@click.option("--progress/--no-progress", default=True, show_default=True)
def evaluate(log_path, fmt, mapping, simulated, n_events, max_events, k, progress) -> None:
    """Prequential (test-then-learn) HitRate@K / NDCG@K against popularity baselines."""
    import orjson

    from models.evaluation import evaluate_log, evaluate_simulated, format_results_table

    if not log_path and not simulated:
        raise click.UsageError("give --log FILE or --simulated")
    if simulated:
        result = evaluate_simulated(n_events=n_events, k=k, progress=progress)
    else:
        result = evaluate_log(log_path, fmt, orjson.loads(mapping) if mapping else None, k=k,
                              progress=progress, max_events=max_events)
    click.echo(format_results_table(result, title=result.get("source")))


@main.command()
@click.option("--log", "log_path", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--format", "fmt", type=click.Choice(["movielens", "kuairand"]), default=None)
@click.option("--mapping", default=None, help="JSON column mapping for other logs")
@click.option("--speed", type=float, default=0.0, show_default=True,
              help="scale of the original inter-event times (2 = twice as fast); 0 = as fast as possible")
@click.option("--max-events", type=int, default=None)
def replay(log_path, fmt, mapping, speed, max_events) -> None:
    """Produce a real interaction log into the events topic as contract events."""
    import orjson

    from stream_app.replay import replay_log

    sent = asyncio.run(replay_log(get_settings(), log_path, fmt=fmt,
                                  mapping=orjson.loads(mapping) if mapping else None,
                                  speed=speed, max_events=max_events))
    click.echo(f"produced {sent} events")


if __name__ == "__main__":
    main()
