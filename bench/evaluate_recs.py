#!/usr/bin/env python3
"""Prequential HitRate@10 / NDCG@10 of the online recommender against popularity baselines.

    python3 bench/evaluate_recs.py                       # simulator only
    python3 bench/evaluate_recs.py --movielens PATH      # + a MovieLens u.data / RecBole .inter
    python3 bench/evaluate_recs.py --kuairand PATH       # + a KuaiRand-style CSV

Without --movielens it looks for MovieLens-100k in $SV_ML100K or inside an installed RecBole
package (``recbole/dataset_example/ml-100k/ml-100k.inter``: ``pip install recbole --no-deps``
ships the real ML-100k).  The goal is HitRate@10 >= 1.3x the best popularity baseline.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time

import click

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from models.evaluation import evaluate_log, evaluate_simulated, format_results_table  # noqa: E402

GOAL = 1.3


ML100K_MEMBER = "recbole/dataset_example/ml-100k/ml-100k.inter"
DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".state", "data")


def _fetch_ml100k() -> str | None:
    """MovieLens-100k as shipped inside the RecBole wheel (PyPI), extracted to .state/data."""
    import glob
    import subprocess
    import zipfile

    target = os.path.join(DATA_DIR, "ml-100k.inter")
    if os.path.exists(target):
        return target
    os.makedirs(DATA_DIR, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", DATA_DIR,
                           "recbole==1.2.1"], capture_output=True)
    wheels = glob.glob(os.path.join(DATA_DIR, "recbole-*.whl"))
    if done.returncode != 0 or not wheels:
        return None
    with zipfile.ZipFile(wheels[0]) as wheel, open(target, "wb") as out:
        out.write(wheel.read(ML100K_MEMBER))
    return target


def _find_ml100k() -> str | None:
    env = os.environ.get("SV_ML100K")
    if env and os.path.exists(env):
        return env
    spec = importlib.util.find_spec("recbole")
    if spec and spec.submodule_search_locations:
        for base in spec.submodule_search_locations:
            p = os.path.join(base, "dataset_example", "ml-100k", "ml-100k.inter")
            if os.path.exists(p):
                return p
    return _fetch_ml100k()


@click.command()
@click.option("--events", "n_events", default=200_000, show_default=True, help="simulated events")
@click.option("--seed", default=7, show_default=True)
@click.option("--movielens", "ml_path", default=None, help="MovieLens u.data or RecBole .inter")
@click.option("--kuairand", "kr_path", default=None, help="KuaiRand-style CSV log")
@click.option("--max-log-events", default=None, type=int, help="cap events read from each log")
@click.option("--progress/--no-progress", default=False)
def main(n_events, seed, ml_path, kr_path, max_log_events, progress):
    runs = []
    t = time.time()
    runs.append(("simulator", evaluate_simulated(seed=seed, n_events=n_events, progress=progress), time.time() - t))
    ml_path = ml_path or _find_ml100k()
    if ml_path:
        t = time.time()
        runs.append((f"movielens {ml_path}", evaluate_log(ml_path, "movielens", progress=progress,
                                                          max_events=max_log_events), time.time() - t))
    else:
        print("(no MovieLens log found: pass --movielens PATH)")
    if kr_path:
        t = time.time()
        runs.append((f"kuairand {kr_path}", evaluate_log(kr_path, "kuairand", progress=progress,
                                                         max_events=max_log_events), time.time() - t))
    ok = True
    for name, res, secs in runs:
        print()
        print(format_results_table(res, title=f"== {name} ({secs:.0f} s)"))
        met = res["ratio_hit_rate"] >= GOAL
        ok &= met
        print(f"goal HitRate@10 >= {GOAL}x best baseline: {'MET' if met else 'NOT MET'} ({res['ratio_hit_rate']:.2f}x)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
