"""The synthetic data's generative model: latent variables, exposures and labels.

Steps 1-5 of the model described in `synthetic.generator` (communities,
popularity and quality, activity, exposures, labels), and the label
probabilities they imply (`true_probabilities`, the oracle of
`synthetic.oracle`). Every draw comes from the caller's
``numpy.random.Generator``, in the order `synthetic.generator.generate` makes
them.
"""

from __future__ import annotations

import math

import numpy as np

# Structural constants of the generative model (see `synthetic.generator`).
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
_MAX_ROUNDS = 6


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def sample_latent(
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


def sample_exposures(
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
        latent: The ``"latent"`` of ``synthetic.generator.generate(..., return_latent=True)``.
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


def draw_labels(
    rng: np.random.Generator, latent: dict, user: np.ndarray, item: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Draws the click and conversion labels of exposures (step 5) as two boolean arrays.

    The click logit gets its noise ``N(0, 0.3)``; conversion is only drawn for clicks.
    """
    n = user.shape[0]
    click_logit, conv_logit = label_logits(latent, user, item)
    click_logit = click_logit + rng.normal(0.0, _CLICK_NOISE_SD, size=n)
    click = rng.random(n) < _sigmoid(click_logit)
    conversion = click & (rng.random(n) < _sigmoid(conv_logit))
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
        latent: The ``"latent"`` of ``synthetic.generator.generate(..., return_latent=True)``.
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
