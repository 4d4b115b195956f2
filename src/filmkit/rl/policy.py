"""Goal-conditioned actor-critic policies over BabyAI's 7x7x3 egocentric grid, FiLM-conditioned or concatenation.

The network (after BabyAI 1.1, narrower for CPUs): each grid cell's (object, colour, state) triple is a bag of three
learned embeddings; residual conv blocks are conditioned on the goal, either by FiLM (the goal predicts a
per-channel gamma and beta, through ``filmkit.film``, applied to the block's input or after its second conv) or, for
the baseline, by concatenating a projection of the goal to every cell at the block's input (the two have the same size
within 2%). A max-pool over the grid, an optional GRU memory (whose output is added to the pooled features, so the
heads see the present observation directly while the memory learns what to add), then actor and critic heads. The
goal is the mission text (word embeddings + GRU) or a goal vector (``envs.goal_vector``).

>>> policy = Policy(PolicyConfig(vocab_size=35, channels=16, memory=True))
>>> images = torch.zeros(4, 7, 7, 3, dtype=torch.uint8)
>>> goals = torch.tensor([[2, 3, 9, 21, 28]] * 4)
>>> logits, value, hidden = policy(images, goals, policy.initial_state(4))
>>> logits.shape, value.shape, hidden.shape
(torch.Size([4, 7]), torch.Size([4]), torch.Size([4, 16]))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from filmkit.checkpoint_file import RL_POLICY, CheckpointError, check_kind, load_torch_file, write_checkpoint_file
from filmkit.film import FiLM, FiLMGenerator

NUM_ACTIONS = 7
CELL_VALUES = 16  # minigrid's object (0-10), colour (0-5) and state (0-2) indices all fit below 16
CONDITIONINGS = ("film", "concat")
GOAL_KINDS = ("text", "vector")
# Where FiLM acts in each block. "input": on the block's input, before its first conv, so the goal decides which cell
# features the convolutions combine (GoToLocal imitation: 99% in 5 epochs, where "output" stayed below 96% for 25;
# docs/rl.md). "output": after the second conv, the CLEVR model's placement; format-1 checkpoints were built this way.
FILM_POSITIONS = ("input", "output")
# Policy checkpoint versions: 1 before film_position and memory_skip existed (built as "output", no skip); 2 added
# them; 3 is the same content in filmkit's shared checkpoint layout (filmkit/checkpoint_file.py).
POLICY_VERSION = 3


@dataclass
class PolicyConfig:
    """Every switch of a policy; stored in checkpoints so that ``Policy(PolicyConfig(**saved))`` rebuilds it."""

    conditioning: str = "film"  # film | concat
    goal: str = "text"  # text: mission ids, (N, L) int64 | vector: goal vectors, (N, goal_dim) float
    vocab_size: int = 0  # needed for goal="text"
    goal_dim: int = 0  # needed for goal="vector"
    channels: int = 64
    num_blocks: int = 2
    goal_hidden: int = 64  # word embedding and GRU width, or the goal vector's projection
    memory: bool = True
    # The heads read pooled features + memory output rather than the memory output alone: PPO with memory then
    # learns faster than without memory, where it used to crawl (docs/rl.md). Format-1 checkpoints have no skip.
    memory_skip: bool = True
    head_hidden: int = 64
    film_position: str = "input"  # input | output (FILM_POSITIONS)

    def __post_init__(self):
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(f"unknown conditioning {self.conditioning!r}; choose film or concat")
        if self.film_position not in FILM_POSITIONS:
            raise ValueError(f"unknown film_position {self.film_position!r}; choose input or output")
        if self.goal not in GOAL_KINDS:
            raise ValueError(f"unknown goal kind {self.goal!r}; choose text or vector")
        if self.goal == "text" and self.vocab_size < 2:
            raise ValueError("a text-conditioned policy needs vocab_size (the mission vocabulary's length)")
        if self.goal == "vector" and self.goal_dim < 1:
            raise ValueError("a vector-conditioned policy needs goal_dim")


class GoalEncoder(nn.Module):
    """Mission ids -> last real GRU state, or goal vector -> linear projection; (N, goal_hidden) either way."""

    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.kind = config.goal
        if self.kind == "text":
            self.embedding = nn.Embedding(config.vocab_size, config.goal_hidden, padding_idx=0)
            self.rnn = nn.GRU(config.goal_hidden, config.goal_hidden, batch_first=True)
        else:
            self.project = nn.Linear(config.goal_dim, config.goal_hidden)

    def forward(self, goals: torch.Tensor) -> torch.Tensor:
        if self.kind == "vector":
            return torch.relu(self.project(goals.float()))
        lengths = (goals != 0).sum(dim=1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(goals), lengths, True, enforce_sorted=False)
        _, last = self.rnn(packed)
        return last[0]


class ConditionedBlock(nn.Module):
    """conv3x3 -> ReLU -> conv3x3 -> ReLU, plus the input (residual, as in BabyAI 1.1), conditioned on the goal.

    FiLM acts on the block's input or on the second conv's output (``film_position``); concatenation tiles the goal
    over the input.
    """

    def __init__(self, channels: int, goal_hidden: int, conditioning: str, film_position: str = "input"):
        super().__init__()
        self.conditioning = conditioning
        self.film_position = film_position
        extra = 0
        if conditioning == "concat":
            # A quarter-width projection of the goal per block keeps the baseline the size of the FiLM policy.
            extra = max(1, goal_hidden // 4)
            self.project = nn.Linear(goal_hidden, extra)
        self.conv1 = nn.Conv2d(channels + extra, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.film = FiLM()

    def forward(self, x: torch.Tensor, goal: torch.Tensor, gamma_beta: torch.Tensor | None) -> torch.Tensor:
        inputs = x
        if self.conditioning == "concat":
            tiled = self.project(goal)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            inputs = torch.cat([x, tiled], dim=1)
        if gamma_beta is not None and self.film_position == "input":
            inputs = self.film(inputs, gamma_beta[:, 0], gamma_beta[:, 1])
        out = self.conv2(torch.relu(self.conv1(inputs)))
        if gamma_beta is not None and self.film_position == "output":
            out = self.film(out, gamma_beta[:, 0], gamma_beta[:, 1])
        return x + torch.relu(out)


class Policy(nn.Module):
    """Actor-critic: ``policy(images, goals, hidden) -> (action logits, value, next hidden)``.

    ``images`` are raw (N, 7, 7, 3) uint8 observations, ``goals`` mission ids or goal vectors, ``hidden`` the memory
    state ((N, channels), zeros at an episode's start; without memory it is ignored and None comes back).
    """

    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.config = config
        c = config.channels
        self.cells = nn.Embedding(3 * CELL_VALUES, c)
        self.register_buffer("cell_offsets", torch.arange(3) * CELL_VALUES, persistent=False)
        self.goal_encoder = GoalEncoder(config)
        self.generator = (
            FiLMGenerator(config.goal_hidden, config.num_blocks, c) if config.conditioning == "film" else None
        )
        self.blocks = nn.ModuleList(
            ConditionedBlock(c, config.goal_hidden, config.conditioning, config.film_position)
            for _ in range(config.num_blocks)
        )
        self.memory = nn.GRU(c, c, batch_first=True) if config.memory else None
        self.actor = nn.Sequential(nn.Linear(c, config.head_hidden), nn.Tanh(), nn.Linear(config.head_hidden, 7))
        self.critic = nn.Sequential(nn.Linear(c, config.head_hidden), nn.Tanh(), nn.Linear(config.head_hidden, 1))

    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.config.channels, device=self.cells.weight.device)

    def encode(self, images: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
        """Goal-conditioned features of each observation, (N, channels), before memory."""
        cells = images.long().clamp(max=CELL_VALUES - 1) + self.cell_offsets
        x = self.cells(cells).sum(dim=3).permute(0, 3, 1, 2)  # (N, C, 7, 7)
        goal = self.goal_encoder(goals)
        film_params = self.generator(goal) if self.generator is not None else None
        for i, block in enumerate(self.blocks):
            x = block(x, goal, None if film_params is None else film_params[:, i])
        return x.amax(dim=(2, 3))

    def heads(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.actor(features), self.critic(features).squeeze(-1)

    def _with_memory(self, features: torch.Tensor, memory_out: torch.Tensor) -> torch.Tensor:
        """What the heads read when there is memory: its output, plus the features when ``memory_skip``."""
        return memory_out + features if self.config.memory_skip else memory_out

    def forward(
        self, images: torch.Tensor, goals: torch.Tensor, hidden: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        features = self.encode(images, goals)
        if self.memory is None:
            return *self.heads(features), None
        hidden = self.initial_state(len(images)) if hidden is None else hidden
        out, last = self.memory(features[:, None], hidden[None].contiguous())
        return *self.heads(self._with_memory(features, out[:, 0])), last[0]

    def forward_sequences(
        self, images: torch.Tensor, goals: torch.Tensor, hidden: torch.Tensor | None, dones: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Action logits and values of ``S`` stretches of ``R`` consecutive steps each, laid out (R, S, ...).

        ``hidden`` is the memory state before each stretch's first step; ``dones[k]`` marks the steps after which an
        episode ended, so the memory restarts from zeros as it did while acting. Gradients flow back through all
        ``R`` steps: PPO's truncated backpropagation through time.
        """
        steps, count = dones.shape
        features = self.encode(images.flatten(0, 1), goals.flatten(0, 1)).view(steps, count, -1)
        if self.memory is not None:
            hidden = self.initial_state(count) if hidden is None else hidden
            outputs = []
            for step in range(steps):
                out, last = self.memory(features[step][:, None], hidden[None].contiguous())
                outputs.append(self._with_memory(features[step], out[:, 0]))
                hidden = last[0] * (1 - dones[step])[:, None]
            features = torch.stack(outputs)
        return self.heads(features)

    def forward_episodes(self, images: torch.Tensor, goals: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Action logits of whole episodes laid end to end: ``images`` (sum(lengths), 7, 7, 3), ``goals`` one per step.

        Memory runs over each episode from a zero state (full backpropagation through time), so imitation learning
        trains the same recurrence that acting uses.
        """
        features = self.encode(images, goals)
        if self.memory is not None:
            padded = nn.utils.rnn.pad_sequence(features.split(lengths.tolist()), batch_first=True)
            packed = nn.utils.rnn.pack_padded_sequence(padded, lengths.cpu(), True, enforce_sorted=False)
            out, _ = self.memory(packed)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
            mask = torch.arange(out.shape[1])[None] < lengths[:, None]
            features = self._with_memory(features, out[mask])
        return self.heads(features)[0]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def checkpoint_dict(policy: Policy, env_id: str, vocab_words: list[str], history: list[dict], info: dict) -> dict:
    """What an RL checkpoint holds besides the format marker: plain types and tensors only (weights-only loading)."""
    return {
        "config": asdict(policy.config),
        "env_id": env_id,
        "vocab": vocab_words,
        "history": history,
        "info": info,
        "state_dict": policy.state_dict(),
    }


def save_policy(path, policy: Policy, env_id: str, vocab_words: list[str], history=(), info=None) -> None:
    """Write a checkpoint atomically (a reader never sees half of one)."""
    entries = checkpoint_dict(policy, env_id, vocab_words, list(history), dict(info or {}))
    write_checkpoint_file(path, RL_POLICY, POLICY_VERSION, entries)


def _read_policy_file(path) -> dict:
    """A policy checkpoint's dict, files of versions 1 and 2 (marked ``kind``, numbered ``format``) included."""
    payload = load_torch_file(path)
    if isinstance(payload, dict) and payload.get("kind") == RL_POLICY and isinstance(payload.get("format"), int):
        payload = {**payload, "format": RL_POLICY, "format_version": payload["format"]}
    return check_kind(payload, path, RL_POLICY, POLICY_VERSION)


def is_unfinished(path) -> bool:
    """Whether ``path`` is a policy checkpoint that a training run saved on its way and never finished.

    Training marks its checkpoints ``info["finished"] = False`` until the last one, so a run that was killed or
    failed leaves a checkpoint that the next run may replace without ``--overwrite``.
    """
    try:
        checkpoint = _read_policy_file(path)
    except CheckpointError:  # not a policy checkpoint at all: not ours to replace
        return False
    info = checkpoint.get("info")
    return isinstance(info, dict) and info.get("finished") is False


def load_policy(path) -> tuple[Policy, dict]:
    """Rebuild a policy from a checkpoint; a CheckpointError (a ValueError) when the file is not a policy checkpoint.

    Example::

        policy, checkpoint = load_policy("runs/gotoredball.pt")
        checkpoint["env_id"], checkpoint["history"][-1]
    """
    checkpoint = _read_policy_file(path)
    config = dict(checkpoint["config"])
    if checkpoint["format_version"] == 1:
        config.update(film_position="output", memory_skip=False)  # the only architecture before version 2
    policy = Policy(PolicyConfig(**config))
    policy.load_state_dict(checkpoint["state_dict"])
    policy.eval()
    return policy, checkpoint
