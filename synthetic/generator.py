"""Synthetic multi-task (click + conversion) interaction data for MoGENet.

Writes the three canonical CSV files that the canonical reader consumes as they are::

    DIR/interactions.csv   user_id,item_id,timestamp,click,conversion   (one row = one exposure)
    DIR/user_features.csv  user_id,age_bucket,region
    DIR/item_features.csv  item_id,category,brand,price_bucket

Ids are zero-padded strings (``u000123``, ``i00042``), timestamps are integer unix seconds
spread uniformly over 30 days from 2026-01-01T00:00:00Z, labels are 0/1 ints and
``conversion == 1`` only where ``click == 1``. Every user and item in ``interactions.csv`` has a
feature row; items that were never exposed still get a feature row (cold items).

Generative model (all draws from ``numpy.random.default_rng(seed)``, so the same arguments give
byte-identical files; steps 1-5 and the label probabilities are in `synthetic.latent`):

1. **Communities.** ``C`` latent communities (default ``max(4, users // 250)``, capped at
   ``items``) with uneven sizes (Dirichlet weights). Every user has a main community and, with
   probability 0.15, a second one; every item has exactly one community.
2. **Popularity and quality.** Item popularity follows a Zipf law over a random ranking,
   ``p_i ~ 1 / rank_i ** zipf_exponent``, independent of the community. Item quality is standard
   normal, correlated (0.35) with log-popularity. Each user has a click bias ``N(0, 0.5)`` and a
   conversion bias ``N(0, 0.4)``.
3. **Activity.** Exposures per user are lognormal (sigma 1.2) with mean ``mean_exposures``,
   rounded, at least 1 and at most ``items // 4``: a long tail of light users and a few heavy
   ones (at the defaults, 4000 users x 500 items, mean 40: 128k rows, median 20 per user, 15 %
   of the users with 1-5, at most 125). The defaults were raised from 2000 users and mean 15
   (28k rows, about 10 per user), on which no model, graph or not, learned more than the
   items' quality.
4. **Exposures.** Each exposure is, with a per-user probability ``~ Beta(5, 5)`` (mean 0.5), a
   popularity-weighted draw from the user's own community (main community 75 %, second 25 % for
   users that have one), otherwise a popularity-weighted draw from all items. Repeated
   ``(user, item)`` pairs are dropped and redrawn (up to 6 rounds), so only users whose pool runs
   dry end up with fewer rows. Rows are in log order (timestamp, user, item).
5. **Labels.** With ``match`` = 1 for the main community, 0.6 for the second, 0 otherwise::

       click logit      = -3.1 + 1.9 * match + 0.5 * quality + user_click_bias + N(0, 0.3)
       conversion logit = -2.6 + 1.0 * match + 0.6 * conv_quality + user_conv_bias

   where ``conv_quality = 0.5 * quality + 0.87 * N(0, 1)``, so the two tasks are related but not
   identical. Conversion is only drawn for clicked exposures. Typical CTR is 10-20 % and CVR
   given click 10-25 %.
6. **Side features are only partly informative.** ``region`` is ``r{community % 20}`` with
   probability 0.35, else uniform; ``category`` is ``c{community % 24}`` with probability 0.4,
   else uniform; ``price_bucket`` (5 levels) is the quality quintile with probability 0.25 and
   ``brand`` (50 levels) lies in a quality-decile band with probability 0.2, else uniform;
   ``age_bucket`` is pure noise. Features alone cannot recover the communities, whereas the
   co-exposure / co-click graph can.

Usage::

    python -m synthetic.generator --out DIR --users 4000 --items 500 --seed 7
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

import numpy as np

from synthetic import latent

START_TIMESTAMP = 1767225600  # 2026-01-01T00:00:00Z
SPAN_SECONDS = 30 * 86400

INTERACTIONS_HEADER = ("user_id", "item_id", "timestamp", "click", "conversion")
USER_FEATURES_HEADER = ("user_id", "age_bucket", "region")
ITEM_FEATURES_HEADER = ("item_id", "category", "brand", "price_bucket")

INTERACTIONS_FILE = "interactions.csv"
USER_FEATURES_FILE = "user_features.csv"
ITEM_FEATURES_FILE = "item_features.csv"

# Side features (step 6 below; steps 1-5 are `synthetic.latent`).
_N_AGE_BUCKETS, _N_REGIONS = 7, 20
_N_CATEGORIES, _N_BRANDS, _N_PRICE_BUCKETS = 24, 50, 5
_REGION_INFORMATIVE_PROB = 0.35
_CATEGORY_INFORMATIVE_PROB = 0.4
_PRICE_INFORMATIVE_PROB = 0.25
_BRAND_INFORMATIVE_PROB = 0.2


def default_communities(users: int, items: int) -> int:
    """Returns the default number of latent communities.

    Args:
        users: Number of users.
        items: Number of items.

    Returns:
        ``max(4, users // 250)``, but never more than ``items`` (every community needs an item).
    """
    return max(1, min(max(4, users // 250), items))


def _validate(
    users: int,
    items: int,
    communities: int | None,
    mean_exposures: float,
    zipf_exponent: float,
) -> None:
    """Raises ValueError with a one-line message if an argument is out of range."""
    if isinstance(users, bool) or not isinstance(users, (int, np.integer)) or users < 1:
        raise ValueError(f"users must be an integer >= 1, got {users!r}")
    if isinstance(items, bool) or not isinstance(items, (int, np.integer)) or items < 2:
        raise ValueError(f"items must be an integer >= 2, got {items!r}")
    if communities is not None:
        if isinstance(communities, bool) or not isinstance(communities, (int, np.integer)):
            raise ValueError(f"communities must be an integer, got {communities!r}")
        if not 1 <= communities <= items:
            raise ValueError(
                f"communities must be between 1 and items ({items}), got {communities}"
            )
    if not math.isfinite(mean_exposures) or mean_exposures < 1.0:
        raise ValueError(f"mean_exposures must be a finite number >= 1, got {mean_exposures!r}")
    if not math.isfinite(zipf_exponent) or not 0.0 <= zipf_exponent <= 5.0:
        raise ValueError(f"zipf_exponent must be between 0 and 5, got {zipf_exponent!r}")


def _id_strings(prefix: str, n: int, min_width: int) -> np.ndarray:
    """Zero-padded string ids ``prefix + digits`` for ``0..n-1`` as an object array."""
    width = max(min_width, len(str(n - 1)))
    return np.array([f"{prefix}{k:0{width}d}" for k in range(n)], dtype=object)


def _informative(
    rng: np.random.Generator, signal: np.ndarray, n_levels: int, prob: float
) -> np.ndarray:
    """Returns ``signal`` with probability ``prob`` per entry, else a uniform level."""
    noise = rng.integers(0, n_levels, size=signal.shape[0])
    keep = rng.random(signal.shape[0]) < prob
    return np.where(keep, signal, noise)


def _write_lines(path: str, header: tuple[str, ...], columns: list[list[str]]) -> None:
    """Writes a CSV file with ``\\n`` line endings from columns of already-formatted strings."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(",".join(header))
        f.write("\n")
        chunk = 200_000
        n = len(columns[0])
        for start in range(0, n, chunk):
            rows = zip(*(col[start : start + chunk] for col in columns), strict=True)
            f.write("\n".join(map(",".join, rows)))
            f.write("\n")


def generate(
    out_dir: str | os.PathLike[str],
    users: int = 4000,
    items: int = 500,
    seed: int = 7,
    communities: int | None = None,
    mean_exposures: float = 40.0,
    zipf_exponent: float = 1.1,
    return_latent: bool = False,
) -> dict[str, Any]:
    """Generates the synthetic data set and writes the three canonical CSV files.

    Args:
        out_dir: Output directory; created (with parents) if missing.
        users: Number of users (>= 1). Every user gets at least one exposure.
        items: Number of items (>= 2). Items never exposed still get a feature row.
        seed: Seed for ``numpy.random.default_rng``; same arguments give byte-identical files.
        communities: Number of latent communities, 1..items. Defaults to
            ``default_communities(users, items)``.
        mean_exposures: Mean number of exposures per user before deduplication (>= 1).
        zipf_exponent: Exponent of the Zipf item popularity law (0 = uniform, 0..5).
        return_latent: If true, the summary also holds ``"latent"``, a dict of numpy arrays
            indexed by user / item number (the digits of the id): ``user_community``,
            ``user_second_community`` (-1 if none), ``item_community``, ``item_popularity``,
            ``item_quality``, ``item_conv_quality``, ``user_click_bias``, ``user_conv_bias``,
            ``user_community_share`` and ``n_exposures`` (draws before deduplication).

    Returns:
        A summary dict with ``n_interactions``, ``n_users``, ``n_items`` (feature rows),
        ``n_active_items``, ``communities``, ``ctr`` (clicks / exposures), ``cvr``
        (conversions / clicks, 0.0 if there are no clicks) and ``paths`` (a dict with keys
        ``interactions``, ``user_features`` and ``item_features``).

    Raises:
        ValueError: If an argument is out of range.
        OSError: If the output directory or files cannot be written.
    """
    _validate(users, items, communities, mean_exposures, zipf_exponent)
    users, items = int(users), int(items)
    c = default_communities(users, items) if communities is None else int(communities)
    rng = np.random.default_rng(seed)

    lat = latent.sample_latent(rng, users, items, c, float(mean_exposures), float(zipf_exponent))
    user, item = latent.sample_exposures(rng, lat, c)
    n = user.shape[0]

    # Labels.
    uc, ic = lat["user_community"], lat["item_community"]
    click, conversion = latent.draw_labels(rng, lat, user, item)
    timestamp = START_TIMESTAMP + rng.integers(0, SPAN_SECONDS, size=n)

    # Log order: by time, then user, then item.
    order = np.lexsort((item, user, timestamp))
    user, item, timestamp = user[order], item[order], timestamp[order]
    click, conversion = click[order], conversion[order]

    # Side features.
    age = rng.integers(0, _N_AGE_BUCKETS, size=users)
    region = _informative(rng, uc % _N_REGIONS, _N_REGIONS, _REGION_INFORMATIVE_PROB)
    category = _informative(rng, ic % _N_CATEGORIES, _N_CATEGORIES, _CATEGORY_INFORMATIVE_PROB)
    q_rank = np.argsort(np.argsort(lat["item_quality"], kind="stable"), kind="stable") / items
    price_signal = np.minimum((q_rank * _N_PRICE_BUCKETS).astype(np.int64), _N_PRICE_BUCKETS - 1)
    price = _informative(rng, price_signal, _N_PRICE_BUCKETS, _PRICE_INFORMATIVE_PROB)
    band = _N_BRANDS // 10
    brand_signal = np.minimum((q_rank * 10).astype(np.int64), 9) * band + rng.integers(
        0, band, size=items
    )
    brand = _informative(rng, brand_signal, _N_BRANDS, _BRAND_INFORMATIVE_PROB)

    # Write.
    os.makedirs(out_dir, exist_ok=True)
    paths = {
        "interactions": os.path.join(os.fspath(out_dir), INTERACTIONS_FILE),
        "user_features": os.path.join(os.fspath(out_dir), USER_FEATURES_FILE),
        "item_features": os.path.join(os.fspath(out_dir), ITEM_FEATURES_FILE),
    }
    user_ids = _id_strings("u", users, 6)
    item_ids = _id_strings("i", items, 5)
    flag = np.array(["0", "1"], dtype=object)
    _write_lines(
        paths["interactions"],
        INTERACTIONS_HEADER,
        [
            user_ids[user].tolist(),
            item_ids[item].tolist(),
            list(map(str, timestamp.tolist())),
            flag[click.astype(np.int64)].tolist(),
            flag[conversion.astype(np.int64)].tolist(),
        ],
    )
    _write_lines(
        paths["user_features"],
        USER_FEATURES_HEADER,
        [user_ids.tolist(), [f"a{k}" for k in age.tolist()], [f"r{k}" for k in region.tolist()]],
    )
    _write_lines(
        paths["item_features"],
        ITEM_FEATURES_HEADER,
        [
            item_ids.tolist(),
            [f"c{k}" for k in category.tolist()],
            [f"b{k}" for k in brand.tolist()],
            [f"p{k}" for k in price.tolist()],
        ],
    )

    n_clicks = int(click.sum())
    summary: dict[str, Any] = {
        "n_interactions": int(n),
        "n_users": users,
        "n_items": items,
        "n_active_items": int(np.unique(item).shape[0]),
        "communities": c,
        "ctr": n_clicks / n if n else 0.0,
        "cvr": int(conversion.sum()) / n_clicks if n_clicks else 0.0,
        "paths": paths,
    }
    if return_latent:
        summary["latent"] = lat
    return summary


class _OneLineErrorParser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are a single line on stderr (exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Returns the command-line parser.

    Returns:
        The argparse parser for ``python -m synthetic.generator``.
    """
    p = _OneLineErrorParser(
        prog="python -m synthetic.generator",
        description="Write a synthetic click/conversion data set (canonical CSV files) for "
        "MoGENet: latent communities, long-tailed popularity and activity, partly "
        "informative side features.",
    )
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    add_generator_flags(p)
    return p


GENERATOR_FLAGS = ("users", "items", "seed", "communities", "mean_exposures", "zipf_exponent")


def add_generator_flags(p: argparse.ArgumentParser) -> None:
    """Adds the flags of ``generate``'s arguments (``GENERATOR_FLAGS``) to a parser."""
    p.add_argument("--users", type=int, default=4000, help="number of users, >= 1 (default 4000)")
    p.add_argument("--items", type=int, default=500, help="number of items, >= 2 (default 500)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument(
        "--communities",
        type=int,
        default=None,
        help="number of latent communities, 1..items (default max(4, users // 250))",
    )
    p.add_argument(
        "--mean_exposures",
        type=float,
        default=40.0,
        help="mean exposures per user before deduplication, >= 1 (default 40)",
    )
    p.add_argument(
        "--zipf_exponent",
        type=float,
        default=1.1,
        help="exponent of the Zipf item popularity, 0..5 (default 1.1)",
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        Process exit status (0 on success). Invalid arguments exit with status 2 and a one-line
        message on stderr.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _validate(args.users, args.items, args.communities, args.mean_exposures, args.zipf_exponent)
    except ValueError as e:
        parser.error(str(e))
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out!r} exists and is not a directory")
    try:
        s = generate(args.out, **{name: getattr(args, name) for name in GENERATOR_FLAGS})
    except OSError as e:
        print(f"{parser.prog}: error: cannot write to {args.out!r}: {e}", file=sys.stderr)
        return 1
    print(
        f"wrote {s['n_interactions']} interactions ({s['n_users']} users, {s['n_items']} items, "
        f"{s['communities']} communities) CTR={s['ctr']:.4f} CVR={s['cvr']:.4f} -> "
        f"{s['paths']['interactions']}, {s['paths']['user_features']}, "
        f"{s['paths']['item_features']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
