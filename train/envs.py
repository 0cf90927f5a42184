"""Resolving an env id to a gymnax-style ``(env, params)``: jaxgrid ids first, then gymnax."""

from __future__ import annotations

import dataclasses
from typing import Any

# NOTE: gymnax is imported only for gymnax ids: its package import loads every gymnax env (~2 s).


def jaxgrid_ids() -> tuple[str, ...]:
    """The ids registered by jaxgrid (empty if jaxgrid's registry is unavailable)."""
    try:
        import jaxgrid
    except ImportError:
        return ()
    registered = getattr(jaxgrid, "registered_ids", None)
    return tuple(registered()) if registered is not None else ()


def known_env_ids() -> tuple[str, ...]:
    """Every env id the trainer accepts: jaxgrid's, then gymnax's."""
    import gymnax

    return jaxgrid_ids() + tuple(gymnax.registered_envs)


def is_known_env_id(env_id: str) -> bool:
    """Whether the trainer accepts ``env_id`` (gymnax's registry is imported only for non-jaxgrid ids)."""
    if env_id in jaxgrid_ids():
        return True
    import gymnax

    return env_id in gymnax.registered_envs


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None):
    """Builds ``(env, params)`` for ``env_id``.

    jaxgrid ids go to ``jaxgrid.make(env_id, **env_kwargs)``; any other id to ``gymnax.make`` with
    ``env_kwargs`` applied as ``params.replace(**env_kwargs)``.

    Raises:
        ValueError: unknown id (listing the valid ones) or an unknown override name.
    """
    env_kwargs = dict(env_kwargs or {})
    if env_id in jaxgrid_ids():
        import jaxgrid

        return jaxgrid.make(env_id, **env_kwargs)
    import gymnax

    if env_id not in gymnax.registered_envs:
        raise ValueError(
            f"env_id={env_id!r} is not a known environment; valid choices: "
            f"{', '.join(known_env_ids())}"
        )
    env, params = gymnax.make(env_id)
    if env_kwargs:
        names = {f.name for f in dataclasses.fields(params)}
        unknown = sorted(set(env_kwargs) - names)
        if unknown:
            raise ValueError(
                f"env_kwargs has unknown keys {unknown} for {env_id!r}; valid keys: {sorted(names)}"
            )
        params = params.replace(**env_kwargs)
    return env, params
