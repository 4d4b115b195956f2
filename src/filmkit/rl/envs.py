"""BabyAI environments and the two goal interfaces: mission tokens and structured goal vectors.

minigrid and gymnasium are imported lazily (the ``[rl]`` extra), so ``import filmkit.rl`` works without them.

Example (needs the extra)::

    from filmkit.rl.envs import GOAL_DIM, Vocab, goal_vector, make_env, reset

    env = make_env("BabyAI-GoToRedBall-v0")
    obs = reset(env, seed=0)
    Vocab.babyai().encode(obs["mission"])      # [2, 3, 9, 21, 28] for "go to the red ball"
    goal_vector(env).shape                      # (GOAL_DIM,) = (38,)
"""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np

INSTALL_HINT = "install the rl extra: pip install 'filmkit[rl]'"

# The BabyAI grammar's object types, colours and locations (the tests check them against minigrid's).
OBJECT_TYPES = ("box", "ball", "key", "door")
COLOURS = ("red", "green", "blue", "purple", "yellow", "grey")
LOCATIONS = ("left", "right", "front", "behind")
ACTIONS = ("go to", "pick up", "open", "put next")
# Words of BabyAI's mission templates (minigrid.envs.babyai.core.verifier's surface() methods) besides the above.
GRAMMAR_WORDS = ("go", "to", "pick", "up", "open", "put", "next", "the", "a", "object", "in", "of", "you", "on",
                 "your", "and", ",", "then", "after")  # fmt: skip


def require_minigrid():
    """Import gymnasium and minigrid (registering the BabyAI levels), or raise ImportError with the install hint."""
    try:
        import gymnasium
        import minigrid  # noqa: F401  (importing it registers the MiniGrid and BabyAI levels)
    except ImportError as error:
        raise ImportError(f"filmkit.rl needs minigrid and gymnasium ({error}); {INSTALL_HINT}") from None
    return gymnasium


def make_env(env_id: str, render_mode: str | None = None):
    """A BabyAI/MiniGrid environment by id; ValueError naming the id when gymnasium does not know it."""
    gymnasium = require_minigrid()
    if env_id not in gymnasium.registry:
        levels = sorted(name for name in gymnasium.registry if name.startswith("BabyAI-"))
        raise ValueError(f"unknown environment {env_id!r}; BabyAI levels include {', '.join(levels[:6])}, ...")
    return gymnasium.make(env_id, render_mode=render_mode)


def reset(env, seed: int | None = None) -> dict:
    """``env.reset`` without the "Sampling rejected" lines some levels print to stdout (the library never prints)."""
    with contextlib.redirect_stdout(io.StringIO()):
        obs, _ = env.reset(seed=seed)
    return obs


def tokenize(mission: str) -> list[str]:
    """``"go to the red ball, then open a door"`` -> ["go", "to", ..., ",", "then", "open", "a", "door"]."""
    return re.findall(r"[a-z]+|,", mission.lower())


class Vocab:
    """Words of BabyAI missions -> ids; 0 pads, 1 stands for any word outside the vocabulary.

    >>> vocab = Vocab.babyai()
    >>> vocab.encode("go to the red ball")
    [2, 3, 9, 21, 28]
    >>> vocab.decode(vocab.encode("pick up a purple key"))
    'pick up a purple key'
    """

    PAD, UNK = "<pad>", "<unk>"

    def __init__(self, words: list[str]):
        self.words = list(words)
        self.index = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def babyai(cls) -> Vocab:
        """Every word BabyAI's grammar can produce (fixed, so checkpoints of every level share it)."""
        words: list[str] = [cls.PAD, cls.UNK]
        for word in GRAMMAR_WORDS + COLOURS + OBJECT_TYPES + LOCATIONS:
            if word not in words:
                words.append(word)
        return cls(words)

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, mission: str) -> list[int]:
        return [self.index.get(word, 1) for word in tokenize(mission)]

    def decode(self, ids) -> str:
        return " ".join(self.words[i] for i in ids if i != 0).replace(" ,", ",")

    def encode_batch(self, missions, length: int | None = None) -> np.ndarray:
        """Right-padded (N, length) int64 ids; ``length`` defaults to the longest mission."""
        encoded = [self.encode(mission) for mission in missions]
        length = length or max(len(ids) for ids in encoded)
        out = np.zeros((len(encoded), length), dtype=np.int64)
        for row, ids in enumerate(encoded):
            out[row, : len(ids[:length])] = ids[:length]
        return out


# Goal vector layout: action one-hot, then two object slots (the second used only by "put next").
# Each slot: type one-hot (4 types + "object" for any type), colour one-hot (6 + none), location one-hot (4 + none).
SLOT_DIM = (len(OBJECT_TYPES) + 1) + (len(COLOURS) + 1) + (len(LOCATIONS) + 1)
GOAL_DIM = len(ACTIONS) + 2 * SLOT_DIM


def _slot(desc) -> np.ndarray:
    types, colours, locations = (np.zeros(len(names) + 1, np.float32) for names in (OBJECT_TYPES, COLOURS, LOCATIONS))
    types[OBJECT_TYPES.index(desc.type) if desc.type else len(OBJECT_TYPES)] = 1
    colours[COLOURS.index(desc.color) if desc.color else len(COLOURS)] = 1
    locations[LOCATIONS.index(desc.loc) if desc.loc else len(LOCATIONS)] = 1
    return np.concatenate([types, colours, locations])


def goal_vector(env) -> np.ndarray:
    """The current mission of a BabyAI env as a (GOAL_DIM,) float32 vector: action, object(s), colour(s), location(s).

    Reads the level's instruction object (``env.unwrapped.instrs``); sequences ("..., then ...") have no vector form
    and raise ValueError naming the mission.
    """
    instr = env.unwrapped.instrs
    name = type(instr).__name__
    kinds = {"GoToInstr": 0, "PickupInstr": 1, "OpenInstr": 2, "PutNextInstr": 3}
    if name not in kinds:
        raise ValueError(
            f"mission {env.unwrapped.mission!r} has no goal vector (only single go to / pick up / open / put next)"
        )
    action = np.zeros(len(ACTIONS), np.float32)
    action[kinds[name]] = 1
    if name == "PutNextInstr":
        return np.concatenate([action, _slot(instr.desc_move), _slot(instr.desc_fixed)])
    return np.concatenate([action, _slot(instr.desc), np.zeros(SLOT_DIM, np.float32)])


def describe_goal(vector: np.ndarray) -> str:
    """The words a goal vector stands for, articles left out: ``"go to red ball"``, ``"put blue key next to box"``.

    Used to check the vectors against the missions they came from.
    """
    vector = np.asarray(vector)

    def slot(part: np.ndarray) -> str:
        sizes = (len(OBJECT_TYPES) + 1, len(COLOURS) + 1, len(LOCATIONS) + 1)
        type_part, colour_part, location_part = np.split(part, np.cumsum(sizes)[:-1])
        words = []
        colour = int(colour_part.argmax())
        if colour < len(COLOURS):
            words.append(COLOURS[colour])
        kind = int(type_part.argmax())
        words.append(OBJECT_TYPES[kind] if kind < len(OBJECT_TYPES) else "object")
        location = int(location_part.argmax())
        if location < len(LOCATIONS):
            words.append(LOCATIONS[location])
        return " ".join(words)

    action = ACTIONS[int(vector[: len(ACTIONS)].argmax())]
    first = slot(vector[len(ACTIONS) : len(ACTIONS) + SLOT_DIM])
    if action == "put next":
        return f"put {first} next to {slot(vector[len(ACTIONS) + SLOT_DIM :])}"
    return f"{action} {first}"
