"""The ``jaxgrid`` console script.

    jaxgrid list                                   registered ids and their rules
    jaxgrid play FrozenLake-v1                     step it with the arrow keys (a terminal widget)
    jaxgrid play Maze-9x9-v0 --policy greedy       watch the shortest-path policy drive
    jaxgrid play GridWorld-4x4-v0 --policy random --steps 20     plain output, no terminal needed
    jaxgrid render FourRooms-v0 --policy greedy --out four_rooms.png   an episode as PNG strip / GIF
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from jaxgrid import play, registry


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    try:
        return registry.parse_overrides(items, flag="--set")
    except ValueError as err:
        raise SystemExit(f"jaxgrid: {err}") from None


def _make_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs = _parse_overrides(args.set or [])
    if args.obs is not None:
        kwargs["obs"] = args.obs
    if args.layout is not None:
        kwargs["layout"] = read_layout_arg(args.layout)
    return kwargs


def read_layout_arg(value: str) -> str:
    """The text map ``--layout`` names: a file's contents, or an inline map.

    An existing file is read. Otherwise the value is an inline map if it has several rows (a real
    newline or a literal ``\\n``) or is one row of map characters; anything else is taken for a
    missing file.

    Raises:
        ValueError: a missing or unreadable file (naming it).
    """
    from jaxgrid.layouts import ALPHABET

    path = Path(value)
    if path.is_file():
        try:
            return path.read_text()
        except (OSError, UnicodeDecodeError) as err:
            cause = getattr(err, "strerror", None) or err
            raise ValueError(f"--layout file {value!r} cannot be read: {cause}") from None
    inline = value.replace("\\n", "\n")
    if "\n" in inline or (inline and set(inline) <= set(ALPHABET)):
        return inline
    why = "is a directory" if path.is_dir() else "does not exist"
    raise ValueError(f"--layout file {value!r} {why} (an inline map has rows separated by \\n, "
                     f"e.g. --layout 'S.#\\n..G')")


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an int >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an int >= {low}, got {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds >= 0, got {text!r}")
    return value


def _add_env_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("env_id", help="a registered id (see `jaxgrid list`)")
    p.add_argument("--policy", choices=play.POLICIES, default=None,
                   help="manual (arrow keys), random (action_space.sample) or greedy (shortest path)")
    p.add_argument("--steps", type=_int_at_least(1), default=None,
                   help="steps to take (>= 1); with a policy: plain output")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--obs", default=None, help="observation encoding: index, onehot, coords, grid, view")
    p.add_argument("--layout", default=None, help="text map file (or inline map with \\n) for GridWorld-v0")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="env override, e.g. --set is_slippery=False --set max_steps_in_episode=20")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxgrid", description="JAX gridworlds: list, play and render envs.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registered env ids and their rules")
    p = sub.add_parser("play", help="play an env in the terminal, or print a policy's steps")
    _add_env_args(p)
    p.add_argument("--plain", action="store_true", help="print steps instead of the terminal widget")
    p.add_argument("--no-grid", action="store_true", help="plain mode: the step log only")
    p.add_argument("--delay", type=_seconds, default=0.3, help="seconds between policy steps (widget)")
    r = sub.add_parser("render", help="write an episode as a PNG strip or GIF")
    _add_env_args(r)
    r.add_argument("--out", required=True, help="output path ending in .png or .gif")
    r.add_argument("--cell-px", type=_int_at_least(1), default=24)
    r.add_argument("--columns", type=_int_at_least(1), default=None, help="PNG strip: frames per row")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        for env_id in registry.registered_ids():
            print(f"{env_id:<26s} {registry.describe(env_id)}")
        return 0
    try:
        registry.check_env_id(args.env_id)
        session = play.PlaySession(args.env_id, seed=args.seed, **_make_kwargs(args))
        if args.command == "render":
            policy = args.policy or "greedy"
            if policy == "manual":
                raise ValueError("render needs --policy random or greedy")
            frames = play.save_episode(session, policy, args.out, max_steps=args.steps or 100,
                                       cell_px=args.cell_px, columns=args.columns)
            print(f"wrote {len(frames)} frames of {args.env_id} ({policy}) to {args.out}")
            return 0
        policy = args.policy or "manual"
        if play.wants_plain(policy, args.steps, args.plain):
            play.run_plain(session, "random" if policy == "manual" else policy,
                           args.steps if args.steps is not None else 20, show_grid=not args.no_grid)
        elif not play.run_curses(session, policy, delay=args.delay, steps=args.steps):
            # the terminal cannot host the widget (unknown TERM, ...): plain output instead
            play.run_plain(session, "random" if policy == "manual" else policy,
                           args.steps if args.steps is not None else 20, show_grid=not args.no_grid)
    except ValueError as e:
        print(f"jaxgrid: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
