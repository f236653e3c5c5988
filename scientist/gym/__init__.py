"""A gym for research agents: every template as a ``gymnasium.Env``, and performance profiles
with AUP across models (``scientist bench``). See MLGym (Nathani et al., 2025)."""

from scientist.gym.registration import register_envs

register_envs()
