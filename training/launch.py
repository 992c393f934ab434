"""How a run's pipeline starts on several processes of one machine: `accelerate launch` with a shipped config.

A run asks for GPUs (`num_gpus`) or for CPU processes (`cpu_processes`), and says how the processes
share the model (`distributed`: ddp, zero2, zero3 or fsdp; training/accelerate/<name>.yaml). One
process runs the pipeline directly; more go through `accelerate launch`, which starts one rank per
process with torch's elastic launcher (NCCL between GPUs, gloo between CPU processes).

Three things the configs cannot say are passed on the command line: the number of processes, the
rendezvous port (0: accelerate picks a free one as it starts, so two runs on one machine never
collide), and mixed precision (bf16 on GPU unless the run sets `bf16: false`, so the launcher and
the pipeline's TrainingArguments agree; never on CPU). A CPU run hides the GPUs from its ranks.

Each rank sees `per-device batch_size` examples per micro-batch, so a run's global batch is
batch_size x processes x gradient_accumulation_steps.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "accelerate"
STRATEGIES = ("ddp", "zero2", "zero3", "fsdp")
SHARDED = ("zero2", "zero3", "fsdp")  # strategies that need GPUs (DeepSpeed, FSDP)


def config_file(strategy: str) -> Path:
    if strategy not in STRATEGIES:
        raise ValueError(f"distributed must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    return CONFIG_DIR / f"{strategy}.yaml"


def run_processes(config: dict) -> tuple[int, bool]:
    """(processes, on_cpu) of a run's config: num_gpus GPUs, or cpu_processes CPU processes."""
    cpu = int(config.get("cpu_processes", 1) or 1)
    if cpu > 1:
        return cpu, True
    return int(config.get("num_gpus", 1) or 1), False


def accelerate_command(*, module: list[str], processes: int, strategy: str, cpu: bool, bf16: bool | None) -> list[str]:
    """`accelerate launch` of `module` (["-m", "training.pipelines.<kind>", "--config", path]) on `processes` ranks.

    `bf16` is the run's own setting: null (where supported) and true run bf16 on GPU, false does not.
    """
    mixed = "bf16" if not cpu and bf16 is not False else "no"
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(config_file(strategy)),
        "--num_processes", str(processes),
        "--num_machines", "1",
        "--main_process_port", "0",
        "--mixed_precision", mixed,
        *module,
    ]


def launch_env(env: dict, *, cpu: bool) -> dict:
    """The pipeline's environment for a launch: a CPU run's ranks see no GPU (torch would pick cuda)."""
    if not cpu:
        return env
    return {**env, "CUDA_VISIBLE_DEVICES": ""}


def cpu_count() -> int:
    """CPU cores this process may run on (its affinity, which a container's cpuset limits)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
