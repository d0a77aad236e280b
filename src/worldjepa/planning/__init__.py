"""Planning in latent space: goal energies, the CEM and MPPI planners, and the receding-horizon agent.

A world model is anything with `encode(obs) -> Latent` and `unroll(latent, actions) -> Latent`
(see `world_model.py`; `ac_world_model.py` is the V-JEPA 2-AC one); planners only ever see `unroll`, a
start latent and an objective.
"""

from worldjepa.planning.agent import MPCAgent, build_agent, obs_to_batch
from worldjepa.planning.cem import CEM
from worldjepa.planning.energy import GoalEnergy
from worldjepa.planning.mppi import MPPI
from worldjepa.planning.planner_config import PlannerConfig
from worldjepa.planning.sampling_planner import Objective, PlanResult, SamplingPlanner, Unroll, shift_plan
from worldjepa.planning.world_model import Latent, WorldModel

__all__ = [
    "CEM",
    "MPPI",
    "GoalEnergy",
    "Latent",
    "MPCAgent",
    "Objective",
    "PlanResult",
    "PlannerConfig",
    "SamplingPlanner",
    "Unroll",
    "WorldModel",
    "build_agent",
    "obs_to_batch",
    "shift_plan",
]
