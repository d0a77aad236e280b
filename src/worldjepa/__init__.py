"""worldjepa: JEPA world models for physical AI.

I-JEPA -> V-JEPA -> V-JEPA 2-style two-stage training -> an action-conditioned world model that plans
in latent space. See README.md and docs/ for the learning path.
"""

__version__ = "0.1.0"
