"""The machinery CEM and MPPI share: sample action sequences around a Gaussian, roll them all out in
one batched `unroll`, score them, and refit the Gaussian.

Only the refit differs between the two (elite mean/std for CEM, energy-weighted mean for MPPI), so it
is the one method a subclass writes. A planner sees an `unroll` callable, a start latent and an
objective; it knows nothing about encoders, goals or environments.

Two choices worth knowing:
- Candidate 0 of every iteration is the current mean itself (clipped), so the mean's energy is known
  without an extra model call.
- The returned plan is the lowest-energy candidate scored over all iterations, so `PlanResult.energy`
  is the exact energy of `PlanResult.actions` and never worse than any mean the planner visited.
  (V-JEPA 2-AC returns the mean after its last refit, which is never scored.)
- `action_cost` (0 = off, V-JEPA 2-AC) adds a control cost, the weight times the candidate's mean
  absolute action, to every energy. A goal energy scores where a plan ends, not how it gets there, so
  near the goal many plans tie and the best one is a random walk that happens to end well: the agent
  executes its first moves and wanders off the goal. The cost breaks the tie toward holding still
  (Two Rooms: 19 of 20 episodes reached the goal, only 11 were still there at the end).
- `noise_beta` (0 = white noise, V-JEPA 2-AC) colours the sampling noise along the horizon (iCEM): with
  independent steps a candidate's moves mostly cancel out, so no candidate makes the long detour a wall
  asks for; correlated steps do (Two Rooms, 50 episodes, white vs beta 2: validation 88 -> 92 %, test
  86 -> 92 %).
- `zero_candidate` (off = V-JEPA 2-AC) makes the all-zero plan (clipped) a candidate of every iteration,
  in place of one fresh sample. With actions that are moves, that plan holds still, so a re-plan never
  returns a plan that its energy scores worse than not moving; sampled around a warm start that heads
  elsewhere, staying put is otherwise rarely among the candidates (Two Rooms, next to the goal: staying
  scored 0.47, the plan returned 0.69, and the agent walked off).
- `keep_elites` (0 = off, V-JEPA 2-AC) carries the lowest-energy candidates of an iteration into the next
  one, in place of as many fresh samples (iCEM's elite reuse): a rare good candidate, such as the one
  path through a door, survives a refit that averages it away. `PlanResult.elites` hands the last
  iteration's to the next re-plan, which starts from them shifted like the warm start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from worldjepa.errors import UserError
from worldjepa.planning.world_model import Latent

#: (start latent with batch C, actions [C, H, A]) -> predicted latents, visual [C, H, N, D].
Unroll = Callable[[Latent, Tensor], Latent]
#: predicted latents (batch C) -> energies [C], lower is better.
Objective = Callable[[Latent], Tensor]


@dataclass
class PlanResult:
    """actions: [H, A] the best sequence found; energy: its energy; energies_per_iter: the lowest
    energy among each iteration's candidates (a convergence curve); elites: [K, H, A] the last
    iteration's `keep_elites` lowest-energy candidates, best first (K = 0 when off)."""

    actions: Tensor
    energy: float
    iterations: int
    energies_per_iter: list[float]
    elites: Tensor


#: The search extensions switched off (no control cost, white noise, no elite reuse, no zero plan): the
#: sampling V-JEPA 2-AC's release does, for code that builds a planner outside a preset.
EXTENSIONS_OFF = {"action_cost": 0.0, "noise_beta": 0.0, "keep_elites": 0, "zero_candidate": False}


def shift_plan(actions: Tensor, steps: int) -> Tensor:
    """Warm start for the next re-plan: drop the `steps` executed actions of a [..., H, A] plan and pad
    the end with zeros (the prior mean), keeping the shape."""
    steps = min(steps, actions.shape[-2])
    return torch.cat([actions[..., steps:, :], torch.zeros_like(actions[..., :steps, :])], -2)


def per_dim_bound(
    value: float | Sequence[float] | Tensor | None,
    action_dim: int,
    default: float,
    name: str = "action bound",
) -> Tensor:
    """A per-dimension bound [A] from a scalar, a sequence, or None (`default` everywhere)."""
    if value is None:
        return torch.full((action_dim,), default)
    bound = torch.as_tensor(value, dtype=torch.float32).flatten()
    if bound.numel() == 1:
        bound = bound.expand(action_dim)
    if bound.numel() != action_dim:
        raise UserError(f"{name} has {bound.numel()} values, expected 1 or action_dim={action_dim}")
    return bound.clone()


class SamplingPlanner:
    """A Gaussian over action sequences [H, A], refined for `iterations` rounds of `samples` candidates.

    The search settings have no defaults here: `worldjepa.planning.planner_config.PlannerConfig` holds
    them, and the V-JEPA 2-AC release's values are in the `wm_vjepa2_ac_paper` preset.

    Actions are clipped to [low, high] per dimension (scalars or [A]; None is unbounded). The noise
    comes from a `torch.Generator` seeded with `seed`, created on the start latent's device.
    `action_cost` weighs the control cost added to every energy, `noise_beta` colours the noise,
    `keep_elites` carries candidates between iterations, and `zero_candidate` scores the all-zero plan at
    every iteration (see the module notes).
    """

    def __init__(
        self,
        action_dim: int,
        *,
        horizon: int,
        samples: int,
        iterations: int,
        init_std: float,
        seed: int,
        action_cost: float,
        noise_beta: float,
        keep_elites: int,
        zero_candidate: bool,
        low: float | Sequence[float] | Tensor | None = None,
        high: float | Sequence[float] | Tensor | None = None,
    ) -> None:
        if min(action_dim, horizon, iterations) < 1 or samples < 2:
            raise UserError(
                f"planner needs action_dim, horizon, iterations >= 1 and samples >= 2; got action_dim="
                f"{action_dim}, horizon={horizon}, iterations={iterations}, samples={samples}"
            )
        if init_std <= 0:
            raise UserError(f"planner init_std must be > 0, got {init_std}")
        if action_cost < 0:
            raise UserError(f"planner action_cost must be >= 0, got {action_cost}")
        self.action_dim, self.horizon, self.init_std = action_dim, horizon, init_std
        if noise_beta < 0:
            raise UserError(f"planner noise_beta must be >= 0 (0 = white noise), got {noise_beta}")
        self.action_cost, self.noise_beta = action_cost, noise_beta
        fixed = 1 + zero_candidate  # the mean, and the zero plan when asked
        if not 0 <= keep_elites <= samples - fixed - 1:
            raise UserError(
                f"planner keep_elites must be in [0, {samples - fixed - 1}]: {samples} samples hold the mean"
                f"{' and the zero plan' if zero_candidate else ''} and one fresh sample at least, got {keep_elites}"
            )
        self.keep_elites, self.zero_candidate = keep_elites, zero_candidate
        self.samples, self.iterations = samples, iterations
        self.low = per_dim_bound(low, action_dim, -math.inf)
        self.high = per_dim_bound(high, action_dim, math.inf)
        if bool((self.low > self.high).any()):
            raise UserError(
                f"action bounds need low <= high, got low={self.low.tolist()}, high={self.high.tolist()}"
            )
        self.reseed(seed)

    def reseed(self, seed: int | None = None) -> None:
        """Restart the noise stream (from `seed`, or from the planner's seed), e.g. at each episode."""
        if seed is not None:
            self.seed = seed
        self._generator: torch.Generator | None = None

    def plan(
        self,
        unroll: Unroll,
        start: Latent,
        objective: Objective,
        warm_start: Tensor | None = None,
        warm_elites: Tensor | None = None,
        horizon: int | None = None,
    ) -> PlanResult:
        """start: one-frame latent with batch 1; warm_start: [H, A] initial mean (e.g. `shift_plan` of
        the previous plan), zeros if None; warm_elites: [K, H, A] candidates for the first iteration
        (the previous plan's elites, shifted), at most `keep_elites` used. One `unroll` call per
        iteration over all candidates. `horizon` (at most H; None = H) plans only the first steps, the
        rest of the returned plans is zeros: a plan that would run past the episode's end is scored where
        the episode ends."""
        horizon = self.horizon if horizon is None else horizon
        if not 1 <= horizon <= self.horizon:
            raise UserError(f"plan horizon must be in [1, {self.horizon}] (the planner's), got {horizon}")
        device = start.visual.device
        low, high = self.low.to(device), self.high.to(device)
        full = (self.horizon, self.action_dim)
        mean = torch.zeros(full) if warm_start is None else warm_start
        if mean.shape != full:
            raise UserError(
                f"warm_start must have shape {list(full)} (horizon, action_dim), got {list(mean.shape)}"
            )
        shape = (horizon, self.action_dim)
        mean = mean[:horizon].to(device, torch.float32).clamp(low, high)
        std = torch.full(shape, self.init_std, device=device)
        kept = torch.zeros((0, *shape), device=device)
        if warm_elites is not None and self.keep_elites:
            if warm_elites.shape[1:] != full:
                raise UserError(
                    f"warm_elites must have shape [K, {full[0]}, {full[1]}], got {list(warm_elites.shape)}"
                )
            kept = warm_elites[: self.keep_elites, :horizon].to(device, torch.float32)
        zero = torch.zeros((int(self.zero_candidate), *shape), device=device)
        generator = self._generator_on(device)
        start_c = start.expand(self.samples)
        best_actions, best_energy, history = mean, math.inf, []
        for _ in range(self.iterations):
            noise = self._noise(generator, device, self.samples - 1 - len(zero) - len(kept), horizon)
            candidates = torch.cat([mean[None], zero, kept, mean + std * noise]).clamp(low, high)  # [C, H, A]
            energies = objective(unroll(start_c, candidates)).float()  # [C]
            if self.action_cost:
                energies = energies + self.action_cost * candidates.abs().mean((1, 2))
            i = int(energies.argmin())
            history.append(float(energies[i]))
            if history[-1] < best_energy:
                best_actions, best_energy = candidates[i], history[-1]
            kept = candidates[energies.topk(self.keep_elites, largest=False).indices]
            mean, std = self._refit(candidates, energies, mean, std)
        rest = torch.zeros((self.horizon - horizon, self.action_dim), device=device)  # after the end
        best_actions = torch.cat([best_actions, rest])
        kept = torch.cat([kept, rest.expand(len(kept), -1, -1)], 1)
        return PlanResult(best_actions, best_energy, self.iterations, history, kept)

    def _noise(self, generator: torch.Generator, device: torch.device, count: int, horizon: int) -> Tensor:
        """Unit-variance Gaussian noise [count, horizon, A] for the candidates: white (independent steps)
        at noise_beta 0, else coloured, power spectrum 1 / f^beta along the horizon (iCEM, Pinneri et al.
        2020): successive steps tend to move alike, so candidates include long moves one way (a detour)."""
        dims = self.action_dim
        if not self.noise_beta:
            return torch.randn((count, horizon, dims), generator=generator, device=device)
        freqs = torch.fft.rfftfreq(horizon, device=device)
        freqs[0] = 1.0 / horizon  # the constant part weighs as much as the lowest frequency
        amplitude = freqs ** (-self.noise_beta / 2)
        # The constant part (and, for an even horizon, the alternating one) enters the signal once and is
        # real; every other frequency enters twice (itself and its mirror).
        copies = torch.full_like(amplitude, 2.0)
        copies[0] = 1.0
        if horizon % 2 == 0:
            copies[-1] = 1.0
        real, imag = torch.randn((2, count, dims, len(freqs)), generator=generator, device=device)
        spectrum = torch.complex(real, imag * (copies > 1)) * amplitude
        std = (copies * amplitude).square().sum().sqrt() / horizon
        return (torch.fft.irfft(spectrum, n=horizon) / std).transpose(1, 2)

    def _refit(
        self, candidates: Tensor, energies: Tensor, mean: Tensor, std: Tensor
    ) -> tuple[Tensor, Tensor]:
        """candidates [C, H, A], energies [C], mean/std [H, A] -> the next mean and std [H, A]."""
        raise NotImplementedError

    def _generator_on(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        return self._generator
