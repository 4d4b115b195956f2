"""Goal interfaces against real BabyAI levels (skipped without the [rl] extra)."""

import re

import numpy as np
import pytest

pytest.importorskip("minigrid")

from filmkit.rl.envs import (  # noqa: E402
    COLOURS,
    GOAL_DIM,
    LOCATIONS,
    OBJECT_TYPES,
    Vocab,
    describe_goal,
    goal_vector,
    make_env,
    reset,
)

LEVELS = ["BabyAI-GoToRedBall-v0", "BabyAI-GoToLocal-v0", "BabyAI-PickupLoc-v0", "BabyAI-PutNextLocal-v0",
          "BabyAI-OpenDoor-v0", "BabyAI-GoToObj-v0"]  # fmt: skip


def mission_words(mission: str) -> str:
    """A mission with articles dropped and locations reduced to their name, as describe_goal writes them."""
    mission = mission.replace("in front of you", "front").replace("behind you", "behind")
    mission = re.sub(r"on your (left|right)", r"\1", mission)
    return " ".join(word for word in mission.split() if word not in ("the", "a"))


def test_grammar_matches_minigrid():
    from minigrid.core.constants import COLOR_NAMES
    from minigrid.envs.babyai.core.verifier import LOC_NAMES, OBJ_TYPES

    assert set(COLOURS) == set(COLOR_NAMES)
    assert tuple(OBJ_TYPES) == OBJECT_TYPES and tuple(LOC_NAMES) == LOCATIONS


@pytest.mark.parametrize("level", LEVELS)
def test_goal_vectors_describe_the_missions(level):
    env = make_env(level)
    vocab = Vocab.babyai()
    for seed in range(15):
        obs = reset(env, seed=seed)
        vector = goal_vector(env)
        assert vector.shape == (GOAL_DIM,) and set(np.unique(vector)) <= {0.0, 1.0}
        assert describe_goal(vector) == mission_words(obs["mission"]), obs["mission"]
        assert 1 not in vocab.encode(obs["mission"]), f"unknown word in {obs['mission']!r}"
        assert vocab.decode(vocab.encode(obs["mission"])) == obs["mission"]


def test_sequences_have_no_goal_vector():
    env = make_env("BabyAI-SynthSeq-v0")
    for seed in range(30):
        reset(env, seed=seed)
        if "then" in env.unwrapped.mission or "after" in env.unwrapped.mission:
            with pytest.raises(ValueError, match="no goal vector"):
                goal_vector(env)
            return
    pytest.fail("no sequence mission in 30 seeds")


def test_unknown_level_is_named():
    with pytest.raises(ValueError, match="'BabyAI-Nope-v0'"):
        make_env("BabyAI-Nope-v0")
