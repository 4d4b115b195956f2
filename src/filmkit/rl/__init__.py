"""FiLM for goal-conditioned control on BabyAI/MiniGrid: policies, goal interfaces, demos, imitation, PPO, evaluation.

Needs the ``[rl]`` extra (minigrid, gymnasium) only where environments are touched; the policies and the file formats
import without it. Modules: ``envs`` (levels, mission vocabulary, goal vectors), ``policy`` (FiLM and concatenation
actor-critics, checkpoints), ``demos`` (bot demonstrations), ``imitation`` (behavioural cloning), ``ppo``,
``acting`` (in-process environment pools), ``evaluate`` (success rate, GIFs).
"""

from filmkit.rl.envs import INSTALL_HINT, Vocab, require_minigrid
from filmkit.rl.policy import Policy, PolicyConfig, load_policy, save_policy

__all__ = ["INSTALL_HINT", "Policy", "PolicyConfig", "Vocab", "load_policy", "require_minigrid", "save_policy"]
