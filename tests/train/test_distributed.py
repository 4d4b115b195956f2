"""Two CPU processes train data-parallel (gloo), as torchrun would start them."""

import multiprocessing
import os
import socket

import torch
from train_fixtures import tiny_cache, tiny_config


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank_main(rank: int, port: int, cache, run_dir, out_dir) -> None:
    from filmkit.train.loop import Trainer

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2"
    )
    torch.set_num_threads(1)
    seen = []
    trainer = Trainer(
        tiny_config(max_steps=4, val_every=100),
        cache,
        run_dir,
        on_batch=lambda batch: seen.append(batch["indices"].tolist()),
    )
    trainer.run()
    # The test, not the trainer, writes what each rank saw and ended with.
    parameters = {name: value.detach() for name, value in trainer.model.named_parameters()}
    torch.save({"seen": seen, "parameters": parameters}, out_dir / f"rank{rank}.pt")


def test_two_processes_train_on_disjoint_shards_and_stay_equal(tmp_path):
    cache = tiny_cache(tmp_path)
    context = multiprocessing.get_context("spawn")
    port = _free_port()
    ranks = [context.Process(target=_rank_main, args=(r, port, cache, tmp_path / "run", tmp_path)) for r in (0, 1)]
    for process in ranks:
        process.start()
    for process in ranks:
        process.join(timeout=180)
    assert [p.exitcode for p in ranks] == [0, 0]
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    # 15 training questions, batch 4, 2 ranks: each rank has 7 questions (2 batches) per epoch.
    for epoch in range(2):
        first, second = (set(sum(result["seen"][2 * epoch : 2 * epoch + 2], [])) for result in results)
        assert len(first) == len(second) == 7
        assert not first & second
    # Parameters agree (BatchNorm running statistics are per rank unless sync_batchnorm, a CUDA feature).
    for name, value in results[0]["parameters"].items():
        torch.testing.assert_close(value, results[1]["parameters"][name], rtol=0, atol=1e-6, msg=name)
    assert (tmp_path / "run" / "last.pt").exists() and not (tmp_path / "rank1").exists()


# Without batch norm, dropout or augmentation, data-parallel training is exactly large-batch training.
PLAIN_MODEL = {"stem_batchnorm": False, "block_batchnorm": False, "classifier_batchnorm": False, "block_dropout": 0.0}


def _plain_config():
    config = tiny_config(max_steps=4, val_every=100, augment_shift=0, lr=3e-3)
    config.model.update(PLAIN_MODEL)
    return config


def _plain_rank_main(rank: int, port: int, cache, run_dir, out_dir) -> None:
    from filmkit.train.loop import Trainer

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2"
    )
    torch.set_num_threads(1)
    seen = []
    trainer = Trainer(_plain_config(), cache, run_dir, on_batch=lambda batch: seen.append(batch["indices"].tolist()))
    initial = {name: value.detach().clone() for name, value in trainer.model.state_dict().items()}
    trainer.run()
    final = {name: value.detach() for name, value in trainer.model.state_dict().items()}
    record = {"seen": seen, "initial": initial, "final": final, "model": trainer.model_config.to_dict()}
    torch.save(record, out_dir / f"plain{rank}.pt")


def test_two_processes_on_half_batches_train_as_one_process_on_the_whole_batch(tmp_path):
    from filmkit.data.dataset import CachedSplit
    from filmkit.train.loop import make_adam
    from filmkit.vqa import FiLMVQA, FiLMVQAConfig

    cache = tiny_cache(tmp_path)
    context = multiprocessing.get_context("spawn")
    port = _free_port()
    arguments = [(rank, port, cache, tmp_path / "run", tmp_path) for rank in (0, 1)]
    ranks = [context.Process(target=_plain_rank_main, args=args) for args in arguments]
    for process in ranks:
        process.start()
    for process in ranks:
        process.join(timeout=180)
    assert [p.exitcode for p in ranks] == [0, 0]
    results = [torch.load(tmp_path / f"plain{r}.pt", weights_only=True) for r in (0, 1)]

    # One process, the same start, each step on both ranks' batches together.
    torch.set_num_threads(1)
    model = FiLMVQA(FiLMVQAConfig.from_dict(results[0]["model"]))
    model.load_state_dict(results[0]["initial"])
    config = _plain_config()
    optimizer = make_adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    split = CachedSplit(cache, "train")
    for first, second in zip(results[0]["seen"], results[1]["seen"], strict=True):
        batch = split[first + second]
        loss = torch.nn.functional.cross_entropy(model(batch["images"], batch["questions"]), batch["answers"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    changed = False
    for name, value in model.state_dict().items():
        torch.testing.assert_close(results[0]["final"][name], value, rtol=0, atol=2e-5, msg=name)
        changed |= not torch.equal(value, results[0]["initial"][name])
    assert changed  # the steps did train


class _StopBeforeStep3(Exception):
    pass


def _resume_rank_main(rank: int, port: int, cache, run_dir, out_dir, mode: str) -> None:
    """mode: "straight" trains 4 steps; "stopped" dies before step 3 (last.pt holds step 2); "resumed" finishes."""
    from filmkit.train.loop import Trainer

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2"
    )
    torch.set_num_threads(1)
    seen = []

    def on_batch(batch):
        seen.append(batch["indices"].tolist())
        if mode == "stopped" and len(seen) == 3:
            raise _StopBeforeStep3()

    config = tiny_config(max_steps=4, val_every=100, checkpoint_every=2)
    if mode == "resumed":
        trainer = Trainer.resume(run_dir, on_batch=on_batch)
    else:
        trainer = Trainer(config, cache, run_dir, on_batch=on_batch)
    try:
        trainer.run()
    except _StopBeforeStep3:
        from filmkit.train import distributed

        distributed.teardown(trainer.context)
    parameters = {name: value.detach() for name, value in trainer.model.named_parameters()}
    torch.save({"seen": seen, "parameters": parameters}, out_dir / f"{mode}{rank}.pt")


def _launch(mode: str, cache, run_dir, out_dir) -> list[dict]:
    context = multiprocessing.get_context("spawn")
    port = _free_port()
    ranks = [
        context.Process(target=_resume_rank_main, args=(rank, port, cache, run_dir, out_dir, mode)) for rank in (0, 1)
    ]
    for process in ranks:
        process.start()
    for process in ranks:
        process.join(timeout=180)
    assert [p.exitcode for p in ranks] == [0, 0], mode
    return [torch.load(out_dir / f"{mode}{rank}.pt", weights_only=True) for rank in (0, 1)]


def test_a_data_parallel_run_resumes_where_it_stopped_with_the_same_weights(tmp_path):
    cache = tiny_cache(tmp_path)
    straight = _launch("straight", cache, tmp_path / "straight", tmp_path)
    stopped = _launch("stopped", cache, tmp_path / "stopped", tmp_path)
    resumed = _launch("resumed", cache, tmp_path / "stopped", tmp_path)
    for rank in (0, 1):
        # each rank resumes its own shard at the batch after the checkpoint: the batches of the straight run
        assert stopped[rank]["seen"][:2] + resumed[rank]["seen"] == straight[rank]["seen"]
        for name, value in straight[rank]["parameters"].items():
            torch.testing.assert_close(resumed[rank]["parameters"][name], value, rtol=0, atol=1e-6, msg=name)
