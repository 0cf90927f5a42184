"""``jaxgrid play``: step any registered env by hand, or watch a random or greedy policy drive it.

``PlaySession`` holds the env, its state and the log, and maps keys to actions; it knows nothing of
terminals, so it is tested directly. ``run_plain`` prints a session for non-interactive use and
``run_curses`` draws it in a terminal (arrow keys move, ``x`` random step, ``g`` greedy step,
``space`` pauses a driving policy, ``r`` resets, ``q`` quits).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgrid import registry, render
from jaxgrid.layouts import Layout
from jaxgrid.replay import episode_frames, replay_episode

POLICIES = ("manual", "random", "greedy")
KEY_DELTAS = {"up": (-1, 0), "right": (0, 1), "down": (1, 0), "left": (0, -1)}


@dataclasses.dataclass
class StepRecord:
    """One ``step()`` return, as the log shows it."""

    episode: int
    t: int
    action: int
    action_name: str
    obs: Any
    reward: float
    terminated: bool
    truncated: bool
    final_obs: Any = None  # the observation the episode ended on (obs is the next episode's first)

    def line(self) -> str:
        end = f" final_obs={format_obs(self.final_obs)}" if self.final_obs is not None else ""
        return (
            f"ep {self.episode} t={self.t:<3d} action={self.action} ({self.action_name:<5s}) "
            f"obs={format_obs(self.obs)} reward={self.reward:+.2f} "
            f"terminated={self.terminated} truncated={self.truncated}{end}"
        )


def format_obs(obs: Any, max_chars: int = 48) -> str:
    """A short text form of an observation: the value for scalars and small arrays, else its shape."""
    arr = np.asarray(obs)
    if arr.ndim == 0:
        return str(arr.item())
    if arr.size <= 8:
        return np.array2string(arr, separator=",")
    nz = np.flatnonzero(arr.reshape(-1))
    text = f"{arr.dtype}{list(arr.shape)} nonzero@{nz[:4].tolist()}{'...' if len(nz) > 4 else ''}"
    return text[:max_chars]


def vec_step_one(env) -> Any:
    """``env.step`` of one env through ``jaxgrid.VecEnv`` (a batch of one; bitwise ``env.step``)."""
    from jaxgrid.vec import VecEnv  # local import: vec imports the env modules

    vec = VecEnv(env, 1)

    def step(key, state, action, params):
        batch = lambda x: jnp.asarray(x)[None]  # noqa: E731
        out = vec.step_each(batch(key), jax.tree.map(batch, state), batch(action), params)
        return jax.tree.map(lambda x: x[0], out)

    return step


class PlaySession:
    """An env being played: state, episode return, step count and the log of every step.

    Args:
        env_id: a registered id.
        seed: PRNG seed of resets, slips and the random policy.
        **make_kwargs: passed to ``jaxgrid.make``.
    """

    def __init__(self, env_id: str, seed: int = 0, **make_kwargs: Any):
        self.env_id = env_id
        self.env, self.params = registry.make(env_id, **make_kwargs)
        self._reset = jax.jit(self.env.reset)
        self._step = jax.jit(vec_step_one(self.env))
        self._key = jax.random.PRNGKey(seed)
        self.log: list[StepRecord] = []
        self.episode = 0
        self.episode_returns: list[float] = []
        self.reset()

    def _next_key(self) -> jax.Array:
        self._key, key = jax.random.split(self._key)
        return key

    def reset(self) -> None:
        """Starts a new episode (the ``r`` key)."""
        self.obs, self.state = self._reset(self._next_key(), self.params)
        self.t = 0
        self.episode_return = 0.0
        self.done = False
        self.episode += 1

    def step(self, action: int) -> StepRecord:
        """Steps the env; at an episode end the env has auto-reset and the next episode begins."""
        if self.done:  # the previous step ended an episode; its final frame was shown, go on
            self.done = False
        obs, state, reward, terminated, truncated, info = self._step(
            self._next_key(), self.state, jnp.int32(action), self.params
        )
        self.t += 1
        self.episode_return += float(reward)
        record = StepRecord(
            episode=self.episode, t=self.t, action=int(action),
            action_name=self.env.action_names[int(action)], obs=np.asarray(obs),
            reward=float(reward), terminated=bool(terminated), truncated=bool(truncated),
        )
        self.log.append(record)
        if record.terminated or record.truncated:
            # The env has auto-reset (a procedural env even drew a new layout): keep the state the
            # episode ended in, for the final frame.
            self.final_obs = record.final_obs = np.asarray(info["final_observation"])
            self.final_state = info["final_state"]
            self.episode_returns.append(self.episode_return)
            self.last_return = self.episode_return
            self.done = True
            self.t = 0
            self.episode_return = 0.0
            self.episode += 1
        self.obs, self.state = obs, state
        return record

    # ------------------------------------------------------------------------------------------
    # policies
    def random_action(self) -> int:
        """``action_space.sample`` with the session's key."""
        return int(self.env.action_space(self.params).sample(self._next_key()))

    def greedy_action(self) -> int:
        """The move along a shortest path to the nearest goal (BFS on the current layout; lava and
        walls are not crossed). Falls back to a random action where no goal is reachable."""
        h, w = self.env.height, self.env.width
        kind = np.asarray(self.env.cell_kinds(self.state, self.params)).reshape(h, w)
        layout = Layout(kind=kind, start=np.zeros((h, w), bool), name=self.env_id)
        deltas = self.env.action_deltas
        dist = layout.distance_to_goal(deltas).reshape(-1)
        table = layout.next_cell_table(deltas)
        pos = int(self.state.pos)
        if dist[pos] < 0:
            return self.random_action()
        best = [a for a in range(len(deltas)) if dist[table[pos, a]] == dist[pos] - 1]
        return best[0] if best else self.random_action()

    def policy_action(self, policy: str) -> int:
        if policy == "random":
            return self.random_action()
        if policy == "greedy":
            return self.greedy_action()
        raise ValueError(f"policy {policy!r} does not choose actions; valid: random, greedy")

    def action_for_direction(self, direction: str) -> int | None:
        """The action that moves in ``direction`` ("up", "right", "down", "left"), if the env has one."""
        delta = KEY_DELTAS[direction]
        return self.env.action_deltas.index(delta) if delta in self.env.action_deltas else None

    def handle_key(self, key: str) -> bool:
        """Applies one key: a direction name, ``x`` (random), ``g`` (greedy), ``r`` (reset) or
        ``q`` (quit). Returns False when the session should end. Unknown keys are ignored."""
        if key == "q":
            return False
        if key == "r":
            self.reset()
        elif key in KEY_DELTAS:
            action = self.action_for_direction(key)
            if action is not None:
                self.step(action)
        elif key == "x":
            self.step(self.random_action())
        elif key == "g":
            self.step(self.greedy_action())
        return True

    # ------------------------------------------------------------------------------------------
    # display
    def grid_text(self, color: bool = False, state=None) -> str:
        """The grid of ``state`` (the current one by default) as text, the agent as ``A``."""
        state = self.state if state is None else state
        return render.render_ansi(
            self.env.cell_kinds(state, self.params), state.pos, self.env.height, self.env.width, color=color
        )

    def status_text(self) -> str:
        done = ""
        if self.done:
            last = self.log[-1]
            why = "terminated" if last.terminated else "truncated"
            done = f"  | episode {last.episode} {why} with return {self.last_return:+.2f}; new episode started"
        return (
            f"{self.env_id}  episode {self.episode}  step {self.t}  obs={format_obs(self.obs)}  "
            f"return {self.episode_return:+.2f}  done={self.done}{done}"
        )


def run_plain(session: PlaySession, policy: str, steps: int, out=None, show_grid: bool = True) -> None:
    """Plays ``steps`` steps with ``policy`` and prints every ``step()`` return (and the grid)."""
    out = out or sys.stdout
    if policy == "manual":
        raise ValueError("--policy manual needs a terminal; use --policy random or greedy with --steps")
    print(f"# jaxgrid play {session.env_id}: policy={policy} steps={steps}", file=out)
    print(f"# actions: {', '.join(f'{i} {n}' for i, n in enumerate(session.env.action_names))}", file=out)
    print(session.status_text(), file=out)
    if show_grid:
        print(session.grid_text(), file=out, end="")
    for _ in range(steps):
        record = session.step(session.policy_action(policy))
        print(record.line(), file=out)
        if session.done:
            if show_grid:
                print(session.grid_text(state=session.final_state), file=out, end="")
            print(session.status_text(), file=out)
        if show_grid:
            print(session.grid_text(), file=out, end="")
    returns = ", ".join(f"{r:+.2f}" for r in session.episode_returns) or "none"
    print(f"# episodes finished: {len(session.episode_returns)}; returns: {returns}", file=out)


HELP = "arrows: move   x: random step   g: greedy step   space: pause/resume policy   r: reset   q: quit"


def run_curses(session: PlaySession, policy: str, delay: float = 0.3, steps: int | None = None) -> bool:
    """The terminal widget: grid, status line and the step log, redrawn after every key or step.

    Returns:
        False, having drawn nothing, if the terminal cannot host the widget (``TERM`` unset or
        unknown to terminfo, no curses module); a note on stderr says why. True after a session.
    """
    problem = _terminal_problem()
    if problem is not None:
        print(f"jaxgrid play: the terminal widget is unavailable ({problem}); plain output instead",
              file=sys.stderr)
        return False
    import curses

    keymap = {
        curses.KEY_UP: "up", curses.KEY_DOWN: "down", curses.KEY_LEFT: "left", curses.KEY_RIGHT: "right",
        ord("q"): "q", ord("Q"): "q", ord("r"): "r", ord("R"): "r", ord("x"): "x", ord("g"): "g",
    }

    def main(screen) -> None:
        curses.curs_set(0)
        screen.timeout(int(delay * 1000) if policy != "manual" else -1)
        paused = False
        taken = 0
        while True:
            _draw(screen, session, policy, paused)
            ch = screen.getch()
            if ch == ord(" "):
                paused = not paused
                continue
            if ch in keymap:
                if not session.handle_key(keymap[ch]):
                    return
                continue
            if ch == -1 and policy != "manual" and not paused:  # timeout: the policy drives
                if steps is not None and taken >= steps:
                    paused = True
                    continue
                session.step(session.policy_action(policy))
                taken += 1

    curses.wrapper(main)
    return True


def _terminal_problem() -> str | None:
    """Why curses cannot drive this terminal, or None if it can."""
    try:
        import curses
    except ImportError as err:  # e.g. Windows without the windows-curses package
        return f"no curses module: {err}"
    try:
        curses.setupterm()  # NOTE: an unknown TERM fails here, before the screen is touched
    except curses.error as err:
        return f"TERM={os.environ.get('TERM')!r}: {err}"
    return None


def _draw(screen, session: PlaySession, policy: str, paused: bool) -> None:
    screen.erase()
    height, width = screen.getmaxyx()
    lines = [f"jaxgrid play  policy={policy}{' (paused)' if paused else ''}", HELP, ""]
    lines += session.grid_text().splitlines()
    lines += ["", session.status_text(), "", "log (obs, action, reward, terminated, truncated):"]
    room = max(0, height - len(lines) - 1)
    lines += [r.line() for r in session.log[-room:]] if room else []
    for y, text in enumerate(lines[: height - 1]):
        screen.addnstr(y, 0, text, max(1, width - 1))
    screen.refresh()


def record_episode(session: PlaySession, policy: str, max_steps: int, cell_px: int = 24) -> np.ndarray:
    """Frames ([T+1, h, w, 3] uint8) of one episode under ``policy`` from the session's current
    state (``jaxgrid.replay_episode``: the states that happened, the final one included)."""

    def act(obs, state) -> int:
        session.obs, session.state = obs, state  # the session's policies read its current state
        return session.policy_action(policy)

    episode = replay_episode(
        session.env, session.params, act, session._next_key(), max_steps, start=(session.obs, session.state)
    )
    return episode_frames(session.env, session.params, episode, cell_px)


def save_episode(session: PlaySession, policy: str, path: str, max_steps: int = 100, cell_px: int = 24,
                 columns: int | None = None) -> np.ndarray:
    """Records one episode and writes it as a GIF or PNG strip; returns the frames."""
    frames = record_episode(session, policy, max_steps, cell_px)
    render.save_frames(frames, path, columns=columns)
    return frames


def wants_plain(policy: str, steps: int | None, plain: bool) -> bool:
    """Plain output when asked, when a driving policy has a step budget, or without a terminal."""
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    return plain or (steps is not None and policy != "manual") or not interactive
