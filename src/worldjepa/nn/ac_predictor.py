"""The action-conditioned predictor of V-JEPA 2-AC.

Per time step t the sequence holds [action_t, state_t, (extrinsics_t,) frame tokens of step t]; each
conditioning vector is embedded by its own Linear. Attention is block-causal over time: every token
of step t sees all tokens of steps <= t, so the output for frame t depends on frames, actions and
states up to t only, and one call predicts every next frame at once (teacher forcing). Frame tokens
get 3D RoPE with (h, w) rescaled to the configured grid; conditioning tokens get the temporal
rotation only (position (t, 0, 0)). The outputs at conditioning positions are dropped.

Rollout: the number of steps T is inferred from the token count, so a rollout may call `forward` with
a growing sequence (the official way, and the training path). Because of the block-causal mask,
tokens of steps < T are unaffected by later steps, so `step` instead runs only the newest step's
tokens against the cached keys/values of the earlier ones (the planning path): each new step costs
one step's tokens instead of the whole sequence.
"""

import torch
from torch import Tensor, nn

from worldjepa.errors import UserError
from worldjepa.nn.attention import LAYER_NORM_EPS, Block, KVCache, init_weights
from worldjepa.nn.rope import RoPE3D, token_coords
from worldjepa.nn.vit import as_pair


def block_causal_mask(num_steps: int, tokens_per_step: int, device: torch.device | None = None) -> Tensor:
    """[L, L] bool with L = num_steps * tokens_per_step; True where query i may attend key j (t_j <= t_i).

    The official code builds it once for a maximum number of steps and slices it; building it per
    call costs O(L^2) comparisons, far below the attention itself, and lifts the length limit.
    """
    step = torch.arange(num_steps, device=device).repeat_interleave(tokens_per_step)
    return step[:, None] >= step[None, :]


class ActionConditionedPredictor(nn.Module):
    """`forward(z, actions, states)` -> next-frame predictions [B, T*N, D] for every step;
    `step(z_t, a_t, s_t, cache)` -> the prediction of one more step, reusing cached keys/values."""

    def __init__(
        self,
        embed_dim: int,
        predictor_embed_dim: int,
        depth: int,
        num_heads: int,
        img_size: int | tuple[int, int] = 256,
        patch_size: int = 16,
        action_dim: int = 7,
        state_dim: int = 7,
        extrinsics_dim: int = 6,
        use_extrinsics: bool = False,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        rope_compat: bool = False,
        init_std: float = 0.02,
    ):
        super().__init__()
        height, width = as_pair(img_size)
        self.grid = (height // patch_size, width // patch_size)
        self.use_extrinsics = use_extrinsics
        self.predictor_embed = nn.Linear(embed_dim, predictor_embed_dim)
        self.action_encoder = nn.Linear(action_dim, predictor_embed_dim)
        self.state_encoder = nn.Linear(state_dim, predictor_embed_dim)
        # Always present, as in the official checkpoints (strict loading needs it); used with use_extrinsics.
        self.extrinsics_encoder = nn.Linear(extrinsics_dim, predictor_embed_dim)
        self.rope = RoPE3D(predictor_embed_dim // num_heads, compat=rope_compat)
        self.predictor_blocks = nn.ModuleList(
            Block(predictor_embed_dim, num_heads, mlp_ratio, qkv_bias) for _ in range(depth)
        )
        self.predictor_norm = nn.LayerNorm(predictor_embed_dim, eps=LAYER_NORM_EPS)
        self.predictor_proj = nn.Linear(predictor_embed_dim, embed_dim)
        init_weights(self, self.predictor_blocks, init_std)

    def positions(self, num_steps: int, num_cond: int, grid: tuple[int, int], device: torch.device) -> Tensor:
        """(t, h, w) of every token of the interleaved sequence: [1, T*(c + H*W), 3].

        Frame tokens: h, w scaled by (configured grid / actual grid), so a coarser grid (e.g. one pooled
        token per frame) spans the same range. Conditioning tokens: (t, 0, 0), the temporal rotation only.
        """
        height, width = grid
        frame = token_coords(torch.arange(height * width, device=device), height, width).float()
        frame = frame * frame.new_tensor([0.0, self.grid[0] / height, self.grid[1] / width])
        step = torch.cat([frame.new_zeros(num_cond, 3), frame])  # [c + HW, 3], t = 0
        pos = step.expand(num_steps, -1, -1).clone()
        pos[..., 0] = torch.arange(num_steps, device=device, dtype=pos.dtype)[:, None]
        return pos.flatten(0, 1)[None]

    def forward(
        self,
        z: Tensor,
        actions: Tensor,
        states: Tensor,
        extrinsics: Tensor | None = None,
        grid: tuple[int, int] | None = None,
    ) -> Tensor:
        """z [B, T*N, D] frame tokens (frame-major), actions [B, T, A], states [B, T, S] -> [B, T*N, D].

        grid: (H, W) tokens per frame, N = H*W; defaults to the configured grid; (1, 1) for pooled latents.
        Output step t is the prediction of frame t+1.
        """
        grid = self.grid if grid is None else grid
        batch, length, _ = z.shape
        per_frame = grid[0] * grid[1]
        num_steps = length // per_frame
        if length % per_frame or actions.shape[1] != num_steps or states.shape[1] != num_steps:
            raise UserError(
                f"the AC predictor got {length} frame tokens ({per_frame} per frame), "
                f"{actions.shape[1]} actions and {states.shape[1]} states; pass T*{per_frame} tokens "
                "and T actions and states (one per frame)"
            )
        x = self.embed(z, actions, states, extrinsics).flatten(1, 2)  # [B, T*(c+N), d]
        rope = self.rope(self.positions(num_steps, self.num_cond, grid, z.device), x.dtype)
        mask = block_causal_mask(num_steps, self.num_cond + per_frame, z.device)
        for block in self.predictor_blocks:
            x = block(x, rope, mask)
        x = x.unflatten(1, (num_steps, -1))[:, :, self.num_cond :].flatten(1, 2)  # drop conditioning tokens
        return self.predictor_proj(self.predictor_norm(x))

    @property
    def num_cond(self) -> int:
        """Conditioning tokens per step: action, state (and extrinsics)."""
        return 3 if self.use_extrinsics else 2

    def embed(self, z: Tensor, actions: Tensor, states: Tensor, extrinsics: Tensor | None) -> Tensor:
        """z [B, T*N, D], actions [B, T, A], states [B, T, S] -> interleaved tokens [B, T, c + N, d]."""
        cond = [self.action_encoder(actions), self.state_encoder(states)]
        if self.use_extrinsics:
            if extrinsics is None:
                raise UserError("this AC predictor uses extrinsics: pass extrinsics [B, T, E]")
            cond.append(self.extrinsics_encoder(extrinsics))
        frames = self.predictor_embed(z).unflatten(1, (actions.shape[1], -1))  # [B, T, N, d]
        return torch.cat([c.unsqueeze(2) for c in cond] + [frames], dim=2)

    def step(
        self,
        z: Tensor,
        actions: Tensor,
        states: Tensor,
        cache: KVCache,
        extrinsics: Tensor | None = None,
        grid: tuple[int, int] | None = None,
    ) -> Tensor:
        """The next step of a rollout: frame t z [B, N, D], actions [B, A], states [B, S] -> frame t+1 [B, N, D].

        t is the number of steps already in `cache` (start with an empty list); the cache grows in place.
        Equals the last output step of `forward` on the whole sequence up to t, at the cost of one step.
        """
        grid = self.grid if grid is None else grid
        per_step = self.num_cond + grid[0] * grid[1]
        t = cache[0][0].shape[2] // per_step if cache else 0
        extrinsics = None if extrinsics is None else extrinsics[:, None]
        x = self.embed(z, actions[:, None], states[:, None], extrinsics)[:, 0]  # [B, c+N, d]
        pos = self.positions(t + 1, self.num_cond, grid, z.device)[:, -per_step:]
        rope = self.rope(pos, x.dtype)
        for index, block in enumerate(self.predictor_blocks):
            x = block(x, rope, cache=cache, index=index)  # no mask: the newest step sees every earlier one
        return self.predictor_proj(self.predictor_norm(x[:, self.num_cond :]))
