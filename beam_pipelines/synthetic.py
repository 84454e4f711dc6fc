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
byte-identical files):

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

    python -m beam_pipelines.synthetic --out DIR --users 4000 --items 500 --seed 7
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

import numpy as np

START_TIMESTAMP = 1767225600  # 2026-01-01T00:00:00Z
SPAN_SECONDS = 30 * 86400

INTERACTIONS_HEADER = ("user_id", "item_id", "timestamp", "click", "conversion")
USER_FEATURES_HEADER = ("user_id", "age_bucket", "region")
ITEM_FEATURES_HEADER = ("item_id", "category", "brand", "price_bucket")

INTERACTIONS_FILE = "interactions.csv"
USER_FEATURES_FILE = "user_features.csv"
ITEM_FEATURES_FILE = "item_features.csv"

# Structural constants of the generative model (see the module docstring).
_SECOND_COMMUNITY_PROB = 0.15
_SECOND_COMMUNITY_SHARE = 0.25
_SECOND_COMMUNITY_MATCH = 0.6
_ACTIVITY_SIGMA = 1.2
_COMMUNITY_EXPOSURE_BETA = (5.0, 5.0)
_QUALITY_POPULARITY_CORR = 0.35
_CLICK_INTERCEPT, _CLICK_MATCH, _CLICK_QUALITY = -3.1, 1.9, 0.5
_CLICK_USER_SD, _CLICK_NOISE_SD = 0.5, 0.3
_CONV_INTERCEPT, _CONV_MATCH, _CONV_QUALITY, _CONV_USER_SD = -2.6, 1.0, 0.6, 0.4
_CONV_QUALITY_CORR = 0.5
_N_AGE_BUCKETS, _N_REGIONS = 7, 20
_N_CATEGORIES, _N_BRANDS, _N_PRICE_BUCKETS = 24, 50, 5
_REGION_INFORMATIVE_PROB = 0.35
_CATEGORY_INFORMATIVE_PROB = 0.4
_PRICE_INFORMATIVE_PROB = 0.25
_BRAND_INFORMATIVE_PROB = 0.2
_MAX_ROUNDS = 6


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


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


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


def _sample_latent(
    rng: np.random.Generator,
    users: int,
    items: int,
    communities: int,
    mean_exposures: float,
    zipf_exponent: float,
) -> dict[str, np.ndarray]:
    """Draws the latent user/item variables and exposure counts."""
    c = communities
    # Communities with uneven sizes; every community gets at least one item.
    user_comm = rng.choice(c, size=users, p=rng.dirichlet(np.full(c, 4.0)))
    item_comm = rng.choice(c, size=items, p=rng.dirichlet(np.full(c, 4.0)))
    item_comm[rng.permutation(items)[:c]] = np.arange(c)
    if c > 1:
        has_second = rng.random(users) < _SECOND_COMMUNITY_PROB
        offset = rng.integers(1, c, size=users)
        user_comm2 = np.where(has_second, (user_comm + offset) % c, -1)
    else:
        user_comm2 = np.full(users, -1)

    # Long-tailed popularity over a random ranking; quality correlated with log-popularity.
    ranks = rng.permutation(items) + 1
    popularity = ranks.astype(np.float64) ** -zipf_exponent
    popularity /= popularity.sum()
    log_pop = np.log(popularity)
    std = log_pop.std()
    z_pop = (log_pop - log_pop.mean()) / std if std > 0 else np.zeros(items)
    rho = _QUALITY_POPULARITY_CORR
    quality = rho * z_pop + math.sqrt(1 - rho**2) * rng.standard_normal(items)
    rho = _CONV_QUALITY_CORR
    conv_quality = rho * quality + math.sqrt(1 - rho**2) * rng.standard_normal(items)

    user_click_bias = rng.normal(0.0, _CLICK_USER_SD, size=users)
    user_conv_bias = rng.normal(0.0, _CONV_USER_SD, size=users)
    community_share = rng.beta(*_COMMUNITY_EXPOSURE_BETA, size=users)

    # Long-tailed activity: lognormal with the requested mean.
    sigma = _ACTIVITY_SIGMA
    raw = rng.lognormal(math.log(mean_exposures) - sigma**2 / 2, sigma, size=users)
    n_exposures = np.clip(np.rint(raw), 1, max(1, items // 4)).astype(np.int64)

    return {
        "user_community": user_comm,
        "user_second_community": user_comm2,
        "item_community": item_comm,
        "item_popularity": popularity,
        "item_quality": quality,
        "item_conv_quality": conv_quality,
        "user_click_bias": user_click_bias,
        "user_conv_bias": user_conv_bias,
        "user_community_share": community_share,
        "n_exposures": n_exposures,
    }


def _community_sampler(
    popularity: np.ndarray, item_comm: np.ndarray, communities: int
) -> tuple[np.ndarray, np.ndarray]:
    """Builds sorted keys so that one searchsorted draws a popularity-weighted community item.

    Items are sorted by community and each community's popularity CDF is shifted to
    ``(c, c + 1]``; a draw for community ``c`` is ``searchsorted(keys, c + u)``,
    ``u ~ U[0, 1)``.
    """
    order = np.argsort(item_comm, kind="stable")
    comm_sorted = item_comm[order]
    cum = np.cumsum(popularity[order])
    starts = np.searchsorted(comm_sorted, np.arange(communities), side="left")
    ends = np.searchsorted(comm_sorted, np.arange(communities), side="right")
    base = np.concatenate(([0.0], cum))[starts]
    mass = cum[ends - 1] - base
    within = (cum - base[comm_sorted]) / mass[comm_sorted]
    within[ends - 1] = 1.0
    return comm_sorted + within, order


def _sample_exposures(
    rng: np.random.Generator, lat: dict[str, np.ndarray], communities: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draws deduplicated (user, item) exposures as two index arrays.

    Candidates are drawn in rounds; repeated pairs are dropped (first draw wins) and users that
    are still short of their exposure count draw again, up to ``_MAX_ROUNDS`` rounds, so users
    whose pool is nearly exhausted end up with slightly fewer rows.
    """
    popularity = lat["item_popularity"]
    items = popularity.shape[0]
    n_exposures = lat["n_exposures"]
    users = n_exposures.shape[0]
    global_cdf = np.cumsum(popularity)
    global_cdf /= global_cdf[-1]
    keys, order = _community_sampler(popularity, lat["item_community"], communities)

    kept_user = np.empty(0, dtype=np.int64)
    kept_item = np.empty(0, dtype=np.int64)
    need = n_exposures.copy()
    for _ in range(_MAX_ROUNDS):
        if not need.any():
            break
        draws = np.where(need > 0, 2 * need + 2, 0)
        user = np.repeat(np.arange(users), draws)
        total = user.shape[0]
        item = np.searchsorted(global_cdf, rng.random(total), side="right")
        from_comm = rng.random(total) < lat["user_community_share"][user]
        second = lat["user_second_community"][user]
        use_second = (second >= 0) & (rng.random(total) < _SECOND_COMMUNITY_SHARE)
        target = np.where(use_second, second, lat["user_community"][user])
        q = target + np.minimum(rng.random(total), 1.0 - 1e-9)
        comm_item = order[np.minimum(np.searchsorted(keys, q, side="right"), items - 1)]
        item = np.where(from_comm, comm_item, np.minimum(item, items - 1))

        # Earlier pairs first, so np.unique's first occurrence keeps them.
        all_user = np.concatenate((kept_user, user))
        all_item = np.concatenate((kept_item, item))
        _, first = np.unique(all_user * items + all_item, return_index=True)
        first.sort()
        all_user, all_item = all_user[first], all_item[first]
        # Keep at most n_exposures[u] pairs per user, in draw order.
        by_user = np.argsort(all_user, kind="stable")
        all_user, all_item = all_user[by_user], all_item[by_user]
        counts = np.bincount(all_user, minlength=users)
        rank = np.arange(all_user.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
        keep = rank < n_exposures[all_user]
        kept_user, kept_item = all_user[keep], all_item[keep]
        need = n_exposures - np.bincount(kept_user, minlength=users)
    return kept_user, kept_item


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


def community_match(latent: dict, user: np.ndarray, item: np.ndarray) -> np.ndarray:
    """Returns ``match`` of step 5: 1 (main community), 0.6 (second) or 0, per exposure."""
    community = latent["item_community"][item]
    return np.where(
        community == latent["user_community"][user],
        1.0,
        np.where(community == latent["user_second_community"][user], _SECOND_COMMUNITY_MATCH, 0.0),
    )


def label_logits(latent: dict, user: np.ndarray, item: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns the click and conversion-given-click logits of exposures (step 5), without noise.

    Args:
        latent: The ``"latent"`` of ``generate(..., return_latent=True)``.
        user: User numbers (the digits of the ids) of the exposures.
        item: Item numbers of the exposures.
    """
    match = community_match(latent, user, item)
    click = (
        _CLICK_INTERCEPT
        + _CLICK_MATCH * match
        + _CLICK_QUALITY * latent["item_quality"][item]
        + latent["user_click_bias"][user]
    )
    conversion = (
        _CONV_INTERCEPT
        + _CONV_MATCH * match
        + _CONV_QUALITY * latent["item_conv_quality"][item]
        + latent["user_conv_bias"][user]
    )
    return click, conversion


def entity_numbers(ids) -> np.ndarray:
    """Returns the numbers of user or item id strings (``u000123`` -> 123)."""
    return np.array([int(i[1:]) for i in ids], dtype=np.int64)


def true_probabilities(latent: dict, user_ids, item_ids) -> dict[str, np.ndarray]:
    """The generating model's P(click) and P(conversion) of (user, item) pairs: the oracle.

    P(click) = E[σ(logit + ε)] over the click noise ε ~ N(0, 0.3) (Gauss–Hermite
    quadrature, exact to float precision); P(conversion) = P(click) ·
    P(conversion | click), as the labels are drawn.

    Args:
        latent: The ``"latent"`` of ``generate(..., return_latent=True)``.
        user_ids: User id strings (``u000123``).
        item_ids: Item id strings (``i00042``), one per user id.

    Returns:
        {"click": [N], "conversion": [N]} probabilities.
    """
    user, item = entity_numbers(user_ids), entity_numbers(item_ids)
    click, conversion = label_logits(latent, user, item)
    nodes, weights = np.polynomial.hermite_e.hermegauss(32)  # for a standard normal
    noisy = click[:, None] + _CLICK_NOISE_SD * nodes[None, :]
    p_click = _sigmoid(noisy) @ (weights / weights.sum())
    return {"click": p_click, "conversion": p_click * _sigmoid(conversion)}


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

    lat = _sample_latent(rng, users, items, c, float(mean_exposures), float(zipf_exponent))
    user, item = _sample_exposures(rng, lat, c)
    n = user.shape[0]

    # Labels.
    uc, ic = lat["user_community"], lat["item_community"]
    click_logit, conv_logit = label_logits(lat, user, item)
    click_logit = click_logit + rng.normal(0.0, _CLICK_NOISE_SD, size=n)
    click = rng.random(n) < _sigmoid(click_logit)
    conversion = click & (rng.random(n) < _sigmoid(conv_logit))
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
        The argparse parser for ``python -m beam_pipelines.synthetic``.
    """
    p = _OneLineErrorParser(
        prog="python -m beam_pipelines.synthetic",
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
