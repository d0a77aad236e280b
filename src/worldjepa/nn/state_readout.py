"""The state a picture shows: how a planner gets a goal state from a goal IMAGE.

Under the planning protocol the planner never sees the simulator's goal state. An energy that compares
states (the DINO-WM-style proprio term) therefore needs the goal state estimated from the goal image.
`StateReadout` is a small convolutional network on the frame (four stride-2 convolutions, then an MLP),
fitted after stage 2 on every recorded frame and its state (`worldjepa.methods.state_readout_fit`), on
targets normalised by the data's statistics (constants of the architecture, kept in its config like the
proprio head's).

Why pixels and not the frozen encoder's latents: on 15k Reach frames a readout of the grasp point from the
tiny stage-1 encoder's tokens is off by 2.8-5.8 cm on held-out episodes (attentive probe on the 8x8 grid
of a random-init encoder 2.8 cm, an MLP on the shipped encoder's 2x2 pooled latents 5.8 cm), this
network by 1.3 cm (0.9 cm from 76k frames), and Reach succeeds within 3 cm. The readout is the same for
every encoder, so ablations of the encoder compare encoders only.

A `pair` readout reads the state CHANGE from a reference frame (the current camera image, whose state the
robot knows from its own sensors) to a frame (the goal image): goal state = current state + change. Both
pictures show one scene, so a look the readout never saw (other colours, lights, camera) changes both
alike, and its error shrinks as the robot nears the goal; the planner re-reads it at every re-plan, like
visual servoing. Fitted on pairs of frames of one episode. An `antisymmetric` pair readout reads the
change both ways and returns half their difference, so that the change from A to B is exactly minus the
change from B to A and zero between two copies of one picture: the part of its error that does not flip
with the pair's order cancels, and that part dominates near the goal (DMC reacher, docs/07).

A `standardize` readout first rescales its input, per picture (a pair: both pictures by their joint
statistics, so that one scene look stays one look), to zero mean and unit spread: a dimmer or brighter
light then shows the network the same contrasts, where it would otherwise see a picture whose every
difference is halved (the Reach `lighting` scene is half as bright as the default). `"channels"` rescales
each colour channel on its own (a greyer or tinted light is undone too, and with it some of the contrast
between two colours), `"brightness"` all three by one gain and offset (colours keep their contrasts).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from worldjepa.errors import UserError
from worldjepa.nn.normalization import normalization_config, set_normalization_buffers

#: How a readout rescales its input pictures (`StateReadout`): not at all, per colour channel, or by one
#: brightness gain and offset for all channels.
Standardize = Literal["none", "channels", "brightness"]


class StateReadout(nn.Module):
    """Normalised frames [B, 3, H, W] (H, W multiples of 16) -> the state they show [B, S], in data units;
    with `pair`, (frames, reference frames) -> the state change from the reference to the frame, read both
    ways with `antisymmetric`."""

    def __init__(
        self,
        state_dim: int,
        image_size: int,
        width: int = 16,
        normalization: dict[str, list[float]] | None = None,
        pair: bool = False,
        antisymmetric: bool = False,
        standardize: Standardize | bool = "none",
    ) -> None:
        super().__init__()
        if image_size % 16:
            raise UserError(f"the state readout needs an image size divisible by 16, got {image_size}")
        if antisymmetric and not pair:
            raise UserError(
                "an antisymmetric state readout reads a change between two frames: it needs pair=true"
            )
        if isinstance(standardize, bool):  # readouts saved before the modes had names
            standardize = "channels" if standardize else "none"
        if standardize not in get_args(Standardize):
            raise UserError(
                f"state readout standardize must be one of {', '.join(get_args(Standardize))}, got {standardize!r}"
            )
        self.state_dim, self.image_size, self.width, self.pair = state_dim, image_size, width, pair
        self.antisymmetric, self.standardize = antisymmetric, standardize
        channels = [6 if pair else 3, width, 2 * width, 4 * width, 4 * width]
        convs: list[nn.Module] = []
        for c_in, c_out in zip(channels, channels[1:], strict=False):
            convs += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.GELU()]
        side = image_size // 16
        self.net = nn.Sequential(
            *convs,
            nn.Flatten(),
            nn.Linear(channels[-1] * side * side, 8 * width),
            nn.GELU(),
            nn.Linear(8 * width, state_dim),
        )
        self.set_normalization(normalization)

    def set_normalization(self, normalization: dict[str, list[float]] | None) -> None:
        """`state_mean` and `state_std` (S values each); None: the identity."""
        sizes = {"state_mean": self.state_dim, "state_std": self.state_dim}
        set_normalization_buffers(self, sizes, normalization, "state readout")

    def forward(self, frames: Tensor, reference: Tensor | None = None) -> Tensor:
        """frames [B, 3, H, W] -> states [B, S]; a pair readout takes reference frames [B, 3, H, W] too and
        returns the change from each reference to its frame."""
        if self.pair != (reference is not None):
            raise UserError(
                "a pair state readout reads a frame against a reference frame: pass both"
                if self.pair
                else "this state readout reads single frames: it takes no reference frame"
            )
        if reference is None:
            return self.net(self._standardized(frames[:, None])[:, 0]) * self.state_std + self.state_mean
        pairs = self._standardized(torch.stack([reference, frames], dim=1)).flatten(1, 2)
        if not self.antisymmetric:
            return self.net(pairs) * self.state_std + self.state_mean
        # both orders in one batch; the mean of the changes cancels in the difference
        swapped = torch.cat(pairs.chunk(2, dim=1)[::-1], dim=1)
        forward, backward = self.net(torch.cat([pairs, swapped])).chunk(2)
        return (forward - backward) / 2 * self.state_std

    def _standardized(self, pictures: Tensor) -> Tensor:
        """Groups of pictures [B, P, 3, H, W] (a frame, or a reference and a frame) as they are, or with
        `standardize` each group rescaled by its joint mean and spread, per colour channel or over all three."""
        if self.standardize == "none":
            return pictures
        over = (1, 3, 4) if self.standardize == "channels" else (1, 2, 3, 4)
        mean = pictures.mean(dim=over, keepdim=True)
        std = pictures.std(dim=over, keepdim=True).clamp_min(1e-3)
        return (pictures - mean) / std

    def config(self) -> dict[str, Any]:
        config = {
            "state_dim": self.state_dim,
            "image_size": self.image_size,
            "width": self.width,
            "pair": self.pair,
            "antisymmetric": self.antisymmetric,
            "standardize": self.standardize,
        }
        if self.normalized:
            config["normalization"] = normalization_config(self)
        return config
