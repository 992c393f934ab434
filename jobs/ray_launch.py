"""A run's data-parallel ranks spread over a Ray cluster's nodes: the entrypoint of a multi-worker Ray job.

    python -m jobs.ray_launch --workers 2 --cpus 1 --gpus 0 -- <python> -m training.pipelines.sft --config run.json

The job's driver (this module, on whichever node Ray starts the entrypoint) reserves one
placement-group bundle per rank ({CPU: cpus, GPU: gpus}, strategy PACK: as few nodes as hold them,
spilling onto more when one node has too little), starts one small actor in each bundle, and each
actor runs the pipeline as a subprocess with the environment torch's launcher would give it: RANK,
WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, and MASTER_ADDR/MASTER_PORT on rank 0's node,
where torch's env:// rendezvous (gloo on the CPU, NCCL on GPUs) finds the others. The pipeline needs
nothing Ray-specific: rank 0 prints the progress and writes the metrics, checkpoints and model as
under `accelerate launch`.

Every rank's output streams back to this driver through a Ray streaming generator. Rank 0's lines
are printed as they are, so the job's log is the pipeline's JSON-lines progress; the other ranks'
lines carry a `[rank N]` prefix (the platform's reader skips anything that is not JSON).

How the job ends, which jobs/executors_ray.py maps onto the run's outcome:
- every rank exits 0: exit 0.
- a rank's actor dies (its node was lost, its raylet killed) or a rank is killed by a signal
  nobody here sent: the other ranks are stopped and the driver exits NODE_LOST_EXIT, so the run
  is retried from its newest checkpoint on the shared storage.
- a rank fails: the others are stopped and the driver exits with that rank's code.
Ray imports inside functions: the platform imports this module for its constants.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time

# EX_TEMPFAIL: a rank's node went away; trying again (from the newest checkpoint) may work.
NODE_LOST_EXIT = 75
PLACEMENT_WAIT_SECONDS = 300.0
# After one rank ends badly, how long the others may take to end on their own (a rank blocked in a
# collective on a vanished peer would wait for gloo's 30-minute timeout) before they are killed.
STOP_GRACE_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


class RankProcess:
    """One rank, inside its placement-group bundle: says where it is, then runs the pipeline there."""

    def where(self) -> dict:
        import ray

        context = ray.get_runtime_context()
        return {"node_id": context.get_node_id(), "ip": ray.util.get_node_ip_address(),
                "gpu_ids": [str(g) for g in ray.get_gpu_ids()], "port": free_port()}

    def run(self, command: list[str], env: dict):
        """Yields ("line", text) for each line of the pipeline's output, then ("exit", code).

        The pipeline dies with this actor: with LOCAL_RANK set it asks the kernel for SIGKILL when
        its parent dies (training/pipelines/common.py), so a killed actor leaves no rank behind.
        """
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            bufsize=1,
        )
        for line in process.stdout:
            yield ("line", line)
        yield ("exit", process.wait())


def rank_envs(places: list[dict], *, gpus: float) -> list[dict]:
    """The launcher environment of each rank, from where each one landed (RankProcess.where, in rank order).

    Local ranks count the ranks on one node in rank order. On GPUs a node's ranks all see that
    node's GPUs of this job, in local-rank order, so `cuda:<LOCAL_RANK>` is each rank's own GPU
    (Ray shows an actor only its own); a CPU job's ranks see none.
    """
    nodes: dict[str, list[int]] = {}
    for rank, place in enumerate(places):
        nodes.setdefault(place["node_id"], []).append(rank)
    node_order = list(nodes)
    envs = []
    for rank, place in enumerate(places):
        mates = nodes[place["node_id"]]
        visible = ",".join(g for r in mates for g in places[r]["gpu_ids"]) if gpus else ""
        envs.append({
            "RANK": str(rank), "WORLD_SIZE": str(len(places)),
            "LOCAL_RANK": str(mates.index(rank)), "LOCAL_WORLD_SIZE": str(len(mates)),
            "GROUP_RANK": str(node_order.index(place["node_id"])), "NODE_RANK": str(node_order.index(place["node_id"])),
            "MASTER_ADDR": places[0]["ip"], "MASTER_PORT": str(places[0]["port"]),
            "CUDA_VISIBLE_DEVICES": visible,
        })
    return envs


def exit_code(ends: dict[int, object]) -> int:
    """The driver's exit code from each rank's end: its exit code, or "lost" (its actor died)."""
    if any(end == "lost" or (isinstance(end, int) and end < 0) for end in ends.values()):
        return NODE_LOST_EXIT
    failed = [end for _, end in sorted(ends.items()) if end != 0]
    return failed[0] if failed else 0


def say(text: str) -> None:
    print(f"[ray] {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--cpus", type=float, default=1)
    parser.add_argument("--gpus", type=float, default=0)
    parser.add_argument("--wait", type=float, default=PLACEMENT_WAIT_SECONDS,
                        help="seconds to wait for the cluster to hold every rank")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command

    import ray
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # Ray's stop_job: clean up below
    ray.init(log_to_driver=False)
    bundle = {"CPU": args.cpus, **({"GPU": args.gpus} if args.gpus else {})}
    group = placement_group([bundle] * args.workers, strategy="PACK")
    actors = []
    try:
        ready, _ = ray.wait([group.ready()], timeout=args.wait)
        if not ready:
            say(f"the cluster did not hold {args.workers} workers of {bundle} within {args.wait:.0f} s")
            return 1
        remote = ray.remote(RankProcess)
        for index in range(args.workers):
            strategy = PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=index)
            actors.append(remote.options(num_cpus=args.cpus, num_gpus=args.gpus, scheduling_strategy=strategy).remote())
        try:
            places = ray.get([actor.where.remote() for actor in actors])
        except ray.exceptions.RayError as exc:  # a node went away before the ranks started
            say(f"a rank was lost before it started: {type(exc).__name__}; the job ends for a retry")
            return NODE_LOST_EXIT
        for rank, place in enumerate(places):
            say(f"rank {rank} on node {place['node_id'][:12]} ({place['ip']})")
        return follow(ray, actors, command, rank_envs(places, gpus=args.gpus))
    finally:
        for actor in actors:
            ray.kill(actor)
        remove_placement_group(group)


def follow(ray, actors: list, command: list[str], envs: list[dict]) -> int:
    """Stream every rank's output to this driver's stdout until all have ended; the driver's exit code."""
    lock = threading.Lock()
    ends: dict[int, object] = {}
    trouble = threading.Event()

    def read(rank: int) -> None:
        prefix = "" if rank == 0 else f"[rank {rank}] "
        try:
            for ref in actors[rank].run.options(num_returns="streaming").remote(command, envs[rank]):
                kind, value = ray.get(ref)
                if kind == "exit":
                    ends[rank] = value
                else:
                    with lock:
                        sys.stdout.write(prefix + value)
                        sys.stdout.flush()
        except ray.exceptions.RayError as exc:
            ends[rank] = "lost"
            say(f"rank {rank} was lost: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        if ends.get(rank, "lost") != 0:
            trouble.set()

    readers = [threading.Thread(target=read, args=(rank,), daemon=True) for rank in range(len(actors))]
    for reader in readers:
        reader.start()
    while any(reader.is_alive() for reader in readers) and not trouble.wait(0.5):
        pass
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for reader in readers:
        reader.join(max(0.0, deadline - time.monotonic()))
    for rank, reader in enumerate(readers):
        if reader.is_alive():
            say(f"rank {rank} did not end {STOP_GRACE_SECONDS:.0f} s after another rank failed: stopping it")
            ends.setdefault(rank, "lost" if "lost" in ends.values() else 1)
    code = exit_code(ends)
    if code == NODE_LOST_EXIT:
        say("a rank's node was lost: the job ends for a retry from the newest checkpoint")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
