"""The training loop: crash-safe checkpoints, exact resume, validation, mixed precision, data parallel.

A run directory holds ``config.yaml`` (the resolved settings), ``metrics.jsonl`` (one JSON record per log line or
validation), ``last.pt`` (everything needed to continue: weights, optimizer, scheduler, RNG states and the
position in the data), ``best.pt`` (the best model on the validation subset) and ``curves.png`` (loss and accuracy
against steps, redrawn at each validation).
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
import yaml

from filmkit.atomic import atomic_output, is_taken
from filmkit.data.cache import questions_file, read_manifest
from filmkit.data.dataset import CachedSplit, make_loader, to_unit_range
from filmkit.data.locate import is_cache, locate_cache
from filmkit.data.scene_maps import SCENE_MAPS
from filmkit.train import distributed
from filmkit.train.augment import random_shift
from filmkit.train.config import TrainConfig, apply_overrides, model_config, preset_config
from filmkit.train.denormals import flush_denormals
from filmkit.train.devices import autocast_context, resolve_device
from filmkit.train.evaluate import evaluate
from filmkit.train.interrupt import StopRequests, TrainingInterrupted
from filmkit.train.scene_supervision import ATTRIBUTES, scene_loss, split_scenes, split_targets
from filmkit.vqa import load_checkpoint, save_checkpoint
from filmkit.vqa.baselines import build_model
from filmkit.vqa.checkpoint import read_checkpoint_file

LAST, BEST, CURVES = "last.pt", "best.pt", "curves.png"
# What a run writes before its first checkpoint (and speedrun-plan.json, which a speedrun adds): a folder holding
# only these, and no checkpoint, is a run that failed to start, and a new run takes it over.
START_FILES = ("config.yaml", "metrics.jsonl", CURVES, "tensorboard", "speedrun-plan.json")
# With fit_steps_to_time, the speed is measured over these steps (the first ones warm the allocator up), then
# max_steps is fixed; within a warm-up at least this long the learning rate so far did not depend on max_steps.
SPEED_STEPS = (20, 300)
# Share of the remaining time left for validations and checkpoints when max_steps is fitted (measured: 2-4%).
TIME_OVERHEAD = 0.05
# What `--resume` may change: where the run computes, how often it reports and saves, when it stops. Every other
# setting shapes the data order or the optimisation (a new batch size moves the saved position in the data, a new
# max_steps makes the learning rate jump), so a run resumed with it would be one no config describes.
RESUMABLE_SETTINGS = (
    "device",
    "compile",
    "num_workers",
    "log_every",
    "val_every",
    "checkpoint_every",
    "curves",
    "early_stopping",
    "time_limit_minutes",
)


class TrainingError(ValueError):
    """A run that cannot start or go on; the message says why and what to do."""


@dataclass
class StepReport:
    """What the loop reports after each step, for progress bars."""

    step: int
    max_steps: int
    loss: float
    accuracy: float
    samples_per_s: float
    val_accuracy: float | None
    best_val_accuracy: float | None


@dataclass
class RunResult:
    run_dir: Path
    steps: int
    best_val_accuracy: float | None
    final_val_accuracy: float | None
    seconds: float
    stopped_early: bool


def _is_temporary(path: Path) -> bool:
    """A file `filmkit.atomic.atomic_output` was writing when its process was killed (``.NAME.PID.tmp``)."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def make_adam(parameters, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam with torch's fused implementation where this torch has it for the parameters' device.

    Same update rule, one pass over the parameters instead of several: on the CPU about 10x faster a step for the
    paper model's 59 million parameters (docs/performance.md). Older torch builds fall back to the default.

    >>> make_adam(torch.nn.Linear(2, 2).parameters(), lr=1e-3, weight_decay=0.0).defaults["lr"]
    0.001
    """
    parameters = list(parameters)
    try:
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, ValueError):  # torch < 2.4 fuses Adam on CUDA only
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)


def lr_factor(step: int, config: TrainConfig, max_steps: int) -> float:
    """Multiplier of the base learning rate at ``step``: linear warmup, then the chosen schedule.

    A run trained longer (`Trainer.extend`) decays from the factor it had reached when it was extended, so the
    learning rate goes on without a jump.
    """
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return 1.0
    start, top = config.warmup_steps, 1.0
    if config.extended_at_step is not None and step >= config.extended_at_step:
        start, top = config.extended_at_step, config.extended_lr_factor
    progress = (step - start) / max(1, max_steps - start)
    floor = config.min_lr_ratio
    if config.schedule == "cosine":
        return floor + (top - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return floor + (top - floor) * max(0.0, 1 - progress)


class Trainer:
    """One training run. ``Trainer(config, data, run_dir).run()``; ``Trainer.resume(run_dir).run()`` continues.

    Example::

        config = TrainConfig(preset="cpu", max_steps=200)
        result = Trainer(config, "data/tiny", "runs/tiny").run()
    """

    def __init__(
        self,
        config: TrainConfig,
        data: str | Path,
        run_dir: str | Path,
        *,
        overwrite: bool = False,
        on_progress: Callable[[StepReport], None] | None = None,
        on_batch: Callable[[dict], None] | None = None,
        resume_state: dict | None = None,
        cache_workers: int = 2,
    ):
        self.config = config
        self.cache_workers = cache_workers  # processes that decode images when ``data`` must be cached first
        self.run_dir = Path(run_dir)
        self.on_progress = on_progress
        self.on_batch = on_batch
        try:
            self.device = resolve_device(config.device)
            autocast_context(self.device, config.precision)  # fp16 on a CPU fails here, before any work
        except ValueError as error:
            raise TrainingError(str(error)) from None
        flush_denormals()  # best effort here (threads started earlier keep denormals); the CLI sets it at start
        self.context = distributed.setup(self.device.type)
        if self.context.distributed and self.device.type == "cuda":
            self.device = torch.device("cuda", self.context.local_rank)
            torch.cuda.set_device(self.device)
        if config.sync_batchnorm and self.device.type != "cuda":
            raise TrainingError("sync_batchnorm needs CUDA devices (torch's SyncBatchNorm has no CPU version)")
        if resume_state is None and self.context.is_main:
            self._claim_run_dir(overwrite)
        torch.manual_seed(config.seed)

        self.cache = self._locate_data(data)
        grouped = config.questions_per_image > 1
        # Pixels travel to the device as uint8 and become floats there: a quarter of the bytes to copy to a GPU.
        self.train_set = CachedSplit(self.cache, config.train_split, unique_images=grouped, pixels_as_uint8=True)
        self.vocab = self.train_set.vocab
        if not self.train_set.has_answers:
            raise TrainingError(f"{self.cache}: split {config.train_split!r} lacks answers; it cannot be trained on")
        self.val_set = CachedSplit(self.cache, config.val_split, self.vocab)
        if config.init_checkpoint:
            model = self._initial_model(Path(config.init_checkpoint))
            self.model_config = model.config
        else:
            self.model_config = model_config(
                config,
                len(self.vocab.question_token_to_idx),
                len(self.vocab.answer_token_to_idx),
                self.train_set.image_shape,
            )
            model = build_model(self.model_config)
        if config.freeze == "visual":
            if not hasattr(model, "network"):
                raise TrainingError("freeze = 'visual' needs a FiLM model (its FiLMed network is what stays fixed)")
            model.network.requires_grad_(False)
        self.model = model.to(self.device)
        if config.scene_loss_weight > 0:
            map_size = self.model_config.feature_map_size
            try:
                self.train_set.scene_targets = split_targets(self.cache, config.train_split, map_size)
            except ValueError as error:
                raise TrainingError(str(error)) from None
        self._scene_tally = torch.zeros(len(ATTRIBUTES) + 1, dtype=torch.long, device=self.device)
        self._window = torch.zeros(4, dtype=torch.float64, device=self.device)  # see _train_step
        # Reading a value from the device is free on the CPU and a wait (host sync) on an accelerator: the loss and
        # accuracy are read there at log steps, and the finiteness check before each save, not at every step.
        self._reads_each_step = self.device.type == "cpu"
        if config.sync_batchnorm and self.context.distributed:
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.optimizer = make_adam(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.loader, self.sampler = make_loader(
            self.train_set,
            config.batch_size,
            seed=config.seed,
            rank=self.context.rank,
            world_size=self.context.world_size,
            equal_shards=self.context.distributed,
            num_workers=config.num_workers,
            pin_memory=self.device.type == "cuda",
            questions_per_image=config.questions_per_image,
            first_epoch_key=self._curriculum_key(),
        )
        batches = self.sampler.batches_per_epoch()
        self.max_steps = config.max_steps or max(1, math.ceil(config.epochs * batches))
        if config.fit_steps_to_time and config.max_steps is None:
            self.max_steps = 10**9  # until the first steps have been timed (see _fit_steps_to_time)
        self._speed_clock: tuple[int, float] | None = None
        self._refit_clock: tuple[int, float] | None = None  # (step, time) the refits measure speed from
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, config, self.max_steps)
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16")
        # Validation subset: the same questions every time, so numbers are comparable across steps.
        generator = torch.Generator().manual_seed(config.seed)
        subset = torch.randperm(len(self.val_set), generator=generator)[: config.val_subset]
        self.val_subset = sorted(subset.tolist())

        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.elapsed_before = 0.0  # seconds an interrupted run had trained before it was resumed
        self.samples_seen = 0  # questions trained on (grouped batches can be short of batch_size; ranks alike)
        self.best_val_accuracy: float | None = None
        self.validations_without_gain = 0
        if resume_state is not None:
            self._load_state(resume_state)
            self._forget_metrics_after(self.step)
        self.forward_model = self._wrap_model()

    # ---- setup -------------------------------------------------------------------------------------------
    def _curriculum_key(self):
        """Per training question, how hard the curriculum counts it (None without a curriculum)."""
        kind = self.config.curriculum
        if kind == "none":
            return None
        if kind == "objects":
            try:
                scenes = split_scenes(self.cache, self.config.train_split, why="curriculum = 'objects'")
            except ValueError as error:
                raise TrainingError(str(error)) from None
            objects = np.array([len(scene.get("objects", [])) for scene in scenes])
            return objects[self.train_set.arrays.image_rows]
        with h5py.File(questions_file(self.cache, self.config.train_split), "r") as handle:
            if "programs" not in handle:
                raise TrainingError(f"curriculum = 'program' needs programs, and {self.cache} has none")
            return (handle["programs"][()] != 0).sum(axis=1)

    def _claim_run_dir(self, overwrite: bool) -> None:
        """Start in ``run_dir``: free, left by a run that failed before its first checkpoint, or ``overwrite``.

        Only what a run writes is deleted there; anything else in the folder stays.
        """
        if not overwrite and any((self.run_dir / name).exists() for name in (LAST, BEST)):
            raise TrainingError(
                f"{self.run_dir} already holds a run; continue it with --resume {self.run_dir}, "
                "or pass --overwrite to start again there"
            )
        if not overwrite and is_taken(self.run_dir):
            leftovers = [p for p in self.run_dir.iterdir() if p.name not in START_FILES and not _is_temporary(p)]
            if leftovers:
                raise TrainingError(
                    f"{self.run_dir} already exists and holds files that are not a run (such as {leftovers[0].name}); "
                    "pass --overwrite to train there anyway, or choose another run directory"
                )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for name in (LAST, BEST, CURVES, "metrics.jsonl", "config.yaml"):
            (self.run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(self.run_dir / "tensorboard", ignore_errors=True)

    def _locate_data(self, data: str | Path) -> Path:
        data = Path(data)
        preset = preset_config(self.config)
        if is_cache(data):
            manifest = read_manifest(data) or {}
            kind = manifest.get("image_kind", "features")
            if (kind == "pixels") != (preset.input_kind == "pixels"):
                raise TrainingError(
                    f"{data} holds {kind}, but preset {self.config.preset!r} reads {preset.input_kind}; "
                    "choose a matching preset (paper-pixels or cpu for pixels, paper for resnet101 features, "
                    f"{SCENE_MAPS} for scene maps)"
                )
            return data
        # The scene-maps preset reads a scene-maps cache, which filmkit can build from the scene files itself.
        features = SCENE_MAPS if self.config.preset == SCENE_MAPS else None
        if preset.input_kind != "pixels" and features is None:
            raise TrainingError(
                f"preset {self.config.preset!r} reads ResNet features: preprocess {data} with "
                "`filmkit preprocess --features resnet101 --weights FILE` and pass the cache"
            )
        if not self.context.is_main:
            distributed.barrier(self.context)  # the main process builds the cache first
        size = (preset.image_width, preset.image_height)
        cache = locate_cache(data, size, workers=self.cache_workers, features=features)
        if self.context.is_main:
            distributed.barrier(self.context)
        return cache

    def _initial_model(self, path: Path):
        """The model of ``init_checkpoint``, checked against the data it is to be trained on."""
        model = load_checkpoint(path).model
        found = {
            "question vocabulary": (model.config.vocab_size, len(self.vocab.question_token_to_idx)),
            "answers": (model.config.num_answers, len(self.vocab.answer_token_to_idx)),
            "image shape": (
                (model.config.in_channels, model.config.image_height, model.config.image_width),
                self.train_set.image_shape,
            ),
        }
        for what, (in_model, in_data) in found.items():
            if in_model != in_data:
                raise TrainingError(f"init_checkpoint {path}: its {what} is {in_model}, the data's {in_data}")
        return model

    def _wrap_model(self):
        model = self.model
        if self.config.compile:
            # In place (the weights keep their names in checkpoints), and for FiLM only the visual network, where
            # batch norm, FiLM and ReLU fuse: torch.compile cannot trace the question encoder's GRU.
            getattr(model, "network", model).compile()
        if self.context.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        return model

    # ---- checkpoints -------------------------------------------------------------------------------------
    def _state(self) -> dict:
        return {
            "train_config": self.config.to_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "position": {"step": self.step, "epoch": self.epoch, "batch": self.batch_in_epoch},
            "elapsed_s": self._elapsed(),
            "samples_seen": self.samples_seen,
            "best_val_accuracy": self.best_val_accuracy,
            "validations_without_gain": self.validations_without_gain,
        }

    def _load_state(self, payload: dict) -> None:
        self.model.load_state_dict(payload["state_dict"])
        state = payload["extra"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        position = state["position"]
        self.step, self.epoch, self.batch_in_epoch = position["step"], position["epoch"], position["batch"]
        self.elapsed_before = state.get("elapsed_s", 0.0)
        self.samples_seen = state.get("samples_seen", self.step * self.config.batch_size)
        self.best_val_accuracy = state["best_val_accuracy"]
        self.validations_without_gain = state["validations_without_gain"]

    def _metadata(self, val_accuracy: float | None) -> dict:
        manifest = read_manifest(self.cache) or {}
        return {
            "kind": self.config.architecture,
            "image_kind": manifest.get("image_kind", "features"),
            "resolution": [self.model_config.image_width, self.model_config.image_height],
            "cache": str(self.cache.resolve()),
            "step": self.step,
            "epoch": self.epoch,
            "val_accuracy": val_accuracy,
            "best_val_accuracy": self.best_val_accuracy,
        }

    def _save(self, name: str, val_accuracy: float | None = None) -> None:
        if not self._reads_each_step:  # never save weights that a non-finite step reached
            self._stop_if_not_finite(self._window[3].item() == 0, f"non-finite by step {self.step}")
        if self.context.is_main:
            save_checkpoint(
                self.run_dir / name,
                self.model,
                vocab=self.vocab.to_json(),
                metadata=self._metadata(val_accuracy),
                extra=self._state(),
            )

    # ---- logging -----------------------------------------------------------------------------------------
    def _log(self, record: dict) -> None:
        if not self.context.is_main:
            return
        with open(self.run_dir / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._tensorboard is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "step":
                    self._tensorboard.add_scalar(key, value, record["step"])

    def _forget_metrics_after(self, step: int) -> None:
        """Drop records a killed run logged after its last checkpoint: the resumed run logs those steps again."""
        path = self.run_dir / "metrics.jsonl"
        if not self.context.is_main or not path.exists():
            return
        kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        with atomic_output(path, "w") as handle:
            handle.writelines(line + "\n" for line in kept)

    def _open_tensorboard(self):
        if not self.context.is_main:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # TensorBoard is optional
            return None
        return SummaryWriter(self.run_dir / "tensorboard")

    # ---- the loop ----------------------------------------------------------------------------------------
    def validate(self, indices: list[int] | None) -> float | None:
        """Accuracy on the validation split (or the given indices of it), summed over all processes."""
        chosen = list(range(len(self.val_set))) if indices is None else indices
        result = evaluate(
            self.model,
            self.val_set,
            indices=chosen[self.context.rank :: self.context.world_size],
            batch_size=max(256, self.config.batch_size),
            device=self.device,
            precision=self.config.precision,
        )
        counts = torch.from_numpy(result.counts_vector()).to(self.device)
        return result.with_counts(distributed.all_sum(counts, self.context)).accuracy

    def run(self) -> RunResult:
        """Train to ``max_steps`` (or the time limit, or early stopping), then evaluate the full split."""
        config = self.config
        if self.context.is_main:
            with atomic_output(self.run_dir / "config.yaml", "w") as handle:
                yaml.safe_dump({**config.to_dict(), "resolved_model": self.model_config.to_dict()}, handle)
        self._tensorboard = self._open_tensorboard()
        self.model.train()
        # Time counts across resumes: the time limit is the whole run's and logged minutes continue.
        started = self._started = time.perf_counter() - self.elapsed_before
        with StopRequests() as stops:
            stopped_early, stop_signal = self._train_until_done(started, stops)
        if stop_signal is not None:
            self._save(LAST)
            self._close()
            raise TrainingInterrupted(stop_signal, self.step, self.run_dir)
        if self.step % config.val_every != 0:  # the final weights were not validated yet
            self._after_validation(self.validate(self.val_subset))
        final_accuracy = self.validate(None)
        self._log(
            {
                "step": self.step,
                "kind": "final_val",
                "val_accuracy": final_accuracy,
                "val_questions": len(self.val_set),
                "elapsed_s": time.perf_counter() - started,
            }
        )
        self._save(LAST, final_accuracy)
        self._close()
        return RunResult(
            self.run_dir,
            self.step,
            self.best_val_accuracy,
            final_accuracy,
            time.perf_counter() - started,
            stopped_early,
        )

    def _train_until_done(self, started: float, stops: StopRequests) -> tuple[bool, int | None]:
        """The steps, to max_steps, the time limit, early stopping or a stop request (Ctrl-C, SIGTERM).

        Returns whether it stopped early (time or early stopping) and the signal that stopped it, if one did.
        """
        config = self.config
        window_samples, window_start = 0, time.perf_counter()
        read_every = 1 if self._reads_each_step else config.log_every  # see __init__
        shown_loss, shown_accuracy = float("nan"), float("nan")
        stopped_early = self._out_of_time()  # a resumed run whose time was already spent trains no further
        val_accuracy = None
        while self.step < self.max_steps and not stopped_early:
            self.sampler.set_epoch(self.epoch, start_batch=self.batch_in_epoch)
            for batch in self.loader:
                self._train_step(batch)
                self.step += 1
                self.batch_in_epoch += 1
                if config.fit_steps_to_time and config.max_steps is None:
                    self._fit_steps_to_time()
                size = len(batch["answers"])  # a grouped batch can be a few questions short of batch_size
                window_samples += size * self.context.world_size
                self.samples_seen += size * self.context.world_size
                elapsed = time.perf_counter() - window_start
                rate = window_samples / elapsed if elapsed > 0 else 0.0
                log_now = self.step % config.log_every == 0 or self.step == self.max_steps
                if log_now or self.step % read_every == 0:
                    shown_loss, shown_accuracy = self._read_window()
                if log_now:
                    self._log(
                        {
                            "step": self.step,
                            "epoch": self.epoch,
                            "loss": shown_loss,
                            "accuracy": shown_accuracy,
                            "lr": self.scheduler.get_last_lr()[0],
                            "samples_per_s": rate,
                            "elapsed_s": time.perf_counter() - started,
                            **self._scene_record(),
                        }
                    )
                    self._window.zero_()
                    window_samples, window_start = 0, time.perf_counter()
                if self.step % config.val_every == 0:
                    if config.steps_fitted:
                        self._refit_steps_to_time()  # before the checkpoint, which records the new length
                    val_accuracy = self.validate(self.val_subset)
                    stopped_early = self._after_validation(val_accuracy)
                elif self.step % config.checkpoint_every == 0:
                    self._save(LAST)
                if self.on_progress and self.context.is_main:
                    self.on_progress(
                        StepReport(
                            self.step,
                            self.max_steps,
                            shown_loss,
                            shown_accuracy,
                            rate,
                            val_accuracy,
                            self.best_val_accuracy,
                        )
                    )
                # Every process stops at the same step, whichever of them the signal reached.
                if not distributed.all_agree(stops.signum is None, self.context, self.device):
                    return stopped_early, stops.signum or signal.SIGINT
                if self._out_of_time():
                    stopped_early = True
                if self.step >= self.max_steps or stopped_early:
                    return stopped_early, None
            self.epoch += 1
            self.batch_in_epoch = 0
        return stopped_early, None

    def _scene_record(self) -> dict:
        """Training accuracy by attribute of the scene head since the last log line (empty without the head)."""
        if self.config.scene_loss_weight <= 0:
            return {}
        *correct, found = self._scene_tally.tolist()
        self._scene_tally.zero_()
        accuracy = {name: right / max(found, 1) for name, right in zip(ATTRIBUTES, correct, strict=True)}
        return {"scene_accuracy": accuracy}

    def _close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()
        distributed.barrier(self.context)
        distributed.teardown(self.context)

    def _fit_steps_to_time(self) -> None:
        """Fix max_steps so that the schedule ends with the time limit, from the speed of SPEED_STEPS steps.

        Recorded in the config (and so in every checkpoint): a resumed run keeps the same schedule.
        """
        first, last = SPEED_STEPS
        if self._speed_clock is None:
            if self.step >= first:
                self._speed_clock = (self.step, time.perf_counter())
            return
        start_step, start_time = self._speed_clock
        if self.step - start_step < last - first:
            return
        seconds_per_step = (time.perf_counter() - start_time) / (self.step - start_step)
        self._set_steps_for_remaining_time(seconds_per_step, overhead=TIME_OVERHEAD)
        self.config.steps_fitted = True
        self._refit_clock = (self.step, time.perf_counter())

    def _refit_steps_to_time(self) -> None:
        """At a validation, size the rest of the schedule to the speed of every step since the first fit.

        Steps 20-300 are a poor sample of a whole run: they skip the validations and checkpoints, and a machine's
        speed drifts (the hour-long runs ended their fitted schedules after 46 and 53 of their 60 minutes). The time
        per step since the first fit, validations included, says how many steps the remaining time holds; the
        cosine then ends with the budget. A resumed run starts a new measurement at its first validation.
        """
        now = time.perf_counter()
        if self._refit_clock is None:
            self._refit_clock = (self.step, now)
            return
        start_step, start_time = self._refit_clock
        if self.step <= start_step:
            return
        # validations and checkpoints are inside this measurement, so no share of the time is set aside for them
        self._set_steps_for_remaining_time((now - start_time) / (self.step - start_step), overhead=0.0)

    def _set_steps_for_remaining_time(self, seconds_per_step: float, overhead: float) -> None:
        """End the schedule where the time limit's remaining seconds, less ``overhead`` of them, run out."""
        remaining = (60 * self.config.time_limit_minutes - self._elapsed()) * (1 - overhead)
        self.max_steps = self.config.max_steps = self.step + max(1, int(remaining / seconds_per_step))

    def _out_of_time(self) -> bool:
        limit = self.config.time_limit_minutes
        return limit is not None and self._elapsed() > 60 * limit

    def _elapsed(self) -> float:
        started = getattr(self, "_started", None)
        return self.elapsed_before if started is None else time.perf_counter() - started

    def _after_validation(self, accuracy: float | None) -> bool:
        """Record a validation on the subset, keep the best model, and say whether early stopping says stop."""
        improved = accuracy is not None and (self.best_val_accuracy is None or accuracy > self.best_val_accuracy)
        if improved:
            self.best_val_accuracy = accuracy
            self.validations_without_gain = 0
            self._save(BEST, accuracy)
        else:
            self.validations_without_gain += 1
        self._save(LAST, accuracy)
        self._log(
            {
                "step": self.step,
                "kind": "val_subset",
                "val_accuracy": accuracy,
                "best_val_accuracy": self.best_val_accuracy,
                "elapsed_s": self._elapsed(),
            }
        )
        if self.config.curves and self.context.is_main:
            from filmkit.analysis.report import plot_learning_curves  # matplotlib: imported at the first validation

            plot_learning_curves(self.run_dir / "metrics.jsonl", self.run_dir / CURVES)
        patience = self.config.early_stopping
        return patience is not None and self.validations_without_gain >= patience

    def _train_step(self, batch: dict) -> None:
        if self.config.freeze == "visual":
            self.model.network.eval()  # frozen means its batch-norm statistics too (validation sets train() back)
        images = batch["images"].to(self.device, non_blocking=True)
        if images.dtype == torch.uint8:
            images = to_unit_range(images)
        images = random_shift(images, self.config.augment_shift)
        questions = batch["questions"].to(self.device, non_blocking=True)
        answers = batch["answers"].to(self.device, non_blocking=True)
        shared = {}  # a grouped batch holds each image once; image_index says which one each question is about
        if "image_index" in batch:
            shared["image_index"] = batch["image_index"].to(self.device, non_blocking=True)
        if self.on_batch is not None:
            self.on_batch(batch)
        scene_weight = self.config.scene_loss_weight
        with autocast_context(self.device, self.config.precision):
            if scene_weight > 0:
                logits, scene_logits = self.forward_model(images, questions, with_scene=True, **shared)
                targets = batch["scene_targets"].to(self.device, non_blocking=True).long()
                scene, scene_correct, scene_found = scene_loss(scene_logits, targets)
                self._scene_tally += torch.cat([scene_correct, scene_found.view(1)])
            else:
                logits = self.forward_model(images, questions, **shared)
            loss = F.cross_entropy(logits.float(), answers)
            total = loss + scene_weight * scene if scene_weight > 0 else loss
        if self._reads_each_step:  # stop before a non-finite loss reaches the weights
            self._stop_if_not_finite(bool(torch.isfinite(loss)), f"{loss.item()} at step {self.step + 1}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.config.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        # loss sum, correct answers, questions and non-finite losses since the last log line, on the device
        correct = (logits.argmax(dim=1) == answers).sum()
        size = answers.new_tensor(len(answers), dtype=torch.float64)
        step = torch.stack([loss.detach().double() * size, correct.double(), size, (~torch.isfinite(loss)).double()])
        self._window += step

    def _read_window(self) -> tuple[float, float]:
        """Mean loss and accuracy since the last log line (one read of the device); stops on a non-finite loss."""
        loss_sum, correct, count, nonfinite = self._window.tolist()
        self._stop_if_not_finite(nonfinite == 0, f"non-finite by step {self.step}")
        return loss_sum / max(count, 1), correct / max(count, 1)

    def _stop_if_not_finite(self, finite: bool, what: str) -> None:
        """A TrainingError that names the last good checkpoint unless every rank's loss was finite."""
        if distributed.all_agree(finite, self.context, self.device):
            return
        last = self.run_dir / LAST
        where = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written yet"
        raise TrainingError(
            f"the loss became {what}; training stopped and {where}. "
            "Try a lower learning rate, --set grad_clip=1.0, or fp32."
        )

    # ---- resume ------------------------------------------------------------------------------------------
    @classmethod
    def resume(cls, run_dir: str | Path, overrides: list[str] = (), *, more_steps: int = 0, **kwargs) -> Trainer:
        """Continue the run in ``run_dir`` from its last checkpoint, with the same data order and RNG.

        ``overrides`` may change only `RESUMABLE_SETTINGS`; ``more_steps`` trains that much past the planned end.
        """
        run_dir = Path(run_dir)
        last = run_dir / LAST
        if not last.exists():
            raise TrainingError(f"{run_dir}: no {LAST} to resume from")
        payload = read_checkpoint_file(last)
        saved = TrainConfig.from_dict(payload["extra"]["train_config"])
        config = apply_overrides(saved, list(overrides))
        for key in _changed_settings(saved, config):
            if key not in RESUMABLE_SETTINGS:
                hint = "train longer with --more-steps N" if key in ("max_steps", "epochs") else "start a new run"
                raise TrainingError(
                    f"--set {key}: {key} cannot change when {run_dir} is resumed (the run would no longer be the "
                    f"one its checkpoint continues); {hint}. Resuming may change {', '.join(RESUMABLE_SETTINGS)}"
                )
        trainer = cls(config, payload["metadata"]["cache"], run_dir, resume_state=payload, **kwargs)
        if more_steps:
            trainer.extend(more_steps)
        return trainer

    def extend(self, more_steps: int) -> None:
        """Move the planned end ``more_steps`` later; the learning rate decays on from where it is, without a jump.

        Recorded in the config (``extended_at_step``, ``extended_lr_factor``), so a later resume keeps it.
        """
        config = self.config
        if more_steps < 1:
            raise TrainingError(f"--more-steps must be at least 1, got {more_steps}")
        if config.fit_steps_to_time and config.max_steps is None:
            raise TrainingError(
                f"{self.run_dir} has not fixed its length yet (it times steps {SPEED_STEPS[0]}-{SPEED_STEPS[1]} "
                "first); resume it without --more-steps"
            )
        if self._out_of_time():
            raise TrainingError(
                f"{self.run_dir} has spent its time limit of {config.time_limit_minutes:g} minutes; "
                "raise it as well with --set time_limit_minutes=M"
            )
        if config.schedule != "constant" and self.step >= config.warmup_steps:  # warmup does not depend on the end
            factor = lr_factor(self.step, config, self.max_steps)
            config.extended_at_step, config.extended_lr_factor = self.step, factor
        self.max_steps = config.max_steps = self.max_steps + more_steps


def _changed_settings(before: TrainConfig, after: TrainConfig) -> list[str]:
    """Names of the settings that differ, model fields as ``model.name``."""
    changed = [key for key, value in after.to_dict().items() if key != "model" and value != getattr(before, key)]
    for key in sorted(set(before.model) | set(after.model)):
        if before.model.get(key) != after.model.get(key):
            changed.append(f"model.{key}")
    return changed
