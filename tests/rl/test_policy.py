"""Policies and checkpoints: no environment needed, so these run without the [rl] extra."""

import pytest
import torch

from filmkit.rl.policy import Policy, PolicyConfig, load_policy, save_policy

MISSIONS = torch.tensor([[2, 3, 9, 21, 28], [2, 3, 9, 18, 27]])


def images(batch: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 11, (batch, 7, 7, 3), generator=generator, dtype=torch.uint8)


@pytest.mark.parametrize("conditioning", ["film", "concat"])
@pytest.mark.parametrize("memory", [True, False])
def test_shapes(conditioning, memory):
    policy = Policy(PolicyConfig(conditioning=conditioning, vocab_size=35, channels=16, memory=memory))
    logits, value, hidden = policy(images(2), MISSIONS, policy.initial_state(2))
    assert logits.shape == (2, 7) and value.shape == (2,)
    assert hidden.shape == (2, 16) if memory else hidden is None


def test_the_goal_changes_the_action_distribution():
    policy = Policy(PolicyConfig(vocab_size=35, channels=16)).eval()
    same_image = images(1).expand(2, -1, -1, -1)
    logits, _, _ = policy(same_image, MISSIONS)
    assert not torch.allclose(logits[0], logits[1])


def test_vector_goals():
    policy = Policy(PolicyConfig(goal="vector", goal_dim=38, channels=16, memory=False))
    goals = torch.zeros(3, 38)
    goals[:, 0] = 1
    logits, _, _ = policy(images(3), goals)
    assert logits.shape == (3, 7)


def test_eval_mode_is_deterministic_given_a_seed():
    def run():
        torch.manual_seed(7)
        policy = Policy(PolicyConfig(vocab_size=35, channels=16)).eval()
        with torch.no_grad():
            return policy(images(2), MISSIONS)[0]

    assert torch.equal(run(), run())


def test_episodes_match_step_by_step_acting():
    """Imitation trains forward_episodes; acting uses forward one step at a time: the two must agree."""
    policy = Policy(PolicyConfig(vocab_size=35, channels=16, memory=True)).eval()
    lengths = torch.tensor([3, 1, 4])
    steps = images(int(lengths.sum()))
    goals = MISSIONS[torch.tensor([0, 0, 0, 1, 0, 0, 0, 0])]
    with torch.no_grad():
        together = policy.forward_episodes(steps, goals, lengths)
        one_by_one, start = [], 0
        for length in lengths.tolist():
            hidden = policy.initial_state(1)
            for t in range(start, start + length):
                logits, _, hidden = policy(steps[t : t + 1], goals[t : t + 1], hidden)
                one_by_one.append(logits)
            start += length
    torch.testing.assert_close(together, torch.cat(one_by_one), rtol=1e-4, atol=1e-5)


def test_film_and_concat_are_of_the_same_size():
    film = Policy(PolicyConfig(conditioning="film", vocab_size=35)).num_parameters()
    concat = Policy(PolicyConfig(conditioning="concat", vocab_size=35)).num_parameters()
    assert abs(concat / film - 1) < 0.02


def test_bad_configs_name_the_value():
    with pytest.raises(ValueError, match="'gated'"):
        PolicyConfig(conditioning="gated", vocab_size=35)
    with pytest.raises(ValueError, match="vocab_size"):
        PolicyConfig(goal="text")
    with pytest.raises(ValueError, match="'middle'"):
        PolicyConfig(vocab_size=35, film_position="middle")


@pytest.mark.parametrize("position", ["input", "output"])
def test_film_acts_where_the_config_says(position):
    """The first block's first conv sees the FiLM-modulated cells ("input") or the plain cells ("output")."""
    policy = Policy(PolicyConfig(vocab_size=35, channels=16, memory=False, film_position=position)).eval()
    seen = {}
    policy.blocks[0].conv1.register_forward_hook(lambda module, args, out: seen.update(conv_input=args[0]))
    block_input = policy.blocks[0].register_forward_pre_hook(lambda module, args: seen.update(block_input=args[0]))
    with torch.no_grad():
        policy(images(2), MISSIONS)
        gamma, beta = policy.generator(policy.goal_encoder(MISSIONS))[:, 0].unbind(dim=1)
    block_input.remove()
    modulated = seen["block_input"] * gamma[:, :, None, None] + beta[:, :, None, None]
    expected = modulated if position == "input" else seen["block_input"]
    torch.testing.assert_close(seen["conv_input"], expected)


def test_checkpoint_round_trip(tmp_path):
    policy = Policy(PolicyConfig(vocab_size=35, channels=16)).eval()
    path = tmp_path / "policy.pt"
    save_policy(path, policy, "BabyAI-GoToRedBall-v0", ["<pad>", "<unk>"], [{"update": 1}], {"trained_by": "test"})
    loaded, checkpoint = load_policy(path)
    assert checkpoint["env_id"] == "BabyAI-GoToRedBall-v0" and checkpoint["history"] == [{"update": 1}]
    with torch.no_grad():
        assert torch.equal(loaded(images(2), MISSIONS)[0], policy(images(2), MISSIONS)[0])


@pytest.mark.parametrize("skip", [True, False])
def test_the_heads_read_the_memory_output_plus_the_features_with_memory_skip(skip):
    policy = Policy(PolicyConfig(vocab_size=35, channels=16, memory_skip=skip)).eval()
    seen = {}
    policy.actor.register_forward_pre_hook(lambda module, args: seen.update(head_input=args[0]))
    hidden = torch.randn(2, 16)
    with torch.no_grad():
        policy(images(2), MISSIONS, hidden)
        features = policy.encode(images(2), MISSIONS)
        memory_out = policy.memory(features[:, None], hidden[None])[0][:, 0]
    torch.testing.assert_close(seen["head_input"], memory_out + features if skip else memory_out)


def test_format_1_checkpoints_load_as_they_were_built(tmp_path):
    """Before format 2, FiLM always acted after the second conv and the heads read the memory output alone."""
    policy = Policy(PolicyConfig(vocab_size=35, channels=16, film_position="output", memory_skip=False)).eval()
    path = tmp_path / "old.pt"
    save_policy(path, policy, "BabyAI-GoToRedBall-v0", ["<pad>", "<unk>"])
    checkpoint = torch.load(path, weights_only=True)
    # the layout of versions 1 and 2: a "kind" marker and the version as "format"
    checkpoint.update(kind="filmkit-rl-policy", format=1)
    del checkpoint["format_version"]
    del checkpoint["config"]["film_position"]
    del checkpoint["config"]["memory_skip"]
    torch.save(checkpoint, path)
    loaded, _ = load_policy(path)
    assert loaded.config.film_position == "output" and not loaded.config.memory_skip
    with torch.no_grad():
        assert torch.equal(loaded(images(2), MISSIONS)[0], policy(images(2), MISSIONS)[0])


def test_other_files_are_refused_and_the_two_checkpoint_kinds_name_each_other(tmp_path):
    from filmkit.vqa import FiLMVQA, build_config, load_checkpoint, save_checkpoint

    other = tmp_path / "model.pt"
    torch.save({"kind": "filmkit-vqa", "state_dict": {}}, other)
    with pytest.raises(ValueError, match="not an RL policy checkpoint"):
        load_policy(other)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="notes.txt: not a filmkit checkpoint") as refused:
        load_policy(text)
    assert "weights_only" not in str(refused.value)  # never the advice to unpickle
    vqa = save_checkpoint(tmp_path / "vqa.pt", FiLMVQA(build_config("cpu", vocab_size=8, num_answers=4)))
    with pytest.raises(ValueError, match=r"vqa.pt: a VQA model checkpoint, not an RL policy checkpoint"):
        load_policy(vqa)
    policy = tmp_path / "policy.pt"
    save_policy(policy, Policy(PolicyConfig(vocab_size=35, channels=16)), "BabyAI-GoToRedBall-v0", ["<pad>"])
    with pytest.raises(ValueError, match=r"policy.pt: an RL policy checkpoint, not a VQA model checkpoint"):
        load_checkpoint(policy)


@pytest.mark.parametrize("length", [1, 3])
def test_replayed_stretches_reproduce_acting_step_by_step(length):
    """PPO's update replays stretches of steps from the recorded memory; it must see what acting saw."""
    policy = Policy(PolicyConfig(vocab_size=35, channels=16, memory=True)).eval()
    steps, envs = 6, 2
    observed = images(steps * envs).view(steps, envs, 7, 7, 3)
    goals = MISSIONS[None].expand(steps, -1, -1)
    dones = torch.zeros(steps, envs)
    dones[1, 0] = dones[4, 1] = 1  # episodes end mid-stretch: the memory restarts from zeros
    hidden, recorded, acted = policy.initial_state(envs), [], []
    with torch.no_grad():
        for step in range(steps):
            recorded.append(hidden)
            logits, _, hidden = policy(observed[step], goals[step], hidden)
            hidden = hidden * (1 - dones[step])[:, None]
            acted.append(logits)
        for start in range(0, steps, length):
            stretch = slice(start, start + length)
            logits, _ = policy.forward_sequences(observed[stretch], goals[stretch], recorded[start], dones[stretch])
            torch.testing.assert_close(logits, torch.stack(acted[stretch]), rtol=0, atol=1e-6)


def test_gradients_flow_back_through_every_step_of_a_stretch():
    policy = Policy(PolicyConfig(vocab_size=35, channels=16, memory=True))
    first = images(2, seed=1)[None].repeat(3, 1, 1, 1, 1)
    hidden = policy.initial_state(2).requires_grad_(True)
    logits, _ = policy.forward_sequences(first, MISSIONS[None].expand(3, -1, -1), hidden, torch.zeros(3, 2))
    logits[-1].sum().backward()  # the last step's output depends on the state before the first step
    assert hidden.grad is not None and hidden.grad.abs().sum() > 0
